"""nlpaug's vocabulary in text specs, and nlpaug augmenter objects turned into specs.

The README's "From nlpaug" table is the mapping. :func:`translate_aliases` rewrites entries
named after nlpaug's augmenters (``SynonymAug``, ``naw.SynonymAug``,
``nlpaug.augmenter.word.SynonymAug``, ...) and nlpaug's field names (``aug_src``,
``model_type``, ``model_path``, ``action``, ``aug_word_p``, ...) into augsvc's; settings augsvc
has no counterpart for raise :class:`SpecError` saying what augsvc offers instead.
:func:`from_nlpaug` reads nlpaug 1.1.11 augmenter objects (nlpaug is imported only there).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

from augsvc.errors import SpecError
from augsvc.params import is_number
from augsvc.spec import GROUP_KINDS, MAX_SPEC_DEPTH
from augsvc.text.registry import TEXT_GROUPS, TEXT_TRANSFORMS

__all__ = ["from_nlpaug", "translate_aliases"]

_ACTIONS: dict[str, dict[str, str]] = {  # nlpaug class -> its actions augsvc has -> transform
    "SynonymAug": {"substitute": "synonym", "insert": "random_insertion"},
    "WordEmbsAug": {"substitute": "embedding"},
    "ContextualWordEmbsAug": {"substitute": "contextual"},
    "RandomWordAug": {"swap": "random_swap", "delete": "random_deletion"},
    "KeyboardAug": {"substitute": "keyboard"},
    "OcrAug": {"substitute": "ocr"},
}
_DEFAULT_ACTION = {"RandomWordAug": "delete"}  # nlpaug's default; the others substitute
_FLOWS = ("Sequential", "Sometimes")
_CLASSES = {c.lower(): c for c in (*_ACTIONS, *_FLOWS)}
_FAMILY = {t: c for c, actions in _ACTIONS.items() for t in actions.values()}
"""augsvc transform -> the nlpaug class whose field names it also accepts."""
_SUPPORTED = ", ".join((*_ACTIONS, *_FLOWS))
_PREFIXES = ("naw", "nac", "naf", "nas")
_AMOUNTS = {"aug_p": "aug_p", "aug_min": "aug_min", "aug_max": "aug_max"}
_CHAR_AMOUNTS = {"aug_word_p": "aug_p", "aug_word_min": "aug_min", "aug_word_max": "aug_max",
                 "min_char": "min_word_length"}
_IGNORED = {"verbose", "force_reload", "silence", "use_custom_api", "skip_check"}
"""nlpaug settings that change logging, caching or its backend, never the words."""
_NO_CAP = 100000  # augsvc's largest aug_max: nlpaug's aug_max None (or 0) means no cap

_ACTION_HINTS = {
    ("WordEmbsAug", "insert"): "augsvc's embedding only substitutes words; to insert words use "
                               "random_insertion (WordNet synonyms at random places)",
    ("ContextualWordEmbsAug", "insert"): "augsvc's contextual only substitutes words; to insert "
                                         "words use random_insertion",
    ("RandomWordAug", "crop"): "augsvc has no crop (deleting a run of adjacent words); "
                               "random_deletion deletes words one by one",
    ("RandomWordAug", "substitute"): "augsvc does not substitute placeholder words; use "
                                     "random_deletion, or synonym/embedding/contextual",
}
_CLASS_HINTS = {
    ("model_path", "KeyboardAug"): "augsvc's keyboard has its own QWERTY neighbour map",
    ("model", "WordEmbsAug"): "give the vectors file as model_path (augsvc's 'vectors')",
}
_CHAR_HINT = ("augsvc changes one character in each chosen word; aug_p, aug_min and aug_max "
              "choose the words")
_FIELD_HINTS = {
    "stopwords_regex": "list the words in 'stopwords' (synonym, embedding and contextual have it)",
    "tokenizer": "augsvc finds the words itself and keeps the text's spacing and punctuation",
    "reverse_tokenizer": "augsvc finds the words itself and keeps the text's spacing and "
                         "punctuation",
    "aug_char_p": _CHAR_HINT, "aug_char_min": _CHAR_HINT, "aug_char_max": _CHAR_HINT,
    "include_special_char": "augsvc's keyboard has one QWERTY neighbour map",
    "include_numeric": "augsvc's keyboard has one QWERTY neighbour map",
    "include_upper_case": "augsvc's keyboard has one QWERTY neighbour map; it keeps the case",
    "n_gram_separator": "augsvc's embedding substitutes single words",
    "target_words": "augsvc does not substitute placeholder words",
}


def _fail(message: str, path: str, name: Any, field: str | None = None, value: Any = None,
          allowed: str | None = None) -> SpecError:
    return SpecError(message, path=path, transform=str(name), field=field, value=value,
                     allowed=allowed)


def _nlpaug_class(name: Any, path: str) -> str | None:
    """The nlpaug class an entry's name spells, None for a name that is not nlpaug's.

    Raises:
        SpecError: an nlpaug augmenter augsvc has no counterpart for.
    """
    if not isinstance(name, str):
        return None
    prefix, _, short = name.rpartition(".")
    nlpaug = prefix in _PREFIXES or prefix.lower().startswith("nlpaug.")
    if prefix and not nlpaug:
        return None
    if short.lower() in _CLASSES:
        return _CLASSES[short.lower()]
    if nlpaug or short.endswith("Aug"):
        raise _fail(f"nlpaug's {short} has no augsvc counterpart", path, name, "name", name,
                    f"nlpaug's {_SUPPORTED}, or augsvc's {', '.join(sorted(TEXT_TRANSFORMS))}")
    return None


def _amount(key: str, value: Any) -> Any:
    """nlpaug's aug_min/aug_max (and aug_word_*): None, and 0 for the maximum, mean no limit."""
    if key.endswith("_max") and (value is None or (value == 0 and not isinstance(value, bool))):
        return _NO_CAP
    return 0 if key.endswith("_min") and value is None else value


