"""Epochs over the network: ``stream_epoch`` resumes a StreamEpoch on any replica.

``stream_epoch`` asks a server (or several replicas behind gRPC's round_robin) for one epoch's
batches and, when the connection breaks or the server stops sending (a hung replica), asks
again from the first batch it has not received: the epoch plan is a pure function of the
request, so any replica continues exactly where the last one stopped and every sample of the
shard arrives once. The torch datasets over it are in ``augsvc.client.datasets``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import numpy as np

from augsvc.errors import AugsvcError
from augsvc.wire.images import decode_image
from augsvc.wire.metadata import RETRY_PUSHBACK_KEY
from augsvc.wire.pipeline import pipeline_message
from augsvc.wire.tensors import Limits, from_targets, from_tensor
from augsvc.wire.v1 import augment_pb2 as pb

__all__ = ["EpochBatch", "stream_epoch"]

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


class _Client(Protocol):
    """What a stream needs of a client: an Augmenter stub (an ``AugmentClient`` has one)."""

    stub: Any


@dataclass(frozen=True)
class EpochBatch:
    """One received batch: samples (HxW(xC) arrays or strings), labels and dataset indices.

    ``stacked`` is the whole image batch as one (N, H, W[, C]) array when the server sent it so
    (images of one shape); ``samples`` are then views into it. ``skipped`` lists the planned
    samples the server could not read, as (index, reason): with ``indices`` they are exactly the
    batch's plan. ``targets`` (detection and segmentation datasets) has one dict per sample:
    ``boxes`` (N, 4) pascal_voc, ``labels`` (N,), ``masks`` (N, H, W) or ``mask`` (H, W).
    """

    batch_index: int
    num_batches: int
    samples: list[Any]
    labels: np.ndarray
    indices: np.ndarray
    stacked: np.ndarray | None = None
    skipped: tuple[tuple[int, str], ...] = ()
    targets: list[dict[str, np.ndarray]] | None = None


def _decode(reply: pb.EpochBatch) -> EpochBatch:
    stacked = from_tensor(reply.stacked, "stacked", _LIMITS) if reply.HasField("stacked") else None
    samples: list[Any] = list(stacked) if stacked is not None else [
        decode_image(image, f"images[{k}]", _LIMITS) for k, image in enumerate(reply.images)]
    return EpochBatch(reply.batch_index, reply.num_batches, samples or list(reply.texts),
                      np.asarray(reply.labels, dtype=np.int64), np.asarray(reply.indices, np.int64),
                      stacked, tuple((int(s.index), s.reason) for s in reply.skipped),
                      [from_targets(t, f"targets[{k}]", _LIMITS) for k, t in enumerate(reply.targets)]
                      if len(reply.targets) else None)


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


def stream_epoch(client: _Client, dataset: str, spec: Any = None, *, seed: int, epoch: int,
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
