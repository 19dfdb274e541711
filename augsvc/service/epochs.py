"""StreamEpoch's engine: datasets by name, the epoch plan, and batches built on a worker pool.

One stream is spread over all cores: batch ``j`` of a request is built (read + augmented) by
any worker process, and batches are sent in order. At most ``window`` batches are in flight per
stream, and a new one is only started when the client has taken one, so a slow client never
makes the server buffer without bound. Workers hold their own dataset and pipeline caches; the
bytes they produce are the library's for (spec, seed, epoch * size + index), whatever the worker.
A worker writes a finished image batch into a shared-memory slot the server lends it, and the
server copies it once, into the reply's wire bytes (``codec.encode_with_tensor``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import shutil
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from augsvc.datasets import BUILTIN_DATASETS, Dataset, open_dataset
from augsvc.errors import InputError, LimitError
from augsvc.kinds import outputs
from augsvc.memory import reuse_large_buffers
from augsvc.plan import EpochPlan, augment_indices
from augsvc.service.pipelines import bound_images, build_pipeline, image_bytes, resolve_spec
from augsvc.spec import dumps
from augsvc.wire.images import check_encoding, encode_image
from augsvc.wire.tensors import Encoded, Limits, encode_with_tensor
from augsvc.wire.v1 import augment_pb2 as pb

__all__ = ["EpochStreamer"]

_PART_NAMES = {pb.PART_ALL: "all", pb.PART_TRAIN: "train", pb.PART_HOLDOUT: "holdout"}


@lru_cache(maxsize=16)
def _dataset(source: str) -> Dataset:
    return open_dataset(source)


@dataclass(frozen=True)
class _InSlot:
    """A batch a worker wrote into the shared-memory slot it was given: the array's layout."""

    shape: tuple[int, ...]
    dtype: str


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


def build_batch(source: str, spec_json: str | None, seed: int, epoch: int, limits: Limits,
                indices: np.ndarray, slot: tuple[str, int] | None = None
                ) -> tuple[list[Any] | np.ndarray | _InSlot, np.ndarray]:
    """Read and augment one batch (runs in a worker process, or inline without a pool).

    Args:
        limits: every sample's output is bounded (``max_pixels``), and the batch's
            (``max_reply_bytes``), before any augmentation runs.
        slot: (name, size) of a shared-memory slot to write the batch into, when it is one
            array that fits; it then reaches the server without being pickled.

    Raises:
        LimitError: a sample, or the batch, would be over the limits.

    Returns:
        (samples, labels): samples as one (N, H, W[, C]) array when the images share a shape
        (an ``_InSlot`` when it was written into ``slot``), else a list of arrays or strings.
    """
    dataset = _dataset(source)
    samples, labels = dataset.samples(indices)
    if spec_json is not None:
        kind = dataset.info.kind
        pipeline: Any = build_pipeline(kind, json.loads(spec_json))
        if kind == "image":
            bound_images(pipeline, [np.asarray(x) for x in samples],
                         [f"dataset sample {int(i)}" for i in indices], limits,
                         "ask for a smaller batch_size")
        results = pipeline.batch(samples, seed=seed,
                                 indices=augment_indices(epoch, len(dataset), indices))
        samples = outputs(results)
    if dataset.info.kind != "image" or not samples or \
            len({(np.shape(x), np.asarray(x).dtype) for x in samples}) != 1:
        return samples, labels
    first = np.asarray(samples[0])
    shape = (len(samples), *first.shape)
    if slot is not None and int(np.prod(shape)) * first.dtype.itemsize <= slot[1]:
        np.stack(samples, out=np.ndarray(shape, first.dtype, buffer=_slot_buffer(slot[0])))
        return _InSlot(shape, first.dtype.str), labels
    return np.stack(samples), labels  # one array crosses the process boundary


class _Slots:
    """Shared-memory buffers that workers write finished image batches into.

    A batch in a slot reaches the server process without being pickled through the pool's pipe,
    and the server copies it once, straight into the reply's wire bytes. Slots are reused across
    batches and streams. At most ``budget`` bytes are held, and never more than half of what is
    free in the shared-memory file system (Docker gives /dev/shm 64 MB unless told otherwise);
    a batch that finds no slot travels pickled, as it would without slots.
    """

    def __init__(self, budget: int = 512 * 1024 * 1024) -> None:
        self.budget = budget
        self._free: list[SharedMemory] = []
        self._held = 0
        self._lock = threading.Lock()  # request threads take and give slots concurrently

    def take(self, size: int) -> SharedMemory | None:
        """A free slot of at least ``size`` bytes, a new one if the budget allows, else None."""
        with self._lock:
            fits = [slot for slot in self._free if slot.size >= size]
            if fits:
                slot = min(fits, key=lambda s: s.size)
                self._free.remove(slot)
                return slot
            while self._free and self._held + size > self.budget:  # too small: make room
                self._drop(self._free.pop(0))
            if self._held + size > self.budget or not _shm_room(size):
                return None
            slot = SharedMemory(create=True, size=size)
            if not _reserve(slot):
                slot.close()
                slot.unlink()
                return None
            self._held += slot.size
            return slot

    def give(self, slot: SharedMemory) -> None:
        """Return a slot once nothing writes into it any more."""
        with self._lock:
            self._free.append(slot)

    def close(self) -> None:
        with self._lock:
            while self._free:
                self._drop(self._free.pop())

    def _drop(self, slot: SharedMemory) -> None:
        self._held -= slot.size
        slot.unlink()
        with contextlib.suppress(BufferError):  # a reply still views it: unmapped when it goes
            slot.close()