def _target(cls: str, entry: Mapping[str, Any], path: str) -> str:
    """The augsvc transform an nlpaug-named (or augsvc-named) entry's action asks for."""
    name = entry["name"]
    implied = next((a for a, t in _ACTIONS[cls].items() if t == name), None)
    action = entry.get("action", implied or _DEFAULT_ACTION.get(cls, "substitute"))
    target = _ACTIONS[cls].get(action) if isinstance(action, str) else None
    if target is None:
        hint = (_ACTION_HINTS.get((cls, action)) if isinstance(action, str) else None) or (
            f"augsvc has no {cls} action {action!r}")
        raise _fail(f"nlpaug's {cls}(action={action!r}) is not supported: {hint}", path, name,
                    "action", action, "action " + " or ".join(map(repr, _ACTIONS[cls])))
    if implied is not None and target != name:
        raise _fail(f"nlpaug's action={action!r} disagrees with {name}: that action is {target}",
                    path, name, "action", action, f"action {implied!r}, or the name {target!r}")
    return target


def _translate_transform(entry: Mapping[str, Any], cls: str, path: str) -> dict[str, Any]:
    """One transform entry in augsvc's names (``entry`` itself when nothing changes)."""
    name, from_nlpaug = entry["name"], entry["name"] not in TEXT_TRANSFORMS
    target = _target(cls, entry, path)
    renames = _CHAR_AMOUNTS if cls in ("KeyboardAug", "OcrAug") else {}
    out: dict[str, Any] = {"name": target}
    sources: dict[str, str] = {}  # augsvc field -> the field of ``entry`` it came from
    for key, value in entry.items():
        new: str | None = key
        if key in ("name", "action") or key in _IGNORED:
            new = None
        elif key in renames or (from_nlpaug and key in _AMOUNTS):
            new = renames.get(key, key)
            value = _amount(key, value)
        elif key == "aug_src" and cls == "SynonymAug":
            if value != "wordnet":
                raise _fail(f"nlpaug's aug_src={value!r} is not supported: augsvc's {target} "
                            "reads WordNet only", path, name, key, value,
                            "aug_src 'wordnet' (or none); for other word sources use embedding "
                            "with 'vectors' or contextual with 'model'")
            new = None
        elif key == "lang" and cls in ("SynonymAug", "KeyboardAug"):
            wanted = "eng" if cls == "SynonymAug" else "en"
            if value != wanted:
                raise _fail(f"nlpaug's lang={value!r} is not supported: augsvc's {target} is "
                            "English only", path, name, key, value, f"lang {wanted!r} (or none)")
            new = None
        elif key == "model_type" and cls in ("WordEmbsAug", "ContextualWordEmbsAug"):
            if cls == "WordEmbsAug" and value not in ("word2vec", "glove", "fasttext"):
                raise _fail(f"nlpaug's model_type={value!r} is not a word-vector format", path,
                            name, key, value, "'word2vec', 'glove' or 'fasttext'")
            path_given = entry.get("model_path", entry.get("vectors"))
            if value == "word2vec" and isinstance(path_given, str) and not path_given.endswith(
                    ".bin"):
                raise _fail("nlpaug reads a word2vec model_path as a binary file; augsvc reads "
                            "binary vectors only from a file named *.bin", path, name,
                            "model_path", path_given, "a .bin file, or vectors in text form")
            new = None  # augsvc reads the format from the file or the model's folder
        elif key == "model_path" and cls in ("WordEmbsAug", "ContextualWordEmbsAug"):
            new = "vectors" if cls == "WordEmbsAug" else "model"
        elif key == "model_path" and cls == "SynonymAug":
            new = None  # PPDB's dictionary: nlpaug ignores it with WordNet (ppdb fails above)
        elif key in _FIELD_HINTS or (key, cls) in _CLASS_HINTS:
            hint = _FIELD_HINTS.get(key) or _CLASS_HINTS[key, cls]
            raise _fail(f"nlpaug's {key} is not supported: {hint}", path, name, key, value)
        if new is None:
            continue
        if new in out and out[new] != value:
            other = sources[new]
            raise _fail(f"{key}={value!r} and {other}={out[new]!r} disagree (both are augsvc's "
                        f"{new})", path, name, key if key != new else other,
                        value if key != new else out[new],
                        "one of them, or the same value in both")
        out[new], sources[new] = value, key
    if from_nlpaug:
        accepted = {"p", *(param.name for param in TEXT_TRANSFORMS[target].params)}
        for key in out.keys() - accepted - {"name"}:
            raise _fail(f"nlpaug's {cls} option {key!r} has no counterpart in augsvc's {target}",
                        path, name, key, out[key], "fields " + ", ".join(sorted(accepted)))
    return out


