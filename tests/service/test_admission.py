"""Admission of data calls: slots taken without waiting, refusals with a retry hint, health never queued."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from augsvc.errors import BusyError
from augsvc.service.admission import Admission
from augsvc.service.metrics import Metrics
from augsvc.service.server import build_server
from augsvc.wire.metadata import RETRY_PUSHBACK_KEY
from augsvc.wire.v1 import augment_pb2 as pb
from augsvc.wire.v1 import augment_pb2_grpc as pb_grpc
from tests.conftest import wait_for

SWAP = pb.AugmentTextsRequest(pipeline=pb.Pipeline(spec_json=json.dumps([{"name": "random_swap"}])),
                              texts=["a b c d e"], seed=0)
SLOTS = 2


def test_slots_are_taken_without_waiting_and_refused_when_none_is_free() -> None:
    reasons: list[str] = []
    admission = Admission(2, retry_after=1.5, on_refused=reasons.append)
    admission.enter()
    admission.enter()
    assert admission.in_use == 2
    with pytest.raises(BusyError, match="busy: all 2 request slots are taken") as info:
        admission.enter()
    assert info.value.retry_after == 1.5 and admission.in_use == 2
    admission.leave()
    admission.enter()  # a slot given back is free again
    assert reasons == ["busy"] and admission.in_use == 2


def test_a_drain_refuses_new_calls_and_waits_for_the_running_ones() -> None:
    reasons: list[str] = []
    admission = Admission(4, drain_retry_after=0.25, on_refused=reasons.append)
    admission.enter()
    admission.drain()
    with pytest.raises(BusyError, match="draining") as info:
        admission.enter()
    assert info.value.retry_after == 0.25 and reasons == ["draining"] and admission.draining
    assert admission.wait_idle(0) is False  # one call still runs
    threading.Timer(0.05, admission.leave).start()
    assert admission.wait_idle(60) is True and admission.in_use == 0


def test_concurrent_calls_never_hold_more_than_the_slots() -> None:
    admission = Admission(3)
    start = threading.Barrier(16)
    most = 0
    lock = threading.Lock()

    def call() -> bool:
        start.wait()
        try:
            admission.enter()
        except BusyError:
            return False
        nonlocal most
        with lock:
            most = max(most, admission.in_use)
        time.sleep(0.01)
        admission.leave()
        return True

    with futures.ThreadPoolExecutor(16) as pool:
        admitted = sum(pool.map(lambda _: call(), range(16)))
    assert 1 <= admitted <= 16 and most <= 3 and admission.in_use == 0


@pytest.mark.parametrize(("slots", "kwargs"), [(0, {}), (1, {"retry_after": 0}),
                                               (1, {"drain_retry_after": -1})])
def test_bad_arguments_are_refused(slots: int, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Admission(slots, **kwargs)  # type: ignore[arg-type]


class Held:
    """A server whose data calls need one of SLOTS slots, and streams that hold them."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.admission = Admission(SLOTS, on_refused=self.metrics.refused)
        self.metrics.watch(self.admission)
        self.server, port = build_server("127.0.0.1:0", workers=SLOTS, reserve_workers=2,
                                         admission=self.admission, observers=[self.metrics])
        self.server.start()
        self.address = f"127.0.0.1:{port}"
        self.channel = grpc.insecure_channel(self.address)
        self.stub = pb_grpc.AugmenterStub(self.channel)
        self.outboxes: list[queue.Queue[pb.AugmentTextsRequest | None]] = []

    def open(self) -> Iterator[pb.AugmentTextsResponse]:
        """A text stream that sends one request and then stays open: once admitted, it holds
        its thread until ``close``."""
        outbox: queue.Queue[pb.AugmentTextsRequest | None] = queue.Queue()
        self.outboxes.append(outbox)
        responses = self.stub.StreamAugmentTexts(iter(outbox.get, None), timeout=120)
        outbox.put(SWAP)
        return responses

    def hold(self) -> Iterator[pb.AugmentTextsResponse]:
        """An admitted stream, answered once and kept open: it holds a slot."""
        responses = self.open()
        assert next(responses).samples[0].text
        return responses

    def close(self) -> None:
        for outbox in self.outboxes:
            outbox.put(None)
        self.channel.close()
        self.server.stop(0)


