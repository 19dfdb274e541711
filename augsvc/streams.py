"""Epochs over the network: a resuming StreamEpoch iterator and torch IterableDatasets over it.

``stream_epoch`` asks a server (or several replicas behind gRPC's round_robin) for one epoch's
batches and, when the connection breaks or the server stops sending (a hung replica), asks
again from the first batch it has not received: the epoch plan is a pure function of the
request, so any replica continues exactly where the last one stopped and every sample of the
shard arrives once.

``RemoteEpochDataset`` wraps it for a training loop: a background thread keeps ``prefetch``
batches ready, and the shard is chosen from the DDP rank and the DataLoader worker so that
``world_size x num_workers`` streams split the epoch between them without overlap.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from augsvc.errors import AugsvcError
from augsvc.image.dataset import stack_images
from augsvc.service.codec import Limits, decode_image, from_tensor
from augsvc.service.errors import RETRY_PUSHBACK_KEY
from augsvc.v1 import augment_pb2 as pb

if TYPE_CHECKING:
    from augsvc.client import AugmentClient

__all__ = ["EpochBatch", "Prefetch", "RemoteAugmentDataset", "RemoteEpochDataset", "stream_epoch",
           "worker_shard"]

_PARTS = {"all": pb.PART_ALL, "train": pb.PART_TRAIN, "holdout": pb.PART_HOLDOUT}
_RETRY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.UNKNOWN,
          grpc.StatusCode.INTERNAL)
_LIMITS = Limits(max_tensor_bytes=2**40, max_pixels=2**62)
# The longest wait a server's retry hint buys: the hint speaks for the replica that answered,
# and round_robin sends the next attempt to the next replica, which may be free at once; a
# hint of minutes (or a garbled one) must not park a training run.
_MAX_PUSHBACK = 10.0
# How long a stream keeps asking servers that answer "busy, retry" (with a hint) before it gives
# up: such answers are no failure of the replica and do not use up ``retries``.
_MAX_BUSY_SECONDS = 120.0
_log = logging.getLogger("augsvc.client")


@dataclass(frozen=True)
class EpochBatch:
    """One received batch: samples (HxW(xC) arrays or strings), labels and dataset indices.

    ``stacked`` is the whole image batch as one (N, H, W[, C]) array when the server sent it so
    (images of one shape); ``samples`` are then views into it.
    """

    batch_index: int
    num_batches: int
    samples: list[Any]
    labels: np.ndarray
    indices: np.ndarray
    stacked: np.ndarray | None = None


def _decode(reply: pb.EpochBatch) -> EpochBatch:
    stacked = from_tensor(reply.stacked, "stacked", _LIMITS) if reply.HasField("stacked") else None
    samples: list[Any] = list(stacked) if stacked is not None else [
        decode_image(image, f"images[{k}]", _LIMITS) for k, image in enumerate(reply.images)]
    return EpochBatch(reply.batch_index, reply.num_batches, samples or list(reply.texts),
                      np.asarray(reply.labels, dtype=np.int64), np.asarray(reply.indices, np.int64),
                      stacked)


class _StallWatch:
    """Cancels a streaming call that sends nothing for ``timeout`` seconds while it is awaited.

    Only the waits inside :meth:`next` count: while the consumer holds a batch the server is
    rightly held back by flow control, and a slow training step is no stall. One thread per
    call sleeps until the current wait's deadline; ``timeout=None`` watches nothing.
    """

    def __init__(self, call: Any, timeout: float | None) -> None:  # call: gRPC's stream iterator
        self._call, self._timeout = call, timeout
        self._deadline: float | None = None  # monotonic time the awaited message is due by
        self._closed = False
        self._wake = threading.Condition()
        self.fired = False  # set before the cancel, so the CANCELLED that follows is known ours
        if timeout is not None:
            threading.Thread(target=self._run, name="augsvc-stall-watch", daemon=True).start()

    def next(self) -> Any:
        """The call's next message, or None at its end; raises its ``grpc.RpcError``."""
        if self._timeout is None:
            return next(self._call, None)
        with self._wake:
            self._deadline = time.monotonic() + self._timeout
            self._wake.notify()
        try:
            return next(self._call, None)
        finally:
            with self._wake:
                self._deadline = None

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while not self._closed:
                left = None if self._deadline is None else self._deadline - time.monotonic()
                if left is not None and left <= 0:
                    self.fired = True
                    break
                self._wake.wait(left)  # until the deadline, or woken by next() and close()
        if self.fired:
            self._call.cancel()  # outside the lock: the waiting next() wakes with CANCELLED


