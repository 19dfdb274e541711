"""The page's API without HTTP: each call takes a request's JSON and returns the reply's.

Every field is checked (``fields.py``, with the library's own checks) before any work; a
problem is raised as a :class:`~augsvc.explore.fields.FieldError` naming the field.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from augsvc.errors import InputError, LimitError, unknown_name
from augsvc.explore import examples
from augsvc.explore.backends import Backend, ImageJob
from augsvc.explore.draw import data_url, render
from augsvc.explore.fields import (
    MAX_TEXT_N,
    MAX_TEXTS,
    field,
    read_count,
    read_seed,
    read_spec,
    read_targets,
    read_texts,
    with_filter,
)
from augsvc.explore.highlight import segments
from augsvc.image.presets import IMAGE_PRESETS
from augsvc.params import to_jsonable
from augsvc.text.presets import TEXT_PRESETS

__all__ = ["MAX_N", "Explorer"]

MAX_N = 32
"""Augmented images per grid, at most."""
_UPLOADS_BYTES = 512 * 1024 * 1024
"""Decoded uploads kept for later requests, in bytes at most (the oldest go first)."""


@lru_cache(maxsize=8)
def _sample_photo(name: str) -> np.ndarray:
    from augsvc.image.samples import SAMPLE_PHOTOS, sample_photos

    if name not in SAMPLE_PHOTOS:
        raise InputError(unknown_name("sample photo", name, SAMPLE_PHOTOS))
    image = sample_photos([name])[name]
    image.flags.writeable = False
    return image


class Explorer:
    """The API over one backend.

    Args:
        backend: where augmentations run (:class:`~augsvc.explore.backends.LocalBackend` or
            :class:`~augsvc.explore.backends.RemoteBackend`).
        max_pixels: images (uploads, and what a pipeline makes) larger than this are refused.
        max_upload_bytes: the largest file an upload may be.
        max_side: the long side, in pixels, of the images the page gets back.
    """

    def __init__(self, backend: Backend, *, max_pixels: int = 25_000_000,
                 max_upload_bytes: int = 32 * 1024 * 1024, max_side: int = 512) -> None:
        self.backend = backend
        self.max_pixels = max_pixels
        self.max_upload_bytes = max_upload_bytes
        self.max_side = max_side
        self.remote = backend.describe()["backend"] == "server"
        self._uploads: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        """What the page needs to start: the backend, the limits and the starting values."""
        return {**self.backend.describe(), "max_upload_bytes": self.max_upload_bytes,
                "max_pixels": self.max_pixels, "max_n": MAX_N, "max_text_n": MAX_TEXT_N,
                "max_texts": MAX_TEXTS, "image_spec": examples.IMAGE_SPEC,
                "text_spec": examples.TEXT_SPEC, "texts": examples.TEXTS}

    def presets(self) -> dict[str, Any]:
        """The presets of each kind with their specs."""
        return {kind: [{"name": name, "spec": spec} for name, spec in sorted(presets.items())]
                for kind, presets in (("image", IMAGE_PRESETS), ("text", TEXT_PRESETS))}

    def samples(self) -> list[dict[str, Any]]:
        """The built-in sample photos: name, size, and example targets where there are some."""
        from augsvc.image.samples import SAMPLE_PHOTOS

        out = []
        for name in SAMPLE_PHOTOS:
            image = _sample_photo(name)
            out.append({"name": name, "width": image.shape[1], "height": image.shape[0],
                        "channels": 1 if image.ndim == 2 else image.shape[2],
                        "targets": examples.SAMPLE_TARGETS.get(name)})
        return out

    def datasets(self) -> list[dict[str, Any]]:
        """The image datasets of the backend."""
        return self.backend.datasets()

    def upload(self, data: bytes) -> dict[str, Any]:
        """Decode an uploaded file (the server's decoder and limits) and keep it for requests."""
        from augsvc.wire.images import decode_image
        from augsvc.wire.tensors import Limits
        from augsvc.wire.v1 import augment_pb2 as pb

        with field("image"):
            if len(data) > self.max_upload_bytes:
                raise LimitError(f"upload: the file is {len(data)} bytes, over the limit of "
                                 f"{self.max_upload_bytes} bytes")
            limits = Limits(max_pixels=self.max_pixels, max_tensor_bytes=self.max_upload_bytes)
            image = decode_image(pb.Image(encoded=data), "upload", limits)
        key = hashlib.sha256(data).hexdigest()[:32]
        with self._lock:
            self._uploads[key] = image
            self._uploads.move_to_end(key)
            while sum(a.nbytes for a in self._uploads.values()) > _UPLOADS_BYTES and \
                    len(self._uploads) > 1:
                self._uploads.popitem(last=False)
        return {"id": key, **self._shape(image), "src": data_url(render(image, max_side=self.max_side))}

    @staticmethod
    def _shape(image: np.ndarray) -> dict[str, Any]:
        return {"width": int(image.shape[1]), "height": int(image.shape[0]),
                "channels": 1 if image.ndim == 2 else int(image.shape[2]), "dtype": str(image.dtype)}

    def _source(self, source: Any) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
        """The image a request names, its targets (a dataset's own) and what to tell the page."""
        if not isinstance(source, dict) or source.get("kind") not in ("sample", "upload", "dataset"):
            raise InputError("source must be {\"kind\": \"sample\" | \"upload\" | \"dataset\", ...}")
        kind = source["kind"]
        if kind == "sample":
            return _sample_photo(str(source.get("name"))), {}, {"kind": kind, "name": source.get("name")}
        if kind == "upload":
            with self._lock:
                image = self._uploads.get(str(source.get("id")))
            if image is None:
                raise InputError("the uploaded file is no longer kept here: choose it again")
            return image, {}, {"kind": kind}
        index = source.get("index", 0)
        if isinstance(index, str) and re.fullmatch(r"\s*\d{1,12}\s*", index):
            index = int(index)
        got = self.backend.dataset_sample(str(source.get("name")), index)
        if not isinstance(got.sample, np.ndarray):
            raise InputError(f"dataset {got.dataset!r} holds texts, not images")
        targets = {k: v for k, v in (("mask", got.mask), ("bboxes", got.bboxes),
                                     ("keypoints", got.keypoints)) if v is not None}
        return got.sample, targets, {"kind": kind, "name": got.dataset, "index": got.index,
                                     "label": got.label}

    def image(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """N augmentations of one image under a spec and seed, drawn with their targets."""
        from augsvc.image.pipeline import ImagePipeline

        with field("spec"):
            spec = read_spec(request.get("spec"), IMAGE_PRESETS, pass_names=self.remote)
            known = not isinstance(spec, str) or spec in IMAGE_PRESETS
            pipeline = ImagePipeline(spec, max_pixels=self.max_pixels) if known else None
        with field("seed"):
            seed = read_seed(request.get("seed"))
        with field("n"):
            n = read_count(request.get("n", 8), MAX_N)
        with field("image"):
            image, targets, about = self._source(request.get("source"))
        with field("targets"):
            targets = read_targets(request.get("targets"), image.shape) or targets
        options = dict(pipeline.spec.options) if pipeline is not None and pipeline.spec else {}
        formats = {"bbox_format": options.get("bbox_format", "pascal_voc"),
                   "keypoint_format": options.get("keypoint_format", "xy")}
        job = ImageJob(image, spec, seed, n, targets.get("mask"), targets.get("bboxes"),
                       targets.get("keypoints"))
        started = time.perf_counter()
        shown = []
        with field("run"):
            if pipeline is not None:  # this page's bound, before any work (a server has its own)
                pipeline.check_size(image.shape, self.max_pixels)
            for out in self.backend.augment_images(job):
                tile = render(out.image, mask=out.mask, bboxes=out.bboxes, keypoints=out.keypoints,
                              max_side=self.max_side, **formats)
                shown.append({"index": out.index, "src": data_url(tile), **self._shape(out.image),
                              "params": to_jsonable(out.params), **_counts(out.bboxes, out.keypoints)})
        original = render(image, mask=job.mask, bboxes=job.bboxes, keypoints=job.keypoints,
                          max_side=self.max_side, **formats)
        return {"source": about, "original": {"src": data_url(original), **self._shape(image),
                                              **_counts(job.bboxes, job.keypoints)},
                "images": shown, "seed": None if seed is None else str(seed), "n": n,
                "spec": pipeline.to_spec() if pipeline is not None else spec,
                "elapsed_ms": round(1000 * (time.perf_counter() - started)),
                **self.backend.describe()}

    def text(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """N variants of each sentence, each cut into segments that mark the words edited."""
        from augsvc.text.pipeline import TextPipeline

        with field("spec"):
            spec = read_spec(request.get("spec"), TEXT_PRESETS, pass_names=self.remote)
            known = not isinstance(spec, str) or spec in TEXT_PRESETS
            pipeline = TextPipeline(spec) if known else None
        with field("filter"):
            spec, pipeline = with_filter(spec, pipeline, request.get("filter"))
        with field("seed"):
            seed = read_seed(request.get("seed"))
        with field("n"):
            n = read_count(request.get("n", 4), MAX_TEXT_N)
        with field("texts"):
            texts = read_texts(request.get("texts"))
        started = time.perf_counter()
        with field("run"):
            variants = self.backend.augment_texts(texts, spec, seed=seed, n=n)
        results: list[dict[str, Any]] = [{"text": t, "variants": []} for t in texts]
        for v in variants:
            cut = segments(texts[v.source], v.ops, v.text)
            verdict = next((o for o in v.ops if o.get("op") == "semantic_filter"), None)
            results[v.source]["variants"].append({
                "variant": v.variant, "text": v.text, "ops": v.ops,
                "segments": None if cut is None else [s.to_dict() for s in cut],
                "similarity": verdict})
        return {"results": results, "seed": None if seed is None else str(seed), "n": n,
                "spec": pipeline.to_spec() if pipeline is not None else spec,
                "elapsed_ms": round(1000 * (time.perf_counter() - started)),
                **self.backend.describe()}


def _counts(bboxes: Any, keypoints: Any) -> dict[str, int | None]:
    return {"bboxes": None if bboxes is None else len(bboxes),
            "keypoints": None if keypoints is None else len(keypoints)}


