"""Accept pipelines in albumentations' own serialized form (``A.to_dict``), within an allow-list."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

import albumentations as A

from augsvc.errors import SpecError, did_you_mean
from augsvc.image.transforms import ENTRIES
from augsvc.spec import MAX_SPEC_DEPTH, MAX_SPEC_NODES

__all__ = ["ALLOWED_CLASSES", "build_from_albu_dict", "is_albu_dict"]

_COMPOSITIONS = frozenset({"Compose", "OneOf", "SomeOf", "Sequential"})
ALLOWED_CLASSES: frozenset[str] = (
    frozenset(e.albu.__name__ for e in ENTRIES) | _COMPOSITIONS | {"ShiftScaleRotate", "NoOp"}
)
"""albumentations classes an ``A.to_dict`` pipeline may use: the ones augsvc wraps."""


def is_albu_dict(raw: Any) -> bool:
    """True for ``A.to_dict`` output (``{"__version__": ..., "transform": {...}}``)."""
    return isinstance(raw, Mapping) and isinstance(raw.get("transform"), Mapping) and (
        "__class_fullname__" in raw["transform"])


def _check_classes(node: Any, path: str, budget: list[int], depth: int = 0) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise SpecError(f"the pipeline has more than {MAX_SPEC_NODES} transforms and compositions",
                        path=path, allowed=f"at most {MAX_SPEC_NODES}")
    if depth > MAX_SPEC_DEPTH:
        raise SpecError(f"compositions are nested more than {MAX_SPEC_DEPTH} levels deep",
                        path=path, allowed=f"at most {MAX_SPEC_DEPTH} levels")
    if not isinstance(node, Mapping):
        raise SpecError(f"expected a transform mapping, got {type(node).__name__}", path=path)
    name = str(node.get("__class_fullname__", "")).rsplit(".", 1)[-1]
    if name not in ALLOWED_CLASSES:
        raise SpecError(
            f"albumentations class {name!r} is not allowed{did_you_mean(name, sorted(ALLOWED_CLASSES))}",
            path=path, field="__class_fullname__", value=name,
            allowed=", ".join(sorted(ALLOWED_CLASSES)))
    children = node.get("transforms", []) if name in _COMPOSITIONS else []
    if not isinstance(children, list):
        raise SpecError(f"'transforms' of a {name} must be a list", path=path, field="transforms")
    for i, child in enumerate(children):
        _check_classes(child, f"{path}.transforms[{i}]", budget, depth + 1)


def build_from_albu_dict(raw: Mapping[str, Any]) -> tuple[A.Compose, dict[str, Any]]:
    """Build a Compose from ``A.to_dict`` data after checking every class against the allow-list.

    Returns:
        the Compose and a private copy of the dict (what ``to_spec`` gives back).

    Raises:
        SpecError: a class outside the allow-list, or arguments albumentations rejects.
    """
    _check_classes(raw["transform"], "transform", [MAX_SPEC_NODES])
    if str(raw["transform"]["__class_fullname__"]).rsplit(".", 1)[-1] != "Compose":
        raise SpecError("the top-level albumentations transform must be a Compose", path="transform")
    kept = copy.deepcopy(dict(raw))
    built = copy.deepcopy(kept)
    for key in ("bbox_params", "keypoint_params"):
        params = built["transform"].get(key)
        if isinstance(params, dict) and params.get("label_fields"):
            # augsvc carries labels as extra columns of the boxes and keypoints (they are dropped
            # with their box), so albumentations gets no separate label arrays to ask for
            params["label_fields"] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ShiftScaleRotate's deprecation: the user chose it
            compose = A.from_dict(built)
    except Exception as exc:  # pydantic and albumentations raise several types here
        raise SpecError(f"albumentations rejected the pipeline: {exc}", path="transform") from exc
    if not isinstance(compose, A.Compose):
        raise SpecError("the top-level albumentations transform must be a Compose", path="transform")
    return compose, kept
