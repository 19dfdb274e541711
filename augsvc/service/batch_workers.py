"""The worker side of StreamEpoch: batches read and augmented in worker processes.

Workers hold their own dataset and pipeline caches; the bytes they produce are the library's for
(spec, seed, epoch * size + index), whatever the worker. A worker writes a finished image batch
into the shared-memory slot the server lends it (``augsvc.service.slots``) when it fits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from augsvc.datasets import Dataset, Skipped, Target, open_dataset
from augsvc.kinds import augment_batch, jpeg_scales
from augsvc.memory import reuse_large_buffers
from augsvc.plan import augment_index, augment_indices
from augsvc.service.pipelines import bound_images, build_pipeline
from augsvc.wire.tensors import Limits

__all__ = ["BuiltBatch", "InSlot", "WorkerPool", "build_batch", "cached_dataset"]


@lru_cache(maxsize=16)
def cached_dataset(source: str) -> Dataset:
    """The dataset at ``source``, opened once per process (server and each worker)."""
    return open_dataset(source)


@dataclass(frozen=True)
class InSlot:
    """The layout of a batch a worker wrote into the shared-memory slot it was lent."""

    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class BuiltBatch:
    """One built batch, in exactly one of three forms (the other two are None), with the
    dataset indices it holds and the planned samples that could not be read."""

    labels: np.ndarray
    indices: np.ndarray
    skipped: tuple[Skipped, ...] = ()
    targets: list[dict[str, np.ndarray]] | None = None  # Target.as_dict() per sample
    stacked: np.ndarray | None = None  # images of one shape and dtype: one (N, H, W[, C]) array
    in_slot: InSlot | None = None  # the same array, written into the lent slot instead
    samples: list[Any] | None = None  # texts, or images that differ in shape or dtype


def build_batch(source: str, spec_json: str | None, seed: int, epoch: int, limits: Limits,
                indices: np.ndarray, slot: tuple[str, int] | None = None) -> BuiltBatch:
    """Read and augment one batch (runs in a worker process, or inline without a pool).

    Args:
        limits: every sample's output is bounded (``max_pixels``), and the batch's
            (``max_reply_bytes``), before any augmentation runs.
        slot: (name, size) of a shared-memory slot to write the batch into, when it is one
            array that fits; it then reaches the server without being pickled.

    Raises:
        LimitError: a sample, or the batch, would be over the limits.
    """
    dataset = cached_dataset(source)
    # Unreadable files are skipped and reported, or raise; JPEGs the pipeline's first step
    # shrinks anyway are decoded smaller (augsvc.image.reduced).
    taken = dataset.take(indices, _scale_for(dataset, spec_json, seed, epoch))
    samples, targets = taken.samples, taken.targets
    if spec_json is not None and samples:
        samples, targets = _augment(dataset, spec_json, seed, epoch, limits, taken.indices,
                                    samples, targets, taken.sources)
    report = BuiltBatch(taken.labels, taken.indices, taken.skipped,  # filled in below
                        None if targets is None else [t.as_dict() for t in targets])
    if dataset.info.kind != "image" or not samples or \
            len({(np.shape(x), np.asarray(x).dtype) for x in samples}) != 1:
        return dataclasses.replace(report, samples=samples)
    first = np.asarray(samples[0])
    shape = (len(samples), *first.shape)
    if slot is not None and int(np.prod(shape)) * first.dtype.itemsize <= slot[1]:
        np.stack(samples, out=np.ndarray(shape, first.dtype, buffer=_slot_buffer(slot[0])))
        return dataclasses.replace(report, in_slot=InSlot(shape, first.dtype.str))
    return dataclasses.replace(report, stacked=np.stack(samples))  # one array crosses the process boundary


def _scale_for(dataset: Dataset, spec_json: str | None, seed: int, epoch: int
               ) -> Callable[[int, int, int], int] | None:
    """What ``Dataset.take`` asks for the scale of each JPEG, for an image pipeline."""
    if spec_json is None or dataset.info.kind != "image":
        return None
    size = len(dataset)
    return jpeg_scales(build_pipeline("image", json.loads(spec_json)), seed,
                       lambda index: augment_index(epoch, index, size))


def _augment(dataset: Dataset, spec_json: str, seed: int, epoch: int, limits: Limits,
             indices: np.ndarray, samples: list[Any], targets: list[Target] | None,
             sources: list[tuple[int, int] | None] | None = None
             ) -> tuple[list[Any], list[Target] | None]:
    kind = dataset.info.kind
    pipeline: Any = build_pipeline(kind, json.loads(spec_json))
    if kind == "image":
        bound_images(pipeline, [np.asarray(x) for x in samples],
                     [f"dataset sample {int(i)}" for i in indices], limits,
                     "ask for a smaller batch_size")
    return augment_batch(pipeline, samples, targets, seed=seed,
                         indices=augment_indices(epoch, len(dataset), indices), sources=sources)


_attached: OrderedDict[str, SharedMemory] = OrderedDict()  # in a worker: slots it has opened


def _slot_buffer(name: str) -> memoryview:
    """The memory of slot ``name`` (opened once per worker; the 64 most recent stay open)."""
    slot = _attached.get(name)
    if slot is None:
        # Workers share the server's resource tracker (spawned children do), so opening a slot
        # registers nothing new and the server's unlink is the one that counts.
        slot = _attached[name] = SharedMemory(name)
        while len(_attached) > 64:
            _attached.popitem(last=False)[1].close()
    _attached.move_to_end(name)
    buffer = slot.buf
    assert buffer is not None  # None only after close()
    return buffer


def _warm() -> int:
    """Run once in each new worker: import everything so the first batch is not slow."""
    return os.getpid()


def _start_worker(parent: int) -> None:
    """Worker initializer: batch buffers are reused (``augsvc.memory``), and a daemon thread ends
    this worker once the server process ``parent`` is gone (a pool's workers otherwise outlive a
    server killed with SIGKILL). The pid comes from the server, since a worker may finish
    importing only after the server died."""
    reuse_large_buffers()

    def watch() -> None:
        while os.getppid() == parent:  # reparented when the server dies
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="augsvc-parent-watch", daemon=True).start()


class WorkerPool:
    """The batch worker processes, started on first use and replaced when one dies.

    Args:
        workers: worker processes (0: none; batches are then built in the calling thread).
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # request threads may ask for the pool at once

    def get(self) -> ProcessPoolExecutor | None:
        """The pool, started now if there is none (spawned: forking a gRPC process is unsafe)."""
        with self._lock:
            if self.workers > 0 and self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, initializer=_start_worker,
                                                 initargs=(os.getpid(),),
                                                 mp_context=multiprocessing.get_context("spawn"))
                for future in [self._pool.submit(_warm) for _ in range(self.workers)]:
                    future.result()
            return self._pool

    @contextlib.contextmanager
    def discarded_if_broken(self, pool: ProcessPoolExecutor | None) -> Iterator[None]:
        """Work on ``pool``; should a worker die in it, the pool goes and the next ``get``
        starts a fresh one (a broken pool refuses all further work)."""
        try:
            yield
        except BrokenProcessPool:
            with self._lock:
                if pool is not None and self._pool is pool:
                    self._pool = None
                    pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
