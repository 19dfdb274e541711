"""The page's fields as values the library takes, checked by the library's own checks.

Each problem is raised as a :class:`FieldError` naming the page's field it belongs to (``spec``,
``image``, ``targets``, ``seed``, ``n``, ``texts``, ``filter``), or ``run`` for one met while
augmenting; :func:`error_reply` turns any exception into the HTTP status and JSON the page
shows, with the library's message.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import cv2
import numpy as np

from augsvc.errors import AugsvcError, InputError, LimitError, SpecError, unknown_name
from augsvc.explore.backends import RemoteError
from augsvc.image.inputs import check_points
from augsvc.plan import check_int
from augsvc.seeding import check_seed
from augsvc.spec import is_inline_spec, load_spec

__all__ = ["MAX_TEXTS", "MAX_TEXT_CHARS", "MAX_TEXT_N", "FieldError", "error_reply", "field",
           "read_count", "read_seed", "read_spec", "read_targets", "read_texts", "with_filter"]

MAX_TEXTS = 20
"""Sentences per text request, at most."""
MAX_TEXT_N = 16
"""Variants per sentence, at most."""
MAX_TEXT_CHARS = 2000
"""Characters per sentence, at most."""
_STATUS = {"INVALID_ARGUMENT": 400, "RESOURCE_EXHAUSTED": 413, "FAILED_PRECONDITION": 503,
           "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504}
"""HTTP statuses of the server's gRPC statuses; any other is 502 (the server failed us)."""


class FieldError(Exception):
    """A problem the page shows next to one of its fields.

    Attributes:
        field: the page's field (``spec``, ``image``, ``targets``, ``seed``, ``n``, ``texts``,
            ``filter``) or ``run``.
        error: the library's error (its message is shown as it is).
    """

    def __init__(self, field: str, error: AugsvcError) -> None:
        super().__init__(f"{field}: {error}")
        self.field = field
        self.error = error


@contextlib.contextmanager
def field(name: str) -> Iterator[None]:
    """Raise the library's errors of the block as FieldErrors of field ``name``."""
    try:
        yield
    except AugsvcError as exc:
        raise FieldError(name, exc) from exc


def error_reply(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body for ``exc``: 4xx for what the request can fix (a bad spec,
    input or size), 5xx for the rest; the message is the library's (or the server's)."""
    where = exc.field if isinstance(exc, FieldError) else "run"
    error = exc.error if isinstance(exc, FieldError) else exc
    body: dict[str, Any] = {"field": where, "message": str(error), "type": type(error).__name__}
    if isinstance(error, SpecError):
        body.update(path=error.path, transform=error.transform, spec_field=error.field,
                    allowed=error.allowed)
    if isinstance(error, RemoteError):
        body["code"] = error.code
        return _STATUS.get(error.code, 502), {"error": body}
    if isinstance(error, LimitError):
        return 413, {"error": body}
    if isinstance(error, SpecError | InputError):
        return 400, {"error": body}
    from augsvc.resources import ResourceError

    if isinstance(error, ResourceError):
        return 503, {"error": body}
    if isinstance(error, AugsvcError):
        return 500, {"error": body}
    body["message"] = f"internal error: {type(error).__name__}: {error}"
    return 500, {"error": body}


def read_spec(text: Any, presets: Mapping[str, Any], *, pass_names: bool = False) -> Any:
    """The page's spec field as a spec: JSON or YAML text (albumentations' ``A.to_dict`` too), or
    a preset's name. Never a file: the page is not to read the machine's files.

    Args:
        pass_names: a name that is no preset here is passed on as a name (a server may know it).

    Raises:
        SpecError: empty text, a single word that is no preset, or text that does not parse.
    """
    if isinstance(text, dict | list):
        return text
    if not isinstance(text, str):
        raise SpecError(f"the spec must be YAML or JSON text, got {type(text).__name__}")
    name = text.strip()
    if not name:
        raise SpecError("the spec is empty: write a pipeline as YAML or JSON, or a preset name",
                        allowed="presets " + ", ".join(sorted(presets)))
    if name in presets:
        return name
    if re.fullmatch(r"[\w.-]+", name):
        if pass_names:
            return name
        raise SpecError(unknown_name("preset", name, presets)
                        + "; or write the pipeline itself as YAML or JSON")
    # text, never a file name: load_spec reads a one-line name as a file, a newline makes it text
    spec = load_spec(text if is_inline_spec(text) else text + "\n")
    if not isinstance(spec, dict | list):  # a YAML scalar: a path, a number, a sentence
        raise SpecError(f"a pipeline must be a mapping with 'transforms', got {type(spec).__name__}")
    return spec


def read_seed(value: Any) -> int | None:
    """The seed field: empty is None (fresh randomness on every call)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        if not re.fullmatch(r"\s*\d{1,20}\s*", value):
            raise InputError(f"seed must be a whole number in [0, 2**64 - 1], or empty for fresh "
                             f"randomness; got {value[:40]!r}")
        value = int(value)
    check_seed(value, 0)
    return int(value)


