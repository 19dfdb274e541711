"""Where the page's augmentations run: the library in this process, or an augsvc server.

Both backends answer the same calls with the same results for the same (spec, seed, index): the
server runs the library too. Sample ``k`` of a grid is global index ``k`` under the page's seed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from augsvc.errors import AugsvcError, InputError, unknown_name
from augsvc.plan import check_int, epoch_order

__all__ = ["Augmented", "Backend", "DatasetSample", "ImageJob", "LocalBackend", "RemoteBackend",
           "RemoteError", "TextVariant"]

_IN_FLIGHT = 2
"""AugmentImages calls a remote grid keeps in flight: one image each, so a large upload never
makes a reply of N images."""


class RemoteError(AugsvcError):
    """The server answered a call with an error status; the message is the server's.

    Attributes:
        code: the gRPC status name (``INVALID_ARGUMENT``, ``UNAVAILABLE``, ...).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ImageJob:
    """N augmentations of one image: sample ``k`` is index ``k`` under ``seed``.

    ``spec`` is a spec as data or a preset name; ``bboxes`` and ``keypoints`` are in the
    spec's formats, extra columns riding along; ``mask`` is HxW or HxWxK.
    """

    image: np.ndarray
    spec: Any
    seed: int | None
    n: int
    mask: np.ndarray | None = None
    bboxes: np.ndarray | None = None
    keypoints: np.ndarray | None = None


@dataclass(frozen=True)
class Augmented:
    """One augmented sample and the transforms that fired on it, with their values."""

    index: int
    image: np.ndarray
    params: list[dict[str, Any]]
    mask: np.ndarray | None = None
    bboxes: np.ndarray | None = None
    keypoints: np.ndarray | None = None


@dataclass(frozen=True)
class TextVariant:
    """Variant ``variant`` of text ``source`` (its position in the request), with its ops."""

    source: int
    variant: int
    text: str
    ops: list[dict[str, Any]]


@dataclass(frozen=True)
class DatasetSample:
    """One sample of a dataset, with its targets in the library's forms: ``bboxes`` pascal_voc
    with the class as a fifth column, ``mask`` an HxW class map or HxWxN instance masks."""

    dataset: str
    index: int
    label: int
    sample: Any  # an image array, or a str
    mask: np.ndarray | None = None
    bboxes: np.ndarray | None = None
    keypoints: np.ndarray | None = None


def _from_targets(target: Mapping[str, np.ndarray]) -> dict[str, np.ndarray | None]:
    """The ``as_dict`` form of a Target (what StreamEpoch sends) as ``DatasetSample`` fields."""
    boxes, labels = target.get("boxes"), target.get("labels")
    bboxes = None if boxes is None else np.column_stack(
        [np.asarray(boxes, np.float64).reshape(-1, 4),
         np.asarray(labels if labels is not None else np.zeros(len(boxes)), np.float64)])
    masks = target.get("masks")  # (N, H, W) instance masks
    mask = np.ascontiguousarray(np.moveaxis(masks, 0, -1)) if masks is not None and len(masks) \
        else target.get("mask")
    return {"mask": mask, "bboxes": bboxes, "keypoints": target.get("keypoints")}


class Backend(Protocol):
    """What the page asks of a backend."""

    def describe(self) -> dict[str, Any]:
        """``{"backend": "library" | "server", "address": ...}`` for the page's header."""

    def augment_images(self, job: ImageJob) -> Iterator[Augmented]:
        """The job's N samples in order (each as soon as it is made)."""

    def augment_texts(self, texts: Sequence[str], spec: Any, *, seed: int | None,
                      n: int) -> list[TextVariant]:
        """``n`` variants of each text, with their ops, text by text."""

    def datasets(self) -> list[dict[str, Any]]:
        """The image datasets a sample can come from: name, size, description."""

    def dataset_sample(self, name: str, index: int) -> DatasetSample:
        """Sample ``index`` of dataset ``name``, with its targets."""

    def close(self) -> None:
        """Let go of what the backend holds (a channel)."""