def _default_p(node: Mapping[str, Any]) -> float:
    if "name" in node:
        info = TEXT_TRANSFORMS.get(node["name"]) if isinstance(node["name"], str) else None
        return info.default_p if info else 1.0
    kind = next((k for k in (*GROUP_KINDS, *TEXT_GROUPS) if k in node), "")
    return GROUP_KINDS.get(kind) or (TEXT_GROUPS[kind].default_p if kind in TEXT_GROUPS else 1.0)


def _translate_flow(cls: str, entry: Mapping[str, Any], path: str) -> list[Any]:
    """naf.Sequential / naf.Sometimes: their children, each with p for Sometimes."""
    name = entry["name"]
    allowed = {"name", "flow", "p", *_IGNORED} | ({"aug_p"} if cls == "Sometimes" else set())
    for key in entry:
        if key not in allowed:
            raise _fail(f"nlpaug's {cls} has no field {key!r}", path, name, key, entry[key],
                        ", ".join(sorted(allowed - _IGNORED - {"name"})))
    flow = entry.get("flow")
    flow = [flow] if isinstance(flow, Mapping) else flow
    if not isinstance(flow, list) or not flow:
        raise _fail(f"nlpaug's {cls} needs 'flow': a non-empty list of augmenters", path, name,
                    "flow", flow)
    where = f"{path}.flow"
    if cls == "Sequential":
        children = _translate_list(flow, where, sequential=True)
    else:  # nlpaug's Sometimes draws for each child on its own
        aug_p = entry.get("aug_p", 0.8)  # nlpaug's default
        if not is_number(aug_p) or not 0.0 <= aug_p <= 1.0:
            raise _fail(f"nlpaug's aug_p must be a number in [0, 1], got {aug_p!r}", path, name,
                        "aug_p", aug_p, "number in [0, 1]")
        children = []
        for i, child in enumerate(flow):
            nodes = _translate_node(child, f"{where}[{i}]")
            node = nodes[0] if len(nodes) == 1 else {"sequential": nodes}
            p = node.get("p", _default_p(node)) if isinstance(node, Mapping) else None
            if is_number(p):
                node = {**node, "p": aug_p * p if p != 1.0 else aug_p}
            else:  # parse_spec says what is wrong with it
                node = {"sequential": [node], "p": aug_p}
            children.append(node)
    return [{"sequential": children, "p": entry["p"]}] if "p" in entry else children