def _retry_hint(trailers: Sequence[tuple[str, str | bytes]] | None) -> float | None:
    """The wait in seconds a server asked for (``grpc-retry-pushback-ms``), at most
    ``_MAX_PUSHBACK``; None without a hint or with one that is not a whole number of ms."""
    for key, value in trailers or ():
        if key == RETRY_PUSHBACK_KEY:
            try:
                ms = int(value.decode() if isinstance(value, bytes) else value)
            except ValueError:
                return None
            return min(ms / 1000, _MAX_PUSHBACK) if ms >= 0 else None
    return None


def stream_epoch(client: AugmentClient, dataset: str, spec: Any = None, *, seed: int, epoch: int,
                 batch_size: int, shard: int = 0, num_shards: int = 1, start_batch: int = 0,
                 part: str = "all", holdout_fraction: float = 0.0, limit: int = 0,
                 retries: int = 8, backoff: float = 0.2,
                 stall_timeout: float | None = 30.0) -> Iterator[EpochBatch]:
    """The batches of one epoch, resuming on another replica when a server goes away or hangs.

    Args:
        client: an :class:`~augsvc.client.AugmentClient` (one address or several replicas).
        dataset: a name from ``client.list_datasets()``.
        spec: an augmentation spec or preset name; None streams the samples as stored.
        part, holdout_fraction, limit: which samples the epoch covers (see the proto).
        retries: reconnection attempts in a row (UNAVAILABLE, broken or stalled streams) before
            giving up; the wait doubles from ``backoff`` seconds each time, to at most 5 s
            (about 20 s in all by default: long enough for a restarted replica to come back).
            A busy server's answer with a retry hint (``grpc-retry-pushback-ms``) is waited out
            as asked (up to 10 s each) and uses up no retry, for up to 120 s in all.
        stall_timeout: seconds to wait for the next batch before the call is cancelled and the
            epoch resumed from that batch (on the next replica, by round_robin): a replica that
            hangs, or a host gone without closing its connection, costs at most
            ``stall_timeout + backoff`` seconds. Waits only count while the consumer asks for a
            batch; raise it above the slowest batch the server may take to build. None waits
            forever (then only the client's ``keepalive`` notices a dead connection).

    Raises:
        grpc.RpcError: the server's status (INVALID_ARGUMENT, ...) or the last failure.
        TimeoutError: the last of ``retries + 1`` attempts in a row stalled.
        AugsvcError: a server answered with a batch out of order.
        ValueError: an unknown ``part``, or ``stall_timeout`` not above 0.
    """
    if part not in _PARTS:
        raise ValueError(f"part must be one of {sorted(_PARTS)}, got {part!r}")
    if stall_timeout is not None and not stall_timeout > 0:
        raise ValueError(f"stall_timeout must be > 0 seconds or None, got {stall_timeout}")
    from augsvc.client import pipeline_message  # client imports this module lazily too

    next_batch, failures, busy_waited = start_batch, 0, 0.0
    while True:
        request = pb.StreamEpochRequest(
            request_id=uuid.uuid4().hex, dataset=dataset, seed=seed, epoch=epoch,
            batch_size=batch_size, shard=shard, num_shards=num_shards, start_batch=next_batch,
            part=_PARTS[part], holdout_fraction=holdout_fraction, limit=limit)
        if spec is not None:
            request.pipeline.CopyFrom(pipeline_message(spec))
        call = client.stub.StreamEpoch(request)
        watch = _StallWatch(call, stall_timeout)
        try:
            while (reply := watch.next()) is not None:
                if reply.batch_index != next_batch:
                    raise AugsvcError(f"expected batch {next_batch}, the server sent "
                                      f"{reply.batch_index}")
                yield _decode(reply)
                next_batch, failures = next_batch + 1, 0
            return
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            stalled = watch.fired and code == grpc.StatusCode.CANCELLED
            if not stalled and code not in _RETRY:
                raise
            hint = _retry_hint(exc.trailing_metadata()) if isinstance(exc, grpc.Call) else None
            if hint is not None and busy_waited + hint <= _MAX_BUSY_SECONDS:
                # Busy, not broken: wait as asked, without using up a retry.
                busy_waited += hint
                _log.warning("stream of %s epoch %d: the server is busy (%s); asking again at "
                             "batch %d in %.3g s (the server's retry hint)", dataset, epoch,
                             exc.details() if isinstance(exc, grpc.Call) else "?", next_batch, hint)
                time.sleep(hint)
                continue
            if failures >= retries:
                if stalled:
                    raise TimeoutError(
                        f"stream of {dataset} epoch {epoch} gave up after {failures + 1} failed "
                        f"attempts in a row, the last with no batch for {stall_timeout:g} s; "
                        "raise stall_timeout if the server needs longer for a batch") from exc
                raise
            failures += 1
            wait = hint if hint is not None else min(5.0, backoff * 2 ** (failures - 1))
            if stalled:
                _log.warning("stream of %s epoch %d stalled: no batch for %g s (stall_timeout), "
                             "cancelled; resuming at batch %d in %.3g s, attempt %d of %d",
                             dataset, epoch, stall_timeout, next_batch, wait, failures, retries)
            else:
                _log.warning("stream of %s epoch %d broke (%s); resuming at batch %d in %.3g s%s, "
                             "attempt %d of %d", dataset, epoch, code.name if code else "?",
                             next_batch, wait, " (the server's retry hint)" if hint is not None
                             else "", failures, retries)
            time.sleep(wait)
        finally:
            watch.close()
            call.cancel()  # the consumer stopped early, or the stream broke: free the server


