"""StreamEpoch's engine: datasets by name, the epoch plan, and one loop that streams batches.

One stream is spread over all cores: batch ``j`` of a request is built (read + augmented) by
any worker process (``augsvc.service.batch_workers``), and batches are sent in order. At most
``window`` batches are in flight per stream, and a new one is only started when the client has
taken one, so a slow client never makes the server buffer without bound. A finished raw image
batch comes back in a shared-memory slot (``augsvc.service.slots``), and the server copies it
once, into the reply's wire bytes (``augsvc.wire.tensors.encode_with_tensor``).
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from augsvc.datasets import BUILTIN_DATASETS, Dataset
from augsvc.errors import InputError, LimitError
from augsvc.plan import EpochPlan
from augsvc.service.batch_workers import BuiltBatch, WorkerPool, build_batch, cached_dataset
from augsvc.service.pipelines import build_pipeline, image_bytes, resolve_spec
from augsvc.service.slots import Lease, SlotPool
from augsvc.spec import dumps
from augsvc.wire.images import check_encoding, encode_image
from augsvc.wire.tensors import Encoded, Limits, encode_with_tensor, to_targets
from augsvc.wire.v1 import augment_pb2 as pb

__all__ = ["EpochStreamer"]

_PART_NAMES = {pb.PART_ALL: "all", pb.PART_TRAIN: "train", pb.PART_HOLDOUT: "holdout"}
_REASON = 500  # characters of a skipped sample's reason sent to the client
_PROBES = 8  # samples tried, at most, to find one that reads for the reply-size estimate
_log = logging.getLogger("augsvc.epochs")


def _first_readable(dataset: Dataset, part: np.ndarray) -> tuple[int, np.ndarray] | None:
    """(index, image) of the first of the part's first samples that can be read: a corrupt
    first file must cost its own sample, not refuse the whole stream."""
    for index in part[:_PROBES]:  # one at a time: a stream's start reads no more than it needs
        taken = dataset.take([index])
        if taken.samples:
            return int(index), np.asarray(taken.samples[0])
    return None


def _report_skipped(dataset: str, batch: BuiltBatch) -> None:
    """Log each sample a batch skipped: the file and why, where an operator looks."""
    for skipped in batch.skipped:
        _log.warning("skipped a sample that cannot be read", extra={"fields": {
            "dataset": dataset, "index": skipped.index, "reason": skipped.reason[:_REASON]}})


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
            cached_dataset(str(path))  # a missing or unreadable dataset fails at start-up, not mid-run
            self.sources[name] = str(path)
        self.limits = limits or Limits()
        self.workers = workers
        self.window = window or max(2, 2 * workers)
        self._workers = WorkerPool(workers)
        self._slots = SlotPool()

    def pool(self) -> ProcessPoolExecutor | None:
        """The worker pool, started on first use."""
        return self._workers.get()

    def close(self) -> None:
        self._workers.close()
        self._slots.close()

    def infos(self) -> list[pb.DatasetInfo]:
        """Every dataset this server streams (each is loaded once to learn its size)."""
        out = []
        for name in sorted(self.sources):
            info = cached_dataset(self.sources[name]).info
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
        source = self._source(request)
        dataset = cached_dataset(source)
        epoch_plan = EpochPlan.over_part(
            len(dataset), seed=request.seed, epoch=request.epoch, batch_size=request.batch_size,
            part=_PART_NAMES.get(request.part, "?"),  # type: ignore[arg-type]
            holdout_fraction=request.holdout_fraction, limit=request.limit, shard=request.shard,
            num_shards=request.num_shards or 1)
        part = epoch_plan.part
        assert part is not None  # over_part always names the part's indices
        spec_json, batch_bytes = None, 0
        if request.HasField("pipeline"):
            spec_json, batch_bytes = self._pipeline(request, dataset, part)
        batches = list(epoch_plan.batches(request.start_batch))
        return _Plan(source, dataset.info.kind, spec_json, batches, int(request.start_batch),
                     epoch_plan.num_batches, batch_bytes)

    def _source(self, request: pb.StreamEpochRequest) -> str:
        """The requested dataset's source, once the dataset, batch size and encoding check out."""
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
        return source

    def _pipeline(self, request: pb.StreamEpochRequest, dataset: Dataset,
                  part: np.ndarray) -> tuple[str, int]:
        """(spec JSON, a batch's estimated reply bytes; 0 unless images) of a valid pipeline."""
        kind = dataset.info.kind
        spec = resolve_spec(request.pipeline, kind, self.limits.max_spec_bytes)
        pipeline: Any = build_pipeline(kind, spec)  # validates the spec
        spec_json = dumps(pipeline.to_spec())
        if kind != "image" or not len(part):
            return spec_json, 0
        # Refused now, not from a worker mid-stream, when the first sample shows it;
        # the workers check every sample of every batch again.
        first = _first_readable(dataset, part)
        if first is None:
            return spec_json, 0  # nothing readable to estimate from: the workers bound each batch
        index, image = first
        one, _ = image_bytes(pipeline, image, self.limits.max_pixels, f"dataset sample {index}")
        batch_bytes = one * int(min(request.batch_size, len(part)))
        if batch_bytes > self.limits.max_reply_bytes:
            raise LimitError(f"batch_size {request.batch_size} of augmented images of "
                             f"about {one} bytes each could take {batch_bytes} bytes, over "
                             f"the reply limit of {self.limits.max_reply_bytes}")
        return spec_json, batch_bytes

    def stream(self, request: pb.StreamEpochRequest, plan: _Plan,
               is_active: Callable[[], bool]) -> Iterator[pb.EpochBatch | Encoded]:
        """The batches of ``plan`` in order, at most ``window`` in flight, until the client leaves."""
        pool = self.pool()
        in_flight = _InFlight(pool, self._slots, request, plan, self.limits)
        with contextlib.closing(in_flight), self._workers.discarded_if_broken(pool):
            in_flight.start(self.window if pool is not None else 1)
            number = plan.first
            while in_flight and is_active():
                with in_flight.oldest() as (samples, batch):
                    in_flight.start(1)  # the client took one: the next may begin
                    reply = self._message(request, plan, number, samples, batch)
                    _report_skipped(request.dataset, batch)
                yield reply  # the reply holds its own copy: the batch's slot is back already
                number += 1

    def _message(self, request: pb.StreamEpochRequest, plan: _Plan, number: int,
                 samples: list[Any] | np.ndarray, batch: BuiltBatch) -> pb.EpochBatch | Encoded:
        reply = pb.EpochBatch(request_id=request.request_id, batch_index=number,
                              num_batches=plan.total, labels=batch.labels.tolist(),
                              indices=batch.indices.tolist(),
                              skipped=[pb.SkippedSample(index=s.index, reason=s.reason[:_REASON])
                                       for s in batch.skipped],
                              targets=[to_targets(t) for t in batch.targets or ()])
        if plan.kind == "text":
            reply.texts.extend(samples)
        elif isinstance(samples, np.ndarray) and request.output_encoding == pb.ENCODING_RAW:
            # one array, copied once into the wire bytes: far fewer copies than N images
            return encode_with_tensor(reply, "stacked", samples)
        else:
            reply.images.extend(encode_image(np.asarray(s), request.output_encoding) for s in samples)
        return reply


