"""Pipelines from the wire: a Pipeline message as a spec, and built pipelines cached per thread."""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from augsvc.errors import InputError, LimitError
from augsvc.image.pipeline import ImagePipeline
from augsvc.kinds import PRESETS, make_pipeline
from augsvc.spec import check_nesting, dumps
from augsvc.text.pipeline import TextPipeline
from augsvc.wire.tensors import Limits
from augsvc.wire.v1 import augment_pb2 as pb

__all__ = ["PipelineCache", "bound_images", "build_pipeline", "image_bytes", "resolve_spec"]

P = TypeVar("P")


class PipelineCache:
    """Built pipelines by key, one LRU per thread (pipelines hold random state, so two threads
    must never share one)."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self.local = threading.local()

    def get(self, key: str, build: Callable[[], P]) -> P:
        cache: OrderedDict[str, Any] = getattr(self.local, "cache", None) or OrderedDict()
        self.local.cache = cache
        if key in cache:
            cache.move_to_end(key)
            return cache[key]  # type: ignore[no-any-return]
        value = cache[key] = build()
        if len(cache) > self.size:
            cache.popitem(last=False)
        return value


def resolve_spec(pipeline: pb.Pipeline, kind: str, max_spec_bytes: int = 1024 * 1024) -> Any:
    """A Pipeline message as a spec: its JSON, or the ``kind`` ("image"/"text") preset it names.

    Raises:
        InputError: invalid JSON, an unknown preset, or no pipeline at all.
        SpecError: JSON nested too deeply to be a spec.
        LimitError: spec_json longer than ``max_spec_bytes`` characters.
    """
    source = pipeline.WhichOneof("source")
    if source == "spec_json":
        text = pipeline.spec_json
        if len(text) > max_spec_bytes:
            raise LimitError(f"pipeline.spec_json: {len(text)} characters is over the limit of "
                             f"{max_spec_bytes}")
        check_nesting(text)
        try:
            return json.loads(text)
        except ValueError as exc:  # JSONDecodeError, and integers too long to convert
            raise InputError(f"pipeline.spec_json is not valid JSON: {str(exc)[:200]}") from None
        except RecursionError:  # check_nesting bounds the depth; kept for a smaller stack
            raise InputError("pipeline.spec_json is nested too deeply") from None
    if source == "preset":
        presets = PRESETS[kind]
        if pipeline.preset not in presets:
            raise InputError(f"pipeline.preset: unknown preset {pipeline.preset!r}; {kind} presets: "
                             f"{sorted(presets)}")
        return copy.deepcopy(presets[pipeline.preset])
    raise InputError("the request has no pipeline (give spec_json or preset)")


_PIPELINES = PipelineCache()


def build_pipeline(kind: str, spec: Any) -> ImagePipeline | TextPipeline:
    """The ``kind`` pipeline for ``spec``, from this thread's cache.

    Raises:
        SpecError: the spec is invalid.
    """
    return _PIPELINES.get(f"{kind}:{dumps(spec)}", lambda: make_pipeline(kind, spec))


def image_bytes(pipeline: ImagePipeline, image: np.ndarray, max_pixels: int,
                what: str) -> tuple[int, int]:
    """Bytes of the largest output ``pipeline`` can make of ``image``, and of the largest image
    on the way (``ImagePipeline.output_bound``).

    Raises:
        LimitError: an image on the way would have more than ``max_pixels`` pixels.
    """
    bound = pipeline.check_size(image.shape, max_pixels, what)
    per_pixel = (image.shape[2] if image.ndim == 3 else 1) * pipeline.output_itemsize(image.dtype)
    return bound.pixels * per_pixel, bound.peak_pixels * per_pixel


def bound_images(pipeline: ImagePipeline, images: Sequence[np.ndarray], names: Sequence[str],
                 limits: Limits, advice: str) -> tuple[int, int]:
    """Bound a batch before any work: (bytes of the reply's images, bytes of the largest image
    any one of them holds on the way).

    Raises:
        LimitError: an image over ``limits.max_pixels``, or a reply over
            ``limits.max_reply_bytes`` (the message ends with ``advice``).
    """
    reply = largest = 0
    for image, name in zip(images, names, strict=True):
        out, peak = image_bytes(pipeline, image, limits.max_pixels, name)
        reply, largest = reply + out, max(largest, peak)
    if reply > limits.max_reply_bytes:
        raise LimitError(f"{len(images)} augmented images could take {reply} bytes, over the "
                         f"reply limit of {limits.max_reply_bytes}; {advice}")
    return reply, largest
