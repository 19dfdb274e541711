"""Replicas that hang or are busy: stall timeout, keepalive and retry hints, against real servers."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import grpc
import numpy as np
import pytest

from augsvc.client import AugmentClient
from augsvc.client import epochs as streams
from augsvc.client.epochs import EpochBatch, _retry_hint
from augsvc.datasets import open_dataset
from augsvc.errors import BusyError
from augsvc.image.pipeline import ImagePipeline
from augsvc.image.presets import image_preset
from augsvc.plan import augment_index
from augsvc.service.epochs import EpochStreamer
from augsvc.service.process import ServerProcess
from augsvc.service.server import build_server

SPEC = {"transforms": [{"name": "horizontal_flip"}, {"name": "brightness_contrast", "p": 0.5}]}


@pytest.fixture(scope="module")
def npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (40, 12, 12, 3), dtype=np.uint8), y=np.arange(40) % 4)
    return path


class _HangsOnce(EpochStreamer):
    """Sends batches up to ``at``, then sends nothing more (until the client cancels): a replica
    that hangs with its connection open. Only the first stream to reach batch ``at`` hangs."""

    def __init__(self, *args: Any, at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.at, self.hung = at, False

    def stream(self, request: Any, plan: Any, is_active: Callable[[], bool]) -> Iterator[Any]:
        for number, batch in enumerate(super().stream(request, plan, is_active), plan.first):
            if number == self.at and not self.hung:
                self.hung = True
                while is_active():  # holds the call open, sends nothing
                    time.sleep(0.02)
                return
            yield batch


class _BusyFirst(EpochStreamer):
    """Answers the first ``times`` StreamEpoch calls with BusyError (UNAVAILABLE + retry hint)."""

    def __init__(self, *args: Any, times: int, retry_after: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times, self.retry_after, self.calls = times, retry_after, 0

    def plan(self, request: Any) -> Any:
        self.calls += 1
        if self.calls <= self.times:
            raise BusyError("every stream slot is taken", retry_after=self.retry_after)
        return super().plan(request)


def _serve(epochs: EpochStreamer) -> tuple[grpc.Server, str]:
    server, port = build_server("127.0.0.1:0", epochs=epochs)
    server.start()
    return server, f"127.0.0.1:{port}"


def _warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "augsvc.client" and r.levelno == logging.WARNING and word in r.getMessage()]


def _same(a: list[EpochBatch], b: list[EpochBatch]) -> bool:
    return len(a) == len(b) and all(
        x.batch_index == y.batch_index and np.array_equal(x.indices, y.indices)
        and len(x.samples) == len(y.samples)
        and all(np.array_equal(p, q) for p, q in zip(x.samples, y.samples, strict=True))
        for x, y in zip(a, b, strict=True))


def test_a_stream_that_stalls_mid_epoch_is_resumed_from_the_next_batch(
        npz: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="augsvc.client")
    kw: dict[str, Any] = {"seed": 3, "epoch": 1, "batch_size": 4, "backoff": 0.05}
    clean = EpochStreamer({"tiny": str(npz)})
    hangs = _HangsOnce({"tiny": str(npz)}, at=4)
    servers = [_serve(clean), _serve(hangs)]
    try:
        with AugmentClient(servers[0][1]) as client:
            want = list(client.stream_epoch("tiny", SPEC, **kw))
        with AugmentClient(servers[1][1]) as client:
            got = list(client.stream_epoch("tiny", SPEC, stall_timeout=1.5, **kw))
    finally:
        for server, _ in servers:
            server.stop(0)
    assert hangs.hung and len(want) == 10
    assert _same(got, want)  # every batch once, in order, the same bytes
    assert any("stalled: no batch for 1.5 s" in m and "resuming at batch 4" in m
               for m in _warnings(caplog, "stalled"))


def test_time_the_consumer_spends_on_a_batch_is_no_stall(
        npz: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="augsvc.client")
    server, address = _serve(EpochStreamer({"tiny": str(npz)}))
    try:
        with AugmentClient(address) as client:
            got: list[EpochBatch] = []
            for batch in client.stream_epoch("tiny", None, seed=0, epoch=0, batch_size=10,
                                             stall_timeout=1.0):
                if not got:
                    time.sleep(1.5)  # a training step longer than the stall timeout
                got.append(batch)
    finally:
        server.stop(0)
    assert [b.batch_index for b in got] == [0, 1, 2, 3]
    assert _warnings(caplog, "stream of") == []


def test_a_busy_server_is_asked_again_after_its_retry_hint(
        npz: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.WARNING, logger="augsvc.client")
    busy = _BusyFirst({"tiny": str(npz)}, times=2, retry_after=0.3)
    server, address = _serve(busy)
    try:
        with AugmentClient(address) as client:
            # retries=0: busy answers use up no retry; and a 4 s backoff is not what is waited
            got = list(client.stream_epoch("tiny", None, seed=0, epoch=0, batch_size=10,
                                           retries=0, backoff=4.0))
            busy.calls, busy.times = 0, 1000  # busy for good: given up after the busy time
            monkeypatch.setattr(streams, "_MAX_BUSY_SECONDS", 1.0)
            with pytest.raises(grpc.RpcError) as info:
                list(client.stream_epoch("tiny", None, seed=0, epoch=0, batch_size=10, retries=0))
    finally:
        server.stop(0)
    assert sorted(np.concatenate([b.indices for b in got]).tolist()) == list(range(40))
    hinted = _warnings(caplog, "the server is busy")
    assert len(hinted) == 2 + 3  # two for the first stream; 3 x 0.3 s fit in 1 s for the second
    assert all("asking again at batch 0 in 0.3 s (the server's retry hint)" in m for m in hinted)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "every stream slot is taken; retry in 0.3 s" in info.value.details()


@pytest.mark.parametrize(("trailers", "seconds"), [
    ((("grpc-retry-pushback-ms", "300"),), 0.3),
    ((("x-other", "1"), ("grpc-retry-pushback-ms", b"1500")), 1.5),
    ((("grpc-retry-pushback-ms", "0"),), 0.0),
    ((("grpc-retry-pushback-ms", "86400000"),), 10.0),  # a day: capped
    ((("grpc-retry-pushback-ms", "-1"),), None),  # gRPC: negative means "do not retry"
    ((("grpc-retry-pushback-ms", "soon"),), None),
    ((), None),
    (None, None),
])
def test_retry_hints_are_read_in_ms_and_capped(trailers: Any, seconds: float | None) -> None:
    assert _retry_hint(trailers) == seconds


def test_bad_keepalive_and_stall_timeout_are_refused() -> None:
    from augsvc.client.datasets import RemoteEpochDataset

    with pytest.raises(ValueError, match="keepalive must be at least 2 seconds"):
        AugmentClient("127.0.0.1:1", keepalive=1.0)
    with pytest.raises(ValueError, match="stall_timeout must be > 0"):
        RemoteEpochDataset("127.0.0.1:1", "tiny", seed=0, batch_size=1, stall_timeout=0)
    with AugmentClient("127.0.0.1:1", keepalive=None) as client, \
            pytest.raises(ValueError, match="stall_timeout must be > 0"):
        next(client.stream_epoch("tiny", seed=0, epoch=0, batch_size=1, stall_timeout=-1.0))


@pytest.mark.slow
def test_servers_accept_the_clients_keepalive_pings_on_idle_connections() -> None:
    # gRPC's defaults would answer the 4th ping of an idle connection (at 8 s) with GOAWAY
    # "too_many_pings" and drop the connection: the channel would leave READY.
    server, port = build_server("127.0.0.1:0")
    server.start()
    states: list[grpc.ChannelConnectivity] = []
    try:
        with AugmentClient(f"127.0.0.1:{port}", keepalive=2.0) as client:
            client.wait_ready()
            client.channel.subscribe(states.append, try_to_connect=True)
            time.sleep(9.5)
            assert client.list_transforms()
            seen = list(states)  # before close() reports SHUTDOWN
    finally:
        server.stop(0)
    assert seen and set(seen) == {grpc.ChannelConnectivity.READY}


# Two real replicas, one of them frozen with SIGSTOP: the process and its sockets stay, the
# kernel keeps acknowledging TCP, but nothing answers, as with a hung server or a host that
# vanished without resetting its connections.


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        for _ in range(2):
            started.append(ServerProcess(["--log-level", "INFO"]))
        yield started
    finally:
        for server in started:
            _resume(server)  # a stopped process would hold SIGTERM until resumed
            server.stop()


def _resume(server: ServerProcess) -> None:
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)


def _both_ready(client: AugmentClient, replicas: list[ServerProcess]) -> None:
    """Call until each replica has answered this client: both subchannels are READY, so
    round_robin alternates between them and of any two calls in a row one goes to each."""
    marks = [len(r.logs) for r in replicas]  # the replicas outlive a test: count new lines only
    deadline = time.monotonic() + 60
    while not all(any("ListTransforms" in line for line in r.logs[mark:])
                  for r, mark in zip(replicas, marks, strict=True)):
        assert time.monotonic() < deadline, "a replica never answered"
        client.list_transforms()
        time.sleep(0.05)  # the call log line reaches ServerProcess.logs from a reader thread


def _check_against_library(epoch: int, batches: list[EpochBatch], seed: int) -> None:
    """Every digit once, each the in-process library's augmentation, byte for byte."""
    dataset, pipeline = open_dataset("digits"), ImagePipeline(image_preset("digits"))
    seen = np.concatenate([b.indices for b in batches])
    assert sorted(seen.tolist()) == list(range(1797))
    assert [b.batch_index for b in batches] == list(range(len(batches)))
    for batch in batches:
        for index, image, label in zip(batch.indices, batch.samples, batch.labels, strict=True):
            want, want_label = dataset.sample(int(index))
            assert label == want_label and isinstance(want, np.ndarray)
            assert np.array_equal(image, pipeline(want, seed=seed, index=augment_index(
                epoch, int(index), 1797)).image)