def _translate_node(node: Any, path: str) -> list[Any]:
    """One entry in augsvc's names: a list, as an nlpaug flow becomes its children."""
    if not isinstance(node, Mapping) or path.count("[") > MAX_SPEC_DEPTH + 1:
        return [node]
    if "name" in node:
        name = node["name"]
        cls = _nlpaug_class(name, path) or (_FAMILY.get(name) if isinstance(name, str) else None)
        if cls in _FLOWS:
            return _translate_flow(cls, node, path)
        return [_translate_transform(node, cls, path) if cls else node]
    kinds = [k for k in (*GROUP_KINDS, *TEXT_GROUPS) if k in node]
    if len(kinds) != 1 or not isinstance(node[kinds[0]], list):
        return [node]  # parse_spec says what is wrong (also for groups nested too deep)
    kind = kinds[0]
    runs_all = kind in ("sequential", "sometimes", "semantic_filter")
    return [{**node, kind: _translate_list(node[kind], f"{path}.{kind}", sequential=runs_all)}]


def _translate_list(items: list[Any], path: str, *, sequential: bool) -> list[Any]:
    """Entries in augsvc's names; a flow's children join a list that runs every entry in order,
    elsewhere (one_of, some_of) they stay one entry, a ``sequential`` group."""
    out: list[Any] = []
    for i, item in enumerate(items):
        nodes = _translate_node(item, f"{path}[{i}]")
        if len(nodes) == 1 or sequential:
            out.extend(nodes)
        else:
            out.append({"sequential": nodes})
    return out


def translate_aliases(spec: Any) -> Any:
    """A loaded text spec with nlpaug's names rewritten into augsvc's (see the README's
    "From nlpaug" table); a spec in augsvc's names is returned as it is.

    Accepts ``{"transforms": [...]}``, a bare list, or one nlpaug-named entry. Flows are written
    ``{"name": "naf.Sequential", "flow": [...]}`` and ``{"name": "naf.Sometimes", "flow": [...],
    "aug_p": 0.5}``. In nlpaug-named entries absent fields take augsvc's defaults, except the
    action (RandomWordAug deletes) and Sometimes' aug_p (0.8), which take nlpaug's.

    Raises:
        SpecError: an nlpaug augmenter, action or option augsvc has no counterpart for; the
            message says what augsvc offers instead.
    """
    if isinstance(spec, list):
        out: Any = _translate_list(spec, "transforms", sequential=True)
    elif isinstance(spec, Mapping) and isinstance(spec.get("transforms"), list):
        out = {**spec, "transforms": _translate_list(spec["transforms"], "transforms",
                                                     sequential=True)}
    elif isinstance(spec, Mapping) and "transforms" not in spec and _nlpaug_class(
            spec.get("name"), "transforms[0]"):
        return {"transforms": _translate_list([spec], "transforms", sequential=True)}
    else:
        return spec
    return spec if out == spec else out