@pytest.fixture
def held() -> Iterator[Held]:
    server = Held()
    yield server
    server.close()


def refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_health_answers_while_every_data_slot_is_held_and_a_new_call_is_refused(held: Held) -> None:
    streams = [held.hold() for _ in range(SLOTS)]
    assert held.admission.in_use == SLOTS
    assert held.metrics.value("augsvc_request_slots_in_use") == SLOTS
    # More would-be streams than reserve threads: admitted, they would hold those threads too
    # and leave health none. Refused at once, they hold nothing.
    for extra in [held.open() for _ in range(4)]:
        assert refused(lambda s=extra: next(s)).code() == grpc.StatusCode.UNAVAILABLE
    health = health_pb2_grpc.HealthStub(held.channel)

    def probe(k: int) -> int:
        if k % 2:  # on the streams' connection
            return int(health.Check(health_pb2.HealthCheckRequest(), timeout=30).status)
        with grpc.insecure_channel(held.address) as fresh:  # a new one, as a container's check
            return int(health_pb2_grpc.HealthStub(fresh).Check(health_pb2.HealthCheckRequest(),
                                                                timeout=30).status)

    with futures.ThreadPoolExecutor(8) as pool:  # more probes at once than the reserve threads
        statuses = list(pool.map(probe, range(24)))
    assert statuses == [health_pb2.HealthCheckResponse.SERVING] * 24

    unary = refused(lambda: held.stub.AugmentTexts(SWAP, timeout=30))
    stream = refused(lambda: next(held.stub.StreamEpoch(
        pb.StreamEpochRequest(dataset="digits", batch_size=8), timeout=30)))
    for error in (unary, stream):
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "busy: all 2 request slots are taken" in (error.details() or "")
        assert dict(error.trailing_metadata() or ())[RETRY_PUSHBACK_KEY] == "1000"
    assert held.metrics.value("augsvc_calls_refused_total", reason="busy") == 4 + 2
    assert held.metrics.value("grpc_server_handled_total", grpc_type="unary_unary",
                              grpc_service="augsvc.v1.Augmenter", grpc_method="AugmentTexts",
                              grpc_code="UNAVAILABLE") == 1

    for outbox in held.outboxes[:SLOTS]:  # the streams end: their slots come back
        outbox.put(None)
    assert [list(s) for s in streams] == [[], []]
    wait_for(lambda: held.admission.in_use == 0, 30)
    assert held.stub.AugmentTexts(SWAP, timeout=30).samples[0].text


def test_slots_come_back_from_cancelled_streams_and_failed_calls(held: Held) -> None:
    stream = held.hold()
    stream.cancel()  # type: ignore[attr-defined]
    bad = pb.AugmentTextsRequest(pipeline=pb.Pipeline(spec_json="{nope"), texts=["a"])
    assert refused(lambda: held.stub.AugmentTexts(bad, timeout=30)).code() == \
        grpc.StatusCode.INVALID_ARGUMENT
    wait_for(lambda: held.admission.in_use == 0, 30)
    streams = [held.hold() for _ in range(SLOTS)]  # every slot can be taken again
    assert len(streams) == SLOTS and held.admission.in_use == SLOTS


def test_a_draining_server_refuses_data_calls_and_still_answers_health(held: Held) -> None:
    held.admission.drain()
    error = refused(lambda: held.stub.AugmentTexts(SWAP, timeout=30))
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "draining" in (error.details() or "")
    assert dict(error.trailing_metadata() or ())[RETRY_PUSHBACK_KEY] == "250"
    assert held.metrics.value("augsvc_calls_refused_total", reason="draining") == 1
    reply = health_pb2_grpc.HealthStub(held.channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING  # health takes no slot