class _Frozen:
    """SIGSTOP a replica now; SIGCONT it on exit, whatever happened in between."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    def __enter__(self) -> _Frozen:
        os.kill(self.server.process.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc: object) -> None:
        _resume(self.server)


@pytest.mark.slow
def test_a_frozen_replica_is_left_after_the_stall_timeout(
        replicas: list[ServerProcess], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="augsvc.client")
    kw: dict[str, Any] = {"seed": 7, "batch_size": 100, "stall_timeout": 1.5, "backoff": 0.1}
    # No keepalive: it would also drop the frozen replica's connection (after 2 x keepalive),
    # and which of the two noticed first would be a matter of timing.
    with AugmentClient([r.address for r in replicas], keepalive=None) as client:
        _both_ready(client, replicas)
        # Frozen with stream 0 open on one replica or the other, its first batch taken; it
        # stalls if it is on the frozen one and had not been sent whole (flow control lets a
        # small epoch through), which the in-process test above makes certain.
        stream = client.stream_epoch("digits", "digits", epoch=0, **kw)
        epochs = {0: [next(stream)]}
        with _Frozen(replicas[0]):
            epochs[0] += list(stream)
            # The frozen replica stays READY (its connection is open), so of the next two
            # streams' first calls one certainly goes to it, and stalls.
            for epoch in (1, 2):
                epochs[epoch] = list(client.stream_epoch("digits", "digits", epoch=epoch, **kw))
    stalls = _warnings(caplog, "stalled: no batch for 1.5 s (stall_timeout), cancelled")
    assert stalls  # the stall path ran, and each time the epoch still came whole:
    for epoch, batches in epochs.items():
        _check_against_library(epoch, batches, seed=7)


@pytest.mark.slow
def test_keepalive_alone_leaves_a_frozen_replica(replicas: list[ServerProcess]) -> None:
    kw: dict[str, Any] = {"seed": 5, "batch_size": 300, "stall_timeout": None}
    with AugmentClient([r.address for r in replicas], keepalive=2.0) as client:
        _both_ready(client, replicas)
        # The pool is left after the replica is resumed: a stuck stream then ends too.
        with ThreadPoolExecutor(1) as pool, _Frozen(replicas[0]):
            # Both replicas were READY, so of the two streams' first calls one goes to the
            # frozen replica, unless keepalive has closed its connection first; a stream on it
            # waits until keepalive closes the connection (about 4 s), then resumes elsewhere.
            # Without keepalive that stream would wait forever: finishing is the proof. The
            # 120 s bound only keeps a regression from hanging the suite.
            run = pool.submit(lambda: [list(client.stream_epoch("digits", "digits", epoch=e, **kw))
                                       for e in (0, 1)])
            epochs = run.result(timeout=120)
    for epoch, batches in enumerate(epochs):
        _check_against_library(epoch, batches, seed=5)


def _watches() -> set[int | None]:
    return {t.ident for t in threading.enumerate() if t.name == "augsvc-stall-watch"}


def test_stall_watch_threads_end_with_their_calls(npz: Path) -> None:
    server, address = _serve(EpochStreamer({"tiny": str(npz)}))
    try:
        before = _watches()
        with AugmentClient(address) as client:
            for _ in range(3):
                assert len(list(client.stream_epoch("tiny", None, seed=0, epoch=0,
                                                    batch_size=20))) == 2
            stream = cast(Generator[EpochBatch, None, None],
                          client.stream_epoch("tiny", None, seed=0, epoch=0, batch_size=5))
            next(stream)
            stream.close()  # left early: its watch ends too
        deadline = time.monotonic() + 10  # a thread ends a moment after it is told to
        while _watches() - before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _watches() - before
    finally:
        server.stop(0)
