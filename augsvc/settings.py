"""Settings as frozen dataclasses whose fields carry a :class:`~augsvc.params.Param`.

The server's ``ServeConfig``, the training run's ``TrainConfig`` and the training models' options
are checked by the same ``Param`` that checks a transform's parameters in a pipeline spec: one
description of what a value may be (kind, bounds, choices), one way to check it, and the same
wording of what is allowed in every error message. This module adds what settings need beyond a
spec: values read from text (flags, environment variables), nested sections, sections whose
extra keys belong to a registry entry (``options``), and checks no schema can express (a file
that must exist).

An error names the setting by its dotted path, says where the value came from (a file, a flag,
``$AUGSVC_PORT``), and ends with what is allowed.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Any

from augsvc.errors import ConfigError, SpecError, did_you_mean
from augsvc.params import REQUIRED, Param

__all__ = ["build", "check_fields", "check_value", "read_text", "setting"]


def setting(default: Any = dataclasses.MISSING, *, kind: str, doc: str = "",
            default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
            check: Callable[[Any], bool] | None = None, allowed: str | None = None,
            **schema: Any) -> Any:
    """A dataclass field checked by ``Param(kind=kind, **schema)`` and then by ``check``.

    Args:
        kind: the Param kind ("int", "float", "bool", "string", "strings", "choice").
        doc: one line for people (``--help`` and the docs).
        check: a further test of the value (a file exists, a size parses).
        allowed: what is allowed, in words, when ``check`` says more than the schema.
        schema: the rest of the Param: ``low``, ``high``, ``low_open``, ``choices``,
            ``nullable``.
    """
    param = Param("", kind, REQUIRED, doc, **schema)  # type: ignore[arg-type]
    metadata = {"param": param, "check": check, "allowed": allowed}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def allowed(f: dataclasses.Field[Any]) -> str:
    """What a setting allows, in words."""
    return f.metadata.get("allowed") or f.metadata["param"].allowed()


def check_value(f: dataclasses.Field[Any], value: Any, where: str) -> Any:
    """``value`` checked (and normalised: ints for floats, lists for strings) for field ``f``.

    Raises:
        ConfigError: naming ``where``, the value and what is allowed.
    """
    param: Param | None = f.metadata.get("param")
    if param is None:  # free-form (a spec, registry options): checked where it is used
        return value

    def fail(message: str, shown: Any) -> SpecError:
        raise ConfigError(f"{where}: {message} (got {shown!r}); allowed: {allowed(f)}")

    if param.kind == "strings" and isinstance(value, str):
        value = [value]  # one address where a list of them goes
    checked = param.validate(value, fail)
    check = f.metadata.get("check")
    if checked is not None and check is not None and not check(checked):
        fail("is not allowed", value)
    return list(checked) if isinstance(checked, tuple) else checked


def read_text(f: dataclasses.Field[Any], text: str, where: str) -> Any:
    """A setting given as text (a flag, an environment variable), parsed by its kind and checked."""
    kind = f.metadata["param"].kind
    value: Any = text.strip()
    try:
        if kind == "int":
            value = int(value)
        elif kind == "float":
            value = float(value)
        elif kind == "bool":
            value = {"true": True, "1": True, "false": False, "0": False}[value.lower()]
        elif kind == "strings":
            value = [part.strip() for part in value.split(",") if part.strip()]
    except (ValueError, KeyError):
        pass  # check_value names the setting and what it allows
    return check_value(f, value, where)


def check_fields(config: Any, path: str = "") -> None:
    """Check every field of a settings dataclass built directly (not by :func:`build`).

    Raises:
        ConfigError: the first field whose value is not allowed.
    """
    for f in dataclasses.fields(config):
        check_value(f, getattr(config, f.name), _join(path, f.name))


def build(cls: type[Any], raw: Any, path: str = "", source: str = "") -> Any:
    """A settings dataclass from plain data (YAML, JSON), nested sections included.

    Keys of a section that has an ``options`` field and are not its own go into ``options``
    (a model's width, an optimizer's betas): the registry entry they belong to checks them.

    Raises:
        ConfigError: not a mapping, an unknown key (with the closest known one), or a value its
            field does not allow.
    """
    where_all = _where(path or "config", source)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where_all}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    free = "options" in fields
    values: dict[str, Any] = {}
    options: dict[str, Any] = dict(raw.get("options") or {}) if free else {}
    for key, value in raw.items():
        name = _join(path, str(key))
        f = fields.get(str(key))
        if f is not None and key != "options":
            section = hints[f.name]
            if isinstance(section, type) and dataclasses.is_dataclass(section):
                values[f.name] = build(section, value, name, source)
            else:
                values[f.name] = check_value(f, value, _where(name, source))
        elif free:
            if key != "options":
                options[str(key)] = value
        else:
            raise ConfigError(f"{_where(name, source)}: unknown setting"
                              f"{did_you_mean(str(key), fields)}; known: {', '.join(fields)}")
    if free:
        values["options"] = options
    return cls(**values)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _where(name: str, source: str) -> str:
    return f"{name} (from {source})" if source else name