def read_count(value: Any, high: int) -> int:
    """The n field: how many samples (or variants) to make."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,6}\s*", value):
        value = int(value)
    return check_int("n", value, 1, high)


def _polygons(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Polygons as an HxW mask: polygon k filled with k + 1."""
    problem = InputError("targets: mask must be a list of polygons, each a list of at least 3 "
                         "[x, y] points")
    if not isinstance(value, list):
        raise problem
    mask = np.zeros(shape[:2], np.uint8)
    for k, polygon in enumerate(value[:255]):
        points = check_points(polygon, f"targets: mask polygon {k}", 2)
        if len(points) < 3 or points.shape[1] != 2:
            raise problem
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], k + 1)
    return mask


def read_targets(value: Any, shape: tuple[int, ...]) -> dict[str, np.ndarray] | None:
    """The targets field: ``{"bboxes": [[...], ...], "keypoints": [[x, y], ...], "mask":
    [polygon, ...]}`` as JSON text or an object; empty is None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"targets are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError("targets must be a JSON object with bboxes, keypoints and/or mask")
    unknown = sorted(set(value) - {"bboxes", "keypoints", "mask"})
    if unknown:
        raise InputError(f"targets: unknown key {unknown[0]!r}; allowed: bboxes, keypoints, mask")
    out: dict[str, np.ndarray] = {}
    if value.get("bboxes") is not None:
        out["bboxes"] = check_points(value["bboxes"], "targets: bboxes", 4)
    if value.get("keypoints") is not None:
        out["keypoints"] = check_points(value["keypoints"], "targets: keypoints", 2)
    if value.get("mask") is not None:
        out["mask"] = _polygons(value["mask"], shape)
    return out or None


def read_texts(value: Any) -> list[str]:
    """The sentences field: one text per line (blank lines skipped), or a list of texts."""
    lines = value.splitlines() if isinstance(value, str) else value
    if not isinstance(lines, list) or not all(isinstance(t, str) for t in lines):
        raise InputError("texts must be text, one sentence per line")
    texts = [t for t in lines if t.strip()]
    if not texts:
        raise InputError("enter a sentence to augment (one per line)")
    if len(texts) > MAX_TEXTS:
        raise LimitError(f"{len(texts)} sentences is over the limit of {MAX_TEXTS} per request")
    longest = max(len(t) for t in texts)
    if longest > MAX_TEXT_CHARS:
        raise LimitError(f"a sentence of {longest} characters is over the limit of "
                         f"{MAX_TEXT_CHARS}")
    return texts


def with_filter(spec: Any, pipeline: Any, choice: Any) -> tuple[Any, Any]:
    """The spec inside a semantic_filter group when the page's filter is on."""
    from augsvc.text.pipeline import TextPipeline

    if not isinstance(choice, dict) or not choice.get("on"):
        return spec, pipeline
    if pipeline is None:
        raise SpecError(f"the semantic filter needs the pipeline itself: {spec!r} is no preset "
                        "of this page; write its spec out")
    transforms = pipeline.to_spec()["transforms"]
    threshold = choice.get("threshold", 0.8)
    if isinstance(threshold, str):
        with contextlib.suppress(ValueError):
            threshold = float(threshold)
    wrapped = {"transforms": [{"semantic_filter": transforms, "threshold": threshold}]}
    return wrapped, TextPipeline(wrapped)