def _reserve(slot: SharedMemory) -> bool:
    """Allocate the slot's memory now. The shared-memory file system hands pages out on first
    write, and a worker whose write finds it full dies of SIGBUS; reserving up front turns that
    into a slot refused here (False), and the batch travels pickled."""
    fd = getattr(slot, "_fd", -1)  # POSIX SharedMemory keeps its descriptor open
    if fd < 0 or not hasattr(os, "posix_fallocate"):
        return True  # nothing to reserve with (macOS, Windows): as before
    try:
        os.posix_fallocate(fd, 0, slot.size)
    except OSError:
        return False
    return True


def _shm_room(size: int) -> bool:
    try:
        return shutil.disk_usage("/dev/shm").free >= 2 * size
    except OSError:
        return True  # no /dev/shm (macOS): SharedMemory uses the system's own store


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


@dataclass(frozen=True)
class _Plan:
    source: str
    kind: str
    spec_json: str | None
    batches: list[np.ndarray]  # dataset indices of each batch still to send
    first: int
    total: int
    batch_bytes: int = 0  # a batch's reply, estimated from the first sample's output bound


class EpochStreamer:
    """Serves ListDatasets and StreamEpoch.

    Args:
        datasets: extra datasets by name -> path (folders, .npz, text lines); the built-ins
            (``augsvc.datasets.list_datasets()``) are always there.
        limits: batch size is capped by ``limits.max_samples``.
        workers: worker processes that build batches (0: build them in the calling thread).
        window: batches in flight per stream (default ``2 * workers``).
    """

    def __init__(self, datasets: Mapping[str, str] | None = None, *, limits: Limits | None = None,
                 workers: int = 0, window: int | None = None) -> None:
        self.sources = {name: name for name in BUILTIN_DATASETS}
        for name, path in (datasets or {}).items():
            _dataset(str(path))  # a missing or unreadable dataset fails at start-up, not mid-run
            self.sources[name] = str(path)
        self.limits = limits or Limits()
        self.workers = workers
        self.window = window or max(2, 2 * workers)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()  # request threads may ask for the pool at once
        self._slots = _Slots()
        self._sizes: dict[tuple[str, str | None, int], int] = {}  # batch bytes by (source, spec, size)

    def pool(self) -> ProcessPoolExecutor | None:
        """The worker pool, started on first use (spawned: forking a gRPC process is unsafe)."""
        with self._pool_lock:
            return self._start_pool()

    def _start_pool(self) -> ProcessPoolExecutor | None:
        if self.workers > 0 and self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, initializer=_start_worker,
                                             initargs=(os.getpid(),),
                                             mp_context=multiprocessing.get_context("spawn"))
            for future in [self._pool.submit(_warm) for _ in range(self.workers)]:
                future.result()
        return self._pool

    def _discard(self, pool: ProcessPoolExecutor | None) -> None:
        with self._pool_lock:
            if pool is not None and self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._slots.close()

    def infos(self) -> list[pb.DatasetInfo]:
        """Every dataset this server streams (each is loaded once to learn its size)."""
        out = []
        for name in sorted(self.sources):
            info = _dataset(self.sources[name]).info
            out.append(pb.DatasetInfo(name=name, kind=info.kind, size=info.size,
                                      class_names=list(info.class_names),
                                      description=info.description))
        return out

    def plan(self, request: pb.StreamEpochRequest) -> _Plan:
        """Check a request and lay out its batches.

        Raises:
            InputError: unknown dataset, bad shard/batch arguments or pipeline.
            LimitError: batch size over the limit.
        """
        source = self.sources.get(request.dataset)
        if source is None:
            raise InputError(f"dataset: unknown dataset {request.dataset!r}; this server has "
                             f"{', '.join(sorted(self.sources))}")
        if request.batch_size < 1:
            raise InputError("batch_size must be >= 1")
        check_encoding(request.output_encoding)
        if request.batch_size > self.limits.max_samples:
            raise LimitError(f"batch_size {request.batch_size} is over the limit of "
                             f"{self.limits.max_samples}")
        dataset = _dataset(source)
        epoch_plan = EpochPlan.over_part(
            len(dataset), seed=request.seed, epoch=request.epoch, batch_size=request.batch_size,
            part=_PART_NAMES.get(request.part, "?"),  # type: ignore[arg-type]
            holdout_fraction=request.holdout_fraction, limit=request.limit, shard=request.shard,
            num_shards=request.num_shards or 1)
        part = epoch_plan.part
        assert part is not None  # over_part always names the part's indices
        kind = dataset.info.kind
        spec_json = None
        batch_bytes = 0
        if request.HasField("pipeline"):
            spec = resolve_spec(request.pipeline, kind, self.limits.max_spec_bytes)
            pipeline: Any = build_pipeline(kind, spec)  # validates the spec
            spec_json = dumps(pipeline.to_spec())
            if kind == "image" and len(part):
                # Refused now, not from a worker mid-stream, when the first sample shows it;
                # the workers check every sample of every batch again.
                first = np.asarray(dataset.samples(part[:1])[0][0])
                one, _ = image_bytes(pipeline, first, self.limits.max_pixels,
                                     f"dataset sample {int(part[0])}")
                batch_bytes = one * int(min(request.batch_size, len(part)))
                if batch_bytes > self.limits.max_reply_bytes:
                    raise LimitError(f"batch_size {request.batch_size} of augmented images of "
                                     f"about {one} bytes each could take {batch_bytes} bytes, over "
                                     f"the reply limit of {self.limits.max_reply_bytes}")
        batches = list(epoch_plan.batches(request.start_batch))
        return _Plan(source, kind, spec_json, batches, int(request.start_batch),
                     epoch_plan.num_batches, batch_bytes)

    def stream(self, request: pb.StreamEpochRequest, plan: _Plan,
               is_active: Callable[[], bool]) -> Iterator[pb.EpochBatch | Encoded]:
        """The batches of ``plan`` in order, at most ``window`` in flight, until the client leaves."""
        pool = self.pool()
        args = (plan.source, plan.spec_json, request.seed, request.epoch, self.limits)
        pending: deque[tuple[Future[Any], SharedMemory | None]] = deque()
        todo = iter(plan.batches)
        # Raw image batches go through shared-memory slots, sized by the first batch of the kind.
        key = (plan.source, plan.spec_json, request.batch_size)
        slotted = pool is not None and plan.kind == "image" and \
            request.output_encoding == pb.ENCODING_RAW

        def submit() -> None:
            indices = next(todo, None)
            if indices is None:
                return
            if pool is None:
                future: Future[Any] = Future()
                future.set_result(build_batch(*args, indices))
                pending.append((future, None))
                return
            slot = self._slots.take(self._sizes[key]) if slotted and key in self._sizes else None
            where = (slot.name, slot.size) if slot is not None else None
            pending.append((pool.submit(build_batch, *args, indices, where), slot))

        try:
            for _ in range(self.window if pool is not None else 1):
                submit()
            number = plan.first
            while pending and is_active():
                future, slot = pending.popleft()
                try:
                    samples, labels = future.result()
                    if isinstance(samples, _InSlot):
                        assert slot is not None
                        samples = np.ndarray(samples.shape, samples.dtype, buffer=slot.buf)
                    elif isinstance(samples, np.ndarray):
                        self._sizes[key] = max(samples.nbytes, self._sizes.get(key, 0))
                    submit()
                    reply = self._message(request, plan, number, samples, labels)
                finally:
                    if slot is not None:
                        self._slots.give(slot)  # the reply holds its own copy of the batch
                yield reply
                number += 1
        except BrokenProcessPool:
            self._discard(pool)  # a worker died: the next call gets a fresh pool
            raise
        finally:
            for future, slot in pending:
                if slot is None:
                    future.cancel()
                elif future.cancel() or future.done():
                    self._slots.give(slot)
                else:  # a worker is writing into it: the slot is free once it has finished
                    future.add_done_callback(functools.partial(self._give_back, slot))

    def _give_back(self, slot: SharedMemory, _done: Future[Any]) -> None:
        self._slots.give(slot)

    def _message(self, request: pb.StreamEpochRequest, plan: _Plan, number: int,
                 samples: list[Any] | np.ndarray, labels: np.ndarray) -> pb.EpochBatch | Encoded:
        reply = pb.EpochBatch(request_id=request.request_id, batch_index=number,
                              num_batches=plan.total, labels=labels.tolist(),
                              indices=plan.batches[number - plan.first].tolist())
        if plan.kind == "text":
            reply.texts.extend(samples)
        elif isinstance(samples, np.ndarray) and request.output_encoding == pb.ENCODING_RAW:
            # one array, copied once into the wire bytes: far fewer copies than N images
            return encode_with_tensor(reply, "stacked", samples)
        else:
            reply.images.extend(encode_image(np.asarray(s), request.output_encoding) for s in samples)
        return reply