class LocalBackend:
    """The library in this process.

    Args:
        max_pixels: an image the pipeline could make larger than this is refused (LimitError).
        datasets: name -> path of datasets to offer besides the built-in image datasets.
    """

    def __init__(self, *, max_pixels: int, datasets: Mapping[str, str] | None = None) -> None:
        self.max_pixels = max_pixels
        self.paths = dict(datasets or {})
        # One text request at a time: the text transforms load shared models on first use
        # (WordNet, the sentence encoder, transformers' lazy modules), which is not thread-safe.
        self._text_lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {"backend": "library", "address": None}

    def augment_images(self, job: ImageJob) -> Iterator[Augmented]:
        from augsvc.image.pipeline import ImagePipeline

        pipeline = ImagePipeline(job.spec, max_pixels=self.max_pixels)  # one per request: not shared
        for k in range(job.n):
            out = pipeline(job.image, mask=job.mask, bboxes=job.bboxes, keypoints=job.keypoints,
                           seed=job.seed, index=k, return_params=True)
            yield Augmented(k, out.image, out.params or [], out.mask,
                            None if out.bboxes is None else np.asarray(out.bboxes, np.float64),
                            None if out.keypoints is None else np.asarray(out.keypoints, np.float64))

    def augment_texts(self, texts: Sequence[str], spec: Any, *, seed: int | None,
                      n: int) -> list[TextVariant]:
        from augsvc.text.pipeline import TextPipeline

        pipeline = TextPipeline(spec)
        with self._text_lock:
            outs = pipeline.batch(texts, seed=seed, n=n, return_ops=True)
        return [TextVariant(k // n, o.variant, o.text, o.ops or []) for k, o in enumerate(outs)]

    def _open(self, name: str) -> Any:
        from augsvc.datasets import BUILTIN_DATASETS, open_dataset

        images = [n for n, info in BUILTIN_DATASETS.items() if info.kind == "image"]
        if name not in self.paths and name not in images:
            raise InputError(unknown_name("dataset", name, [*images, *self.paths]))
        return open_dataset(self.paths.get(name, name))

    def datasets(self) -> list[dict[str, Any]]:
        from augsvc.datasets import BUILTIN_DATASETS

        out = []
        for name in [*(n for n, i in sorted(BUILTIN_DATASETS.items()) if i.kind == "image"),
                     *self.paths]:
            info = self._open(name).info
            if info.kind == "image":
                out.append({"name": name, "size": info.size, "description": info.description})
        return out

    def dataset_sample(self, name: str, index: int) -> DatasetSample:
        dataset = self._open(name)
        check_int("index", index, 0, len(dataset) - 1)
        sample, label = dataset.sample(index)
        fields = _from_targets(dataset.target(index).as_dict()) if dataset.info.targets else {}
        return DatasetSample(name, index, label, sample, **fields)

    def close(self) -> None:
        pass


class RemoteBackend:
    """An augsvc server (or replicas) through ``AugmentClient``.

    Args:
        address: ``host:port`` of the server, or several, comma-separated.
        token: the server's bearer token, if it has one.
        tls: a CA certificate file to trust (TLS), or None for plaintext.
        timeout: seconds per call.
    """

    def __init__(self, address: str, *, token: str | None = None, tls: str | None = None,
                 timeout: float = 60.0) -> None:
        from augsvc.client import AugmentClient

        self.address = address
        addresses = [a.strip() for a in address.split(",") if a.strip()]
        self.client = AugmentClient(addresses, token=token, tls=tls, timeout=timeout, retries=2,
                                    reuse_memory=False)

    def describe(self) -> dict[str, Any]:
        return {"backend": "server", "address": self.address}

    def _call(self, run: Any) -> Any:
        """``run()``, with a gRPC error turned into RemoteError (code and the server's message)."""
        import grpc

        try:
            return run()
        except grpc.RpcError as exc:
            code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            raise RemoteError(code, details or code) from None

    def augment_images(self, job: ImageJob) -> Iterator[Augmented]:
        def one(k: int) -> Any:
            return self.client.augment_images_async(
                [job.image], job.spec, seed=job.seed, start=k,
                masks=None if job.mask is None else [job.mask],
                bboxes=None if job.bboxes is None else [job.bboxes],
                keypoints=None if job.keypoints is None else [job.keypoints], return_params=True)

        pending = [self._call(lambda k=k: one(k)) for k in range(min(_IN_FLIGHT, job.n))]
        try:
            for k in range(job.n):
                out = self._call(pending.pop(0).result)[0]
                if k + _IN_FLIGHT < job.n:
                    pending.append(self._call(lambda k=k: one(k + _IN_FLIGHT)))
                yield Augmented(k, out.image, out.params or [], out.mask, out.bboxes, out.keypoints)
        finally:
            for call in pending:
                call.cancel()

    def augment_texts(self, texts: Sequence[str], spec: Any, *, seed: int | None,
                      n: int) -> list[TextVariant]:
        outs = self._call(lambda: self.client.augment_texts(texts, spec, seed=seed, n=n,
                                                            return_ops=True))
        return [TextVariant(k // n, o.variant, o.text, o.ops or []) for k, o in enumerate(outs)]

    def datasets(self) -> list[dict[str, Any]]:
        listed = self._call(self.client.list_datasets)
        return [{"name": d["name"], "size": d["size"], "description": d["description"]}
                for d in listed if d["kind"] == "image"]

    def dataset_sample(self, name: str, index: int) -> DatasetSample:
        sizes = {d["name"]: d["size"] for d in self.datasets()}
        if name not in sizes:
            raise InputError(unknown_name("dataset", name, sizes))
        check_int("index", index, 0, sizes[name] - 1)
        # StreamEpoch sends an epoch in the plan's order: ask for the one batch of size 1 that
        # holds sample ``index`` (the plan is a pure function, so its position is known here)
        position = int(np.flatnonzero(epoch_order(sizes[name], seed=0, epoch=0) == index)[0])
        stream = self.client.stream_epoch(name, None, seed=0, epoch=0, batch_size=1,
                                          start_batch=position, retries=1)
        try:
            batch = self._call(lambda: next(stream))
        finally:
            closing = getattr(stream, "close", None)  # a generator: closing it cancels the call
            if closing is not None:
                closing()
        if batch.skipped:
            raise InputError(f"dataset {name!r} sample {index}: {batch.skipped[0][1]}")
        fields = _from_targets(batch.targets[0]) if batch.targets else {}
        return DatasetSample(name, int(batch.indices[0]), int(batch.labels[0]), batch.samples[0],
                             **fields)

    def close(self) -> None:
        self.client.close()