def worker_shard(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(shard, num_shards) for this DDP rank and DataLoader worker: rank r, worker w of W is shard
    ``r * W + w`` of ``world_size * W``. Rank and world size default to ``torch.distributed``'s."""
    if rank is None or world_size is None:
        dist = torch.distributed
        ready = dist.is_available() and dist.is_initialized()
        rank = dist.get_rank() if ready else 0
        world_size = dist.get_world_size() if ready else 1
    worker = get_worker_info()
    workers, worker_id = (worker.num_workers, worker.id) if worker is not None else (1, 0)
    return rank * workers + worker_id, world_size * workers


class RemoteEpochDataset(IterableDataset[Any]):
    """Batches of a server-side dataset, augmented by the service, for a torch training loop.

    Items are whole batches ``(x, labels)``, or ``(x, labels, indices)`` with ``with_indices``:
    x is a uint8 ``(B, C, H, W)`` tensor for images and a list of strings for text; use
    ``DataLoader(ds, batch_size=None)`` or iterate directly.

    Args:
        addresses: one server or several replicas.
        dataset, spec, seed, batch_size, part, holdout_fraction, limit: as in :func:`stream_epoch`.
        prefetch: batches kept ready ahead of the consumer by a background thread.
        rank, world_size: the DDP position; default: from ``torch.distributed`` when initialised.
        stall_timeout: seconds without a batch before the stream resumes on another replica,
            None to wait forever (:func:`stream_epoch`).
        client_options: keyword arguments for :class:`~augsvc.client.AugmentClient` (token, tls,
            keepalive).

    Call :meth:`set_epoch` before each epoch.
    """

    def __init__(self, addresses: str | Sequence[str], dataset: str, spec: Any = None, *,
                 seed: int, batch_size: int, epoch: int = 0, part: str = "all",
                 holdout_fraction: float = 0.0, limit: int = 0, prefetch: int = 4,
                 rank: int | None = None, world_size: int | None = None,
                 with_indices: bool = False, client_options: dict[str, Any] | None = None,
                 stall_timeout: float | None = 30.0) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch must be >= 1, got {prefetch}")
        if stall_timeout is not None and not stall_timeout > 0:
            raise ValueError(f"stall_timeout must be > 0 seconds or None, got {stall_timeout}")
        self.addresses, self.dataset, self.spec = addresses, dataset, spec
        self.seed, self.batch_size, self.epoch = seed, batch_size, epoch
        self.part, self.holdout_fraction, self.limit = part, holdout_fraction, limit
        self.prefetch, self.rank, self.world_size = prefetch, rank, world_size
        self.client_options = client_options or {}
        self.with_indices = with_indices
        self.stall_timeout = stall_timeout
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Stream ``epoch`` next, from batch ``start_batch`` of this stream's shard."""
        self.epoch, self.start_batch = epoch, start_batch

    def shard(self) -> tuple[int, int]:
        """(shard, num_shards) of this process and DataLoader worker."""
        return worker_shard(self.rank, self.world_size)

    def open(self, client: AugmentClient) -> Prefetch:
        """Start streaming the current epoch through ``client`` now; iterate the result.

        Opening the next epoch while the current one finishes hides the stream's start-up (the
        server builds its first batches meanwhile), and a client kept across epochs saves a
        connection per epoch. Close the result if it is not consumed to the end.
        """
        shard, num_shards = self.shard()
        epoch, start_batch = self.epoch, self.start_batch

        def batches() -> Iterator[EpochBatch]:  # runs on the thread: reads no mutable state
            return stream_epoch(
                client, self.dataset, self.spec, seed=self.seed, epoch=epoch,
                batch_size=self.batch_size, shard=shard, num_shards=num_shards,
                start_batch=start_batch, part=self.part,
                holdout_fraction=self.holdout_fraction, limit=self.limit,
                stall_timeout=self.stall_timeout)

        return Prefetch(batches, self._item, self.prefetch)

    def __iter__(self) -> Iterator[Any]:
        from augsvc.client import AugmentClient

        # A connection per iteration, made where it is used: a gRPC channel must not cross the
        # fork into DataLoader workers.
        client = AugmentClient(self.addresses, **self.client_options)
        batches = self.open(client)
        try:
            yield from batches
        finally:
            batches.close()
            client.close()

    def _item(self, batch: EpochBatch) -> Any:
        """A received batch as the dataset's item (runs on the prefetch thread)."""
        labels = torch.from_numpy(batch.labels)
        if batch.stacked is not None:  # (N, H, W[, C]) -> (N, C, H, W), one copy
            stacked = batch.stacked if batch.stacked.ndim == 4 else batch.stacked[..., None]
            x: Any = torch.from_numpy(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2)))
        elif batch.samples and isinstance(batch.samples[0], np.ndarray):
            x = stack_images(batch.samples)
        else:
            x = batch.samples
        return (x, labels, torch.from_numpy(batch.indices)) if self.with_indices else (x, labels)