class _InFlight:
    """The batches of one stream that were started and not yet sent, oldest first.

    Without a pool a batch is built when it is started, in the calling thread.
    """

    def __init__(self, pool: ProcessPoolExecutor | None, slots: SlotPool,
                 request: pb.StreamEpochRequest, plan: _Plan, limits: Limits) -> None:
        self._pool = pool
        self._slots = slots
        self._args = (plan.source, plan.spec_json, request.seed, request.epoch, limits)
        self._todo = iter(plan.batches)
        self._pending: deque[tuple[Future[BuiltBatch], Lease | None]] = deque()
        # Raw image batches go through shared-memory slots, sized by the first batch of the kind.
        self._key = (plan.source, plan.spec_json, request.batch_size)
        self._slotted = pool is not None and plan.kind == "image" and \
            request.output_encoding == pb.ENCODING_RAW

    def __len__(self) -> int:
        return len(self._pending)

    def start(self, count: int) -> None:
        """Start up to ``count`` more batches (fewer when the plan runs out)."""
        for _ in range(count):
            indices = next(self._todo, None)
            if indices is None:
                return
            self._pending.append(self._started(indices))

    def _started(self, indices: np.ndarray) -> tuple[Future[BuiltBatch], Lease | None]:
        if self._pool is None:
            future: Future[BuiltBatch] = Future()
            future.set_result(build_batch(*self._args, indices))
            return future, None
        lease = self._slots.lease(self._key) if self._slotted else None
        try:
            where = lease.where if lease is not None else None
            return self._pool.submit(build_batch, *self._args, indices, where), lease
        except BaseException:  # a broken or closed pool: no worker ever saw the slot
            if lease is not None:
                lease.end(None)
            raise

    @contextlib.contextmanager
    def oldest(self) -> Iterator[tuple[list[Any] | np.ndarray, BuiltBatch]]:
        """Take the oldest batch, waiting for it: (samples, the batch), where samples is one
        array when the images share a shape. An array in a slot is valid only inside the block."""
        future, lease = self._pending.popleft()
        try:
            batch = future.result()
            yield self._samples(batch, lease), batch
        finally:
            if lease is not None:
                lease.end(future)

    def _samples(self, batch: BuiltBatch, lease: Lease | None) -> list[Any] | np.ndarray:
        if batch.in_slot is not None:
            assert lease is not None  # only a lent slot is written into
            return lease.view(batch.in_slot.shape, batch.in_slot.dtype)
        if batch.stacked is not None:
            self._slots.learn(self._key, batch.stacked.nbytes)
            return batch.stacked
        assert batch.samples is not None  # one of the three forms is always set
        return batch.samples

    def close(self) -> None:
        """Drop the batches not sent (the client left, or one failed); their slots come back."""
        for future, lease in self._pending:
            future.cancel()
            if lease is not None:
                lease.end(future)
