"""Declarative pipeline specs: parameter schemas, validation with helpful errors, and loading.

A pipeline is data::

    {"transforms": [{"name": "horizontal_flip", "p": 0.5},
                    {"one_of": [{"name": "median_blur"}, {"name": "gaussian_blur"}], "p": 0.3}]}

Groups are ``one_of`` (pick one child), ``some_of`` (pick ``n`` children), ``sometimes`` (run all
children with probability ``p``) and ``sequential`` (run all children). The same structures serve
the image and the text registries; each domain supplies its registry and top-level options.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from augsvc.errors import SpecError, did_you_mean
from augsvc.params import REQUIRED, Param, is_number, to_jsonable

__all__ = [
    "GROUP_KINDS",
    "MAX_SPEC_DEPTH",
    "MAX_SPEC_NODES",
    "GroupNode",
    "Node",
    "PipelineSpec",
    "TransformInfo",
    "TransformNode",
    "check_nesting",
    "is_inline_spec",
    "is_spec_file",
    "load_spec",
    "parse_spec",
]

MAX_SPEC_DEPTH = 16
"""Groups nested in groups, at most (real pipelines use two or three levels)."""
MAX_SPEC_NODES = 1000
"""Transforms and groups in one spec, at most."""
MAX_SOME_OF_N = 100
"""Children a some_of group applies, at most (with replace, n may exceed the children)."""
_MAX_DATA_DEPTH = 4 * MAX_SPEC_DEPTH + 8
"""Nesting of JSON/YAML containers a spec may have: two per group level (the group's mapping and
its list), plus a transform's own fields (ranges, per-channel lists) and some room."""


@dataclass(frozen=True)
class TransformInfo:
    """One registry entry: a transform's name, parameter schema and documentation.

    ``check`` runs after every field is valid, for rules that involve several fields; it returns
    an error message naming the fields, or None.
    """

    name: str
    params: tuple[Param, ...]
    doc: str
    default_p: float = 1.0
    check: Callable[[Mapping[str, Any]], str | None] | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-able description: name, doc, default probability, parameter schemas."""
        return {"name": self.name, "doc": self.doc, "default_p": self.default_p,
                "params": [p.describe() for p in self.params]}

    def validate(self, raw: Mapping[str, Any], path: str) -> dict[str, Any]:
        """Validate and normalise the parameters in ``raw`` (everything but name and p)."""
        known = {p.name: p for p in self.params}
        for key in raw:
            if key not in known:
                names = sorted(known)
                raise SpecError(
                    f"unknown field{did_you_mean(key, names)}", path=path, transform=self.name,
                    field=key, allowed="fields " + ", ".join(["p", *names]) if names else "only p")
        out: dict[str, Any] = {}
        for param in self.params:
            if param.name not in raw:
                if param.default is REQUIRED:
                    raise SpecError("is required", path=path, transform=self.name,
                                    field=param.name, allowed=param.allowed())
                out[param.name] = param.default
                continue

            def fail(message: str, value: Any, param: Param = param) -> SpecError:
                return SpecError(f"{message}, got {value!r}", path=path, transform=self.name,
                                 field=param.name, value=value, allowed=param.allowed())

            out[param.name] = param.validate(raw[param.name], fail)
        if self.check is not None and (problem := self.check(out)):
            raise SpecError(problem, path=path, transform=self.name)
        return out


@dataclass(frozen=True)
class TransformNode:
    """A validated transform in a pipeline."""

    name: str
    p: float
    params: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "p": self.p, **to_jsonable(dict(self.params))}


@dataclass(frozen=True)
class GroupNode:
    """A validated group: ``one_of``, ``some_of``, ``sometimes``, ``sequential``, or a group kind
    of the domain's own (its fields in ``params``)."""

    kind: str
    children: tuple[Node, ...]
    p: float
    n: int = 1
    replace: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.kind: [c.to_dict() for c in self.children], "p": self.p}
        if self.kind == "some_of":
            out.update(n=self.n, replace=self.replace)
        out.update(to_jsonable(dict(self.params)))
        return out


Node = TransformNode | GroupNode

GROUP_KINDS: dict[str, float] = {"one_of": 1.0, "some_of": 1.0, "sometimes": 0.5, "sequential": 1.0}
"""Group kinds and their default probability."""