def _changed(aug: Any, attribute: str) -> bool:
    """Whether an nlpaug augmenter's setting differs from its constructor's default."""
    param = inspect.signature(type(aug).__init__).parameters.get(attribute)
    default = None if param is None else param.default
    return getattr(aug, attribute, default) != default


def _entry(aug: Any, path: str) -> dict[str, Any]:
    """An nlpaug-named spec entry with what ``aug`` stores (settings augsvc lacks only when
    they differ from nlpaug's defaults, so that translating them says so)."""
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw
    import nlpaug.flow as naf
    from nlpaug.util import LibraryUtil
    from nlpaug.util.text.tokenizer import Tokenizer

    classes = {naw.SynonymAug: "SynonymAug", naw.WordEmbsAug: "WordEmbsAug",
               naw.ContextualWordEmbsAug: "ContextualWordEmbsAug",
               naw.RandomWordAug: "RandomWordAug", nac.KeyboardAug: "KeyboardAug",
               nac.OcrAug: "OcrAug", naf.Sequential: "Sequential", naf.Sometimes: "Sometimes"}
    kind = type(aug)
    cls = classes.get(kind)
    if cls is None:
        raise SpecError(f"nlpaug's {kind.__module__}.{kind.__qualname__} has no augsvc "
                        "counterpart", path=path, value=kind.__qualname__,
                        allowed=f"nlpaug's {_SUPPORTED}")
    entry: dict[str, Any] = {"name": cls}
    if cls in _FLOWS:
        entry["flow"] = [_entry(child, f"{path}.flow[{i}]") for i, child in enumerate(aug)]
        if cls == "Sometimes":
            entry["aug_p"] = aug.aug_p
        return entry
    char = cls in ("KeyboardAug", "OcrAug")
    amounts = ("aug_word_p", "aug_word_min", "aug_word_max", "min_char") if char else tuple(
        _AMOUNTS)
    entry.update({key: getattr(aug, key) for key in amounts})
    entry["action"] = aug.action
    if aug.stopwords is not None:
        entry["stopwords"] = list(aug.stopwords)
    if aug.stopwords_regex is not None:
        entry["stopwords_regex"] = getattr(aug.stopwords_regex, "pattern", aug.stopwords_regex)
    for key in ("tokenizer", "reverse_tokenizer"):
        if getattr(aug, key) is not getattr(Tokenizer, key):
            entry[key] = repr(getattr(aug, key))
    if cls == "SynonymAug":
        entry.update(aug_src=aug.aug_src, lang=aug.lang)
    elif cls == "WordEmbsAug":
        entry.update(model_type=aug.model_type, model_path=aug.model_path, top_k=aug.top_k)
    elif cls == "ContextualWordEmbsAug":
        entry.update(model_path=aug.model_path, top_k=aug.model.top_k)
    elif cls == "KeyboardAug":
        entry["lang"] = aug.lang
        shipped = os.path.join(LibraryUtil.get_res_dir(), "char", "keyboard", f"{aug.lang}.json")
        if aug.model_path != shipped:
            entry["model_path"] = aug.model_path
    unsupported = {"WordEmbsAug": ("n_gram_separator",),
                   "KeyboardAug": ("include_special_char", "include_numeric",
                                   "include_upper_case")}.get(cls, ())
    for key in (*unsupported, *(("aug_char_p", "aug_char_min", "aug_char_max") if char else ())):
        if _changed(aug, key):
            entry[key] = getattr(aug, key)
    return entry


def from_nlpaug(augmenter: Any) -> dict[str, Any]:
    """The augsvc text spec of an nlpaug (1.1.11) augmenter or flow: SynonymAug, WordEmbsAug,
    ContextualWordEmbsAug, RandomWordAug, KeyboardAug, OcrAug, Sequential or Sometimes.

    aug_p, aug_min, aug_max, top_k, stopwords (when set), min_char and the model or vectors
    path carry over; the device, batch size and other backend settings are left to augsvc.

    Raises:
        SpecError: another augmenter class, or a setting augsvc has no counterpart for.
    """
    return {"transforms": _translate_node(_entry(augmenter, "augmenter"), "augmenter")}
