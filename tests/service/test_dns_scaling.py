"""Kubernetes scale-out: a client given one DNS name follows replicas coming and going.

A headless Service resolves to one A record per ready pod; ``FakeDns`` plays it, and the client
is given ``dns://<fake server>/augsvc.test:<port>`` so gRPC's c-ares resolver asks it. The
servers' max_connection_age makes clients reconnect, and so resolve the name again, every
second; every epoch must still deliver each planned sample exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from augsvc.client import AugmentClient
from augsvc.plan import EpochPlan
from augsvc.service.observe import Call
from augsvc.service.server import build_server
from tests.conftest import wait_for
from tests.service.fake_dns import FakeDns

DIGITS = 1797
BATCH = 64
AGE = (1.0, 0.5)  # max_connection_age: (age, grace) seconds
A, B = "127.0.0.1", "127.0.0.2"  # two replicas on one port: A records carry no port

pytestmark = pytest.mark.slow


class _Streams:
    """A call observer counting the StreamEpoch calls one server started."""

    def __init__(self) -> None:
        self.started_calls = 0

    def started(self, call: Call) -> None:
        if call.method.endswith("/StreamEpoch"):
            self.started_calls += 1

    def received(self, call: Call) -> None: ...

    def sent(self, call: Call, samples: int, skipped: int) -> None: ...

    def finished(self, call: Call) -> None: ...


class _Replica:
    def __init__(self, host: str, port: int = 0) -> None:
        self.streams = _Streams()
        self.server, self.port = build_server(f"{host}:{port}", observers=[self.streams],
                                              max_connection_age=AGE)
        self.server.start()

    def stop(self) -> None:
        self.server.stop(0.5).wait(10)


class _Epochs(threading.Thread):
    """Streams epochs 0, 1, ... one after another (a slow consumer) until told to stop; keeps
    the indices each epoch delivered, and the first error."""

    def __init__(self, client: AugmentClient) -> None:
        super().__init__(name="epochs", daemon=True)
        self.client = client
        self.done: list[list[np.ndarray]] = []  # per finished epoch: its batches' indices
        self.batches = 0  # batches received so far, all epochs
        self.stop_after: int | None = None  # the last epoch to stream, once set
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            epoch = 0
            while self.stop_after is None or epoch <= self.stop_after:
                got: list[np.ndarray] = []
                for batch in self.client.stream_epoch("digits", None, seed=0, epoch=epoch,
                                                      batch_size=BATCH, stall_timeout=30.0):
                    assert batch.batch_index == len(got) and not batch.skipped
                    got.append(batch.indices.copy())
                    self.batches += 1
                    threading.Event().wait(0.05)  # the consumer: a training step
                self.done.append(got)
                epoch += 1
        except BaseException as exc:  # raised again by finish(), on the test's thread
            self.error = exc

    def finish(self, more_epochs: int = 1) -> None:
        """Stream ``more_epochs`` epochs after the one under way, then end and check them all."""
        self.stop_after = len(self.done) + more_epochs
        self.join(60)
        assert not self.is_alive(), "the epochs never ended"
        if self.error is not None:
            raise self.error
        assert len(self.done) == self.stop_after + 1
        for epoch, got in enumerate(self.done):
            plan = list(EpochPlan(DIGITS, 0, epoch, BATCH).batches())
            assert len(got) == len(plan), f"epoch {epoch}: {len(got)} batches of {len(plan)}"
            for i, (indices, planned) in enumerate(zip(got, plan, strict=True)):
                np.testing.assert_array_equal(indices, planned, f"epoch {epoch} batch {i}")
            assert sorted(np.concatenate(got).tolist()) == list(range(DIGITS))  # exactly once


@pytest.fixture
def fast_reresolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the client resolve the name again 0.5 s after the last time, not gRPC's default 30 s
    (``grpc.dns_min_time_between_resolutions_ms``), so a test sees a new replica in seconds.

    AugmentClient takes no channel options: this adds one to the channel open_channel makes."""
    insecure_channel = grpc.insecure_channel

    def channel(target: str, options: Any = None, *args: Any, **kwargs: Any) -> grpc.Channel:
        options = [*(options or ()), ("grpc.dns_min_time_between_resolutions_ms", 500)]
        return insecure_channel(target, options, *args, **kwargs)

    monkeypatch.setattr(grpc, "insecure_channel", channel)


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    with FakeDns("augsvc.test") as server:
        yield server


def _client(dns: FakeDns, port: int) -> AugmentClient:
    client = AugmentClient(f"dns://127.0.0.1:{dns.port}/augsvc.test:{port}", timeout=30)
    client.wait_ready(30)
    return client


@pytest.mark.usefixtures("fast_reresolution")
def test_a_replica_added_to_the_name_gets_calls(dns: FakeDns) -> None:
    a = _Replica(A)
    b = _Replica(B, a.port)  # running, but not yet in the name's records
    dns.addresses = [A]
    try:
        with _client(dns, a.port) as client:
            epochs = _Epochs(client)
            epochs.start()
            wait_for(lambda: epochs.batches > 0 or not epochs.is_alive(), 60, "no batch came")
            assert b.streams.started_calls == 0  # the name did not list B
            dns.addresses = [A, B]  # scale-up: a second pod becomes ready
            wait_for(lambda: b.streams.started_calls > 0 or not epochs.is_alive(), 60,
                     "the added replica never got a call")
            epochs.finish()
            assert b.streams.started_calls > 0 and a.streams.started_calls > 0
    finally:
        a.stop()
        b.stop()


@pytest.mark.usefixtures("fast_reresolution")
def test_a_replica_removed_from_the_name_gets_no_more_calls(dns: FakeDns) -> None:
    a = _Replica(A)
    b = _Replica(B, a.port)
    dns.addresses = [A, B]
    b_again: _Replica | None = None
    try:
        with _client(dns, a.port) as client:
            epochs = _Epochs(client)
            epochs.start()
            wait_for(lambda: (b.streams.started_calls > 0 and epochs.batches > 0)
                     or not epochs.is_alive(), 60, "replica B never got a call")
            dns.addresses = [A]  # scale-down: B's pod is no longer ready ...
            b.stop()  # ... and is stopped while streams may run on it
            # The client resolves the name again (a connection to A ages out every second);
            # a query after the one that first left B out means that answer was taken in.
            queries = dns.queries
            wait_for(lambda: dns.queries >= queries + 2 or not epochs.is_alive(), 60,
                     "the client never resolved the name again")
            # Something listens at B's address again, but the name does not list it: a
            # client still holding B's address would connect and send calls there.
            b_again = _Replica(B, a.port)
            a_calls = a.streams.started_calls
            epochs.finish(more_epochs=2)
            assert b_again.streams.started_calls == 0
            assert a.streams.started_calls > a_calls  # the later epochs ran, on A
    finally:
        a.stop()
        b.stop()
        if b_again is not None:
            b_again.stop()