@dataclass(frozen=True)
class PipelineSpec:
    """A validated pipeline: its transform tree and top-level options."""

    nodes: tuple[Node, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The canonical spec; ``parse_spec(s.to_dict(), ...) == s``."""
        return {"transforms": [n.to_dict() for n in self.nodes], **to_jsonable(dict(self.options))}

    def leaves(self) -> list[TransformNode]:
        """All transforms in tree order."""
        out: list[TransformNode] = []

        def walk(nodes: Sequence[Node]) -> None:
            for node in nodes:
                if isinstance(node, TransformNode):
                    out.append(node)
                else:
                    walk(node.children)

        walk(self.nodes)
        return out


def _probability(raw: Mapping[str, Any], default: float, path: str, name: str | None) -> float:
    p = raw.get("p", default)
    if not is_number(p) or not 0.0 <= p <= 1.0:
        raise SpecError(f"probability must be a number in [0, 1], got {p!r}", path=path,
                        transform=name, field="p", value=p, allowed="number in [0, 1]")
    return float(p)


def check_nesting(text: str, max_depth: int = _MAX_DATA_DEPTH) -> None:
    """Refuse JSON or YAML flow text nested deeper than ``max_depth`` before a parser recurses.

    Python's JSON and YAML parsers recurse per level and fail with RecursionError (or worse) on
    a document nested thousands of levels deep; counting brackets outside strings is cheap.

    Raises:
        SpecError: the text is nested too deeply.
    """
    depth = deepest = 0
    for match in _BRACKETS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > max_depth:
                    raise SpecError(f"the spec is nested more than {max_depth} levels deep",
                                    allowed=f"at most {MAX_SPEC_DEPTH} levels of groups")
        elif token in "]}":
            depth = max(0, depth - 1)


_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
"""Strings (skipped whole, so brackets inside them do not count) and brackets."""


def _parse_node(raw: Any, registry: Mapping[str, TransformInfo], path: str,
                groups: Mapping[str, TransformInfo], budget: list[int], depth: int = 0) -> Node:
    budget[0] -= 1
    if budget[0] < 0:
        raise SpecError(f"the spec has more than {MAX_SPEC_NODES} transforms and groups",
                        path=path, allowed=f"at most {MAX_SPEC_NODES}")
    if not isinstance(raw, Mapping):
        raise SpecError(f"each entry must be a mapping, got {type(raw).__name__}", path=path)
    if "name" in raw:
        name = raw["name"]
        if name not in registry:
            raise SpecError(f"unknown transform {name!r}{did_you_mean(name, sorted(registry))}",
                            path=path, field="name", value=name,
                            allowed="one of " + ", ".join(sorted(registry)))
        info = registry[name]
        p = _probability(raw, info.default_p, path, name)
        fields = {k: v for k, v in raw.items() if k not in ("name", "p")}
        return TransformNode(name=name, p=p, params=info.validate(fields, path))
    all_kinds = [*GROUP_KINDS, *groups]
    kinds = [k for k in all_kinds if k in raw]
    if len(kinds) != 1:
        raise SpecError(
            "each entry needs a 'name' (a transform) or exactly one group key "
            f"({', '.join(all_kinds)}); got keys {sorted(raw)}", path=path)
    kind = kinds[0]
    own = groups.get(kind)
    allowed = {kind, "p"} | ({"n", "replace"} if kind == "some_of" else set())
    if own is not None:
        allowed |= {param.name for param in own.params}
    for key in raw:
        if key not in allowed:
            raise SpecError(f"unknown field in a {kind} group{did_you_mean(key, sorted(allowed))}",
                            path=path, field=key, allowed=", ".join(sorted(allowed)))
    children_raw = raw[kind]
    if not isinstance(children_raw, list) or not children_raw:
        raise SpecError(f"'{kind}' must be a non-empty list of transforms", path=path, field=kind)
    if depth >= MAX_SPEC_DEPTH:
        raise SpecError(f"groups are nested more than {MAX_SPEC_DEPTH} levels deep", path=path,
                        field=kind, allowed=f"at most {MAX_SPEC_DEPTH} levels of groups")
    children = tuple(_parse_node(c, registry, f"{path}.{kind}[{i}]", groups, budget, depth + 1)
                     for i, c in enumerate(children_raw))
    p = _probability(raw, own.default_p if own else GROUP_KINDS[kind], path, None)
    params = {} if own is None else own.validate(
        {k: v for k, v in raw.items() if k not in (kind, "p")}, path)
    n, replace = raw.get("n", 1), raw.get("replace", False)
    if kind == "some_of":
        if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n > MAX_SOME_OF_N or (
                not replace and n > len(children)):
            top = MAX_SOME_OF_N if replace else min(len(children), MAX_SOME_OF_N)
            shown = n if not isinstance(n, int) or abs(n) < 10**30 else "a huge integer"
            raise SpecError(f"n must be how many children to pick, got {shown!r}", path=path,
                            field="n", value=shown, allowed=f"integer in [1, {top}]")
        if not isinstance(replace, bool):
            raise SpecError(f"replace must be true or false, got {replace!r}", path=path,
                            field="replace", value=replace, allowed="true or false")
    if kind in ("one_of", "some_of") and all(c.p == 0 for c in children):
        # The group picks children by their p, normalised by the sum: all 0 picks nothing.
        raise SpecError(f"a {kind} group needs a child with p > 0", path=path, field=kind,
                        allowed="at least one child with p > 0")
    return GroupNode(kind=kind, children=children, p=p, n=n, replace=replace, params=params)


def parse_spec(raw: Any, registry: Mapping[str, TransformInfo],
               options: Sequence[Param] = (),
               groups: Mapping[str, TransformInfo] | None = None) -> PipelineSpec:
    """Validate a spec (already loaded as data) against ``registry``.

    Args:
        raw: ``{"transforms": [...], **options}`` or a bare list of transforms.
        registry: the domain's transforms by name.
        options: top-level options this domain accepts (e.g. ``bbox_format``).
        groups: group kinds of the domain's own, by key, with the schema of their fields.

    Raises:
        SpecError: naming the path, transform, field, value and what is allowed.
    """
    if isinstance(raw, list):
        raw = {"transforms": raw}
    if not isinstance(raw, Mapping):
        raise SpecError(f"a pipeline must be a mapping with 'transforms', got {type(raw).__name__}")
    known = {o.name: o for o in options}
    for key in raw:
        if key != "transforms" and key not in known:
            names = ["transforms", *sorted(known)]
            raise SpecError(f"unknown top-level field{did_you_mean(key, names)}", field=key,
                            allowed=", ".join(names))
    transforms = raw.get("transforms")
    if not isinstance(transforms, list):
        raise SpecError("'transforms' must be a list", field="transforms", value=transforms)
    budget = [MAX_SPEC_NODES]  # nodes left to parse, shared by the whole tree
    nodes = tuple(_parse_node(t, registry, f"transforms[{i}]", groups or {}, budget)
                  for i, t in enumerate(transforms))
    values = TransformInfo("pipeline", tuple(options), "").validate(
        {k: v for k, v in raw.items() if k != "transforms"}, "")
    return PipelineSpec(nodes=nodes, options=values)


def is_inline_spec(text: str) -> bool:
    """Whether a string given where a spec goes is the spec itself (JSON or YAML text) rather than
    a name: it starts with ``{`` or ``[``, or spans lines. The one rule for such strings, in the
    library, the command line and the client."""
    return text.lstrip().startswith(("{", "[")) or "\n" in text


def is_spec_file(name: str | Path) -> bool:
    """Whether ``name`` is a file (False, not an error, for a name too long to be a path)."""
    try:
        return Path(name).is_file()
    except OSError:
        return False


def load_spec(source: Any, presets: Mapping[str, Any] | None = None) -> Any:
    """A spec from a dict/list, JSON or YAML text, a preset name, or a .json/.yaml file.

    A string is text when :func:`is_inline_spec` says so; otherwise a name in ``presets`` (a
    copy of it is returned) and, failing that, the path of a spec file. Presets come before
    files, so a name means the same whatever the working folder holds.

    Raises:
        SpecError: a name that is neither a preset nor a file, or text that does not parse.
    """
    if isinstance(source, Mapping | list):
        return source
    if isinstance(source, str) and not is_inline_spec(source) and presets and source in presets:
        return copy.deepcopy(presets[source])
    if isinstance(source, Path) or (isinstance(source, str) and not is_inline_spec(source)):
        path = Path(source)
        if not is_spec_file(path):
            known = f"; nor is it a preset ({', '.join(sorted(presets))})" if presets else ""
            raise SpecError(f"spec file not found: {str(path)[:200]}{known}")
        text = path.read_text(encoding="utf-8")
    elif isinstance(source, str):
        text = source
    else:
        raise SpecError(f"cannot load a spec from {type(source).__name__}")
    check_nesting(text)
    try:
        return yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise SpecError(f"spec is neither valid JSON nor YAML: {exc}") from exc
    except RecursionError:  # block-style YAML nests by indentation, which check_nesting cannot see
        raise SpecError("the spec is nested too deeply to read") from None


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON (stable across runs)."""
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"))