class Prefetch:
    """Items made by a background thread, at most ``size`` ahead of the consumer.

    ``produce()`` is called on the thread and its items are passed through ``convert`` there;
    an exception on the thread is raised to the consumer. ``close()`` stops the thread (also
    when nothing was consumed).
    """

    def __init__(self, produce: Callable[[], Iterator[Any]], convert: Callable[[Any], Any],
                 size: int) -> None:
        self._ready: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(produce, convert),
                                        name="augsvc-prefetch", daemon=True)
        self._thread.start()

    def _run(self, produce: Callable[[], Iterator[Any]], convert: Callable[[Any], Any]) -> None:
        try:
            for item in produce():
                if not self._put(convert(item)):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=0.1)  # bounded: never runs far ahead
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Prefetch:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        item = self._ready.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        return item

    def close(self) -> None:
        self._done = True
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._ready.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.05)


_END = object()  # the producer's last item


class RemoteAugmentDataset(IterableDataset[Any]):
    """A local dataset augmented by the service: this process reads, the servers augment.

    Each epoch visits ``base`` in the shuffled order of ``augsvc.datasets.epoch_batches`` (seed,
    epoch, and the shard of this DDP rank and DataLoader worker) and sends each batch as one
    AugmentImages call with the samples' global indices ``epoch * len(base) + i``, so the result
    equals ``AugmentedImageDataset`` in-process. ``prefetch`` calls are kept in flight; with
    several addresses they are spread over the replicas by round_robin.

    Args:
        addresses: one server or several replicas.
        base: indexable with ``len``: HxW(xC) uint8 arrays or ``(image, label)`` pairs.
        spec: the augmentation spec or a server preset name.
        seed: the run's seed (batch order and augmentation).
        batch_size: samples per call and per item.
        shuffle: False visits ``base`` in order (still sharded).
        client_options: keyword arguments for :class:`~augsvc.client.AugmentClient`.

    Items are ``(x, labels)`` (uint8 ``(B, C, H, W)`` and int64) for labelled data, else ``x``.
    """

    def __init__(self, addresses: str | Sequence[str], base: Sequence[Any], spec: Any, *,
                 seed: int, batch_size: int, epoch: int = 0, shuffle: bool = True,
                 prefetch: int = 4, rank: int | None = None, world_size: int | None = None,
                 client_options: dict[str, Any] | None = None) -> None:
        if prefetch < 1 or batch_size < 1:
            raise ValueError(f"prefetch and batch_size must be >= 1, got {prefetch}, {batch_size}")
        self.addresses, self.base, self.spec = addresses, base, spec
        self.seed, self.batch_size, self.epoch, self.shuffle = seed, batch_size, epoch, shuffle
        self.prefetch, self.rank, self.world_size = prefetch, rank, world_size
        self.client_options = client_options or {}

    def set_epoch(self, epoch: int) -> None:
        """Visit and augment as ``epoch`` from the next iteration on."""
        self.epoch = epoch

    def shard(self) -> tuple[int, int]:
        """(shard, num_shards) of this process and DataLoader worker."""
        return worker_shard(self.rank, self.world_size)

    def _plan(self) -> list[np.ndarray]:
        from augsvc.datasets import epoch_batches

        shard, num_shards = self.shard()
        size = len(self.base)
        if self.shuffle:
            return list(epoch_batches(size, seed=self.seed, epoch=self.epoch,
                                      batch_size=self.batch_size, shard=shard, num_shards=num_shards))
        mine = np.arange(shard, size, num_shards)
        return [mine[k: k + self.batch_size] for k in range(0, len(mine), self.batch_size)]

    def __iter__(self) -> Iterator[Any]:
        from collections import deque

        from augsvc.client import AugmentClient, Pending

        client = AugmentClient(self.addresses, **self.client_options)
        size = len(self.base)
        pending: deque[tuple[Pending[Any], list[Any] | None]] = deque()
        plan = iter(self._plan())

        def submit() -> None:
            indices = next(plan, None)
            if indices is None:
                return
            items = [self.base[int(i)] for i in indices]
            labelled = bool(items) and isinstance(items[0], tuple)
            images = [np.asarray(item[0] if labelled else item) for item in items]
            call = client.augment_images_async(images, self.spec, seed=self.seed,
                                               indices=[self.epoch * size + int(i) for i in indices])
            pending.append((call, [item[1] for item in items] if labelled else None))

        try:
            for _ in range(self.prefetch):
                submit()
            while pending:
                call, labels = pending.popleft()
                results = call.result()
                submit()
                x = stack_images([r.image for r in results])
                yield x if labels is None else (x, torch.as_tensor(labels, dtype=torch.int64))
        finally:
            for call, _ in pending:
                call.cancel()
            client.close()
