"""Operating the server: metrics over HTTP, logs, backpressure, cancellation, deadlines, client retries."""

from __future__ import annotations

import io
import itertools
import json
import logging
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from augsvc.client import AugmentClient
from augsvc.service.config import ServeConfig
from augsvc.service.logs import CallLog, JsonFormatter
from augsvc.service.metrics import Metrics
from augsvc.service.observe import Call
from augsvc.service.server import AugmentServer, BindError, build_server
from augsvc.service.servicer import AugmenterServicer
from augsvc.wire.tensors import to_tensor
from augsvc.wire.v1 import augment_pb2 as pb
from augsvc.wire.v1 import augment_pb2_grpc as pb_grpc
from tests.conftest import wait_for

SWAP = pb.AugmentTextsRequest(pipeline=pb.Pipeline(spec_json=json.dumps([{"name": "random_swap"}])),
                              texts=["a b c d e"], seed=0)
SERVICE = "augsvc.v1.Augmenter"


@pytest.fixture
def observed() -> Iterator[tuple[grpc.Channel, Metrics]]:
    metrics = Metrics()
    server, port = build_server("127.0.0.1:0", workers=4, observers=[metrics])
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[
            ("grpc.max_receive_message_length", -1)]) as channel:
        yield channel, metrics
    server.stop(0)


def settled(read: Callable[[], float], quiet: float = 0.3) -> float:
    """``read()`` once it has stopped changing for ``quiet`` seconds."""
    value = read()
    while True:
        time.sleep(quiet)
        if (now := read()) == value:
            return value
        value = now


def series(metrics: Metrics, name: str, method: str, kind: str = "stream_stream", **labels: str) -> float:
    return metrics.value(name, grpc_type=kind, grpc_service=SERVICE, grpc_method=method, **labels)


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_endpoint_counts_calls_samples_and_errors_by_code() -> None:
    server = AugmentServer(ServeConfig(port=0, metrics_port=0, token="t0k", max_texts=3))
    server.start()
    try:
        assert server.endpoint is not None
        address = f"127.0.0.1:{server.port}"
        with AugmentClient(address, token="t0k", timeout=10) as client:
            client.augment_texts(["a b c", "d e f"], [{"name": "random_swap"}], seed=0, n=2)
            client.augment_texts(["a b c"], [{"name": "random_swap"}], seed=0)
            # raw image batches leave pre-serialized (codec.Encoded): still counted
            streamed = list(client.stream_epoch("digits", "digits", seed=0, epoch=0,
                                                batch_size=500, limit=700))
            with pytest.raises(grpc.RpcError):
                client.augment_texts(["x"] * 4, [{"name": "random_swap"}])  # over max_texts
        with AugmentClient(address, timeout=10) as anonymous, pytest.raises(grpc.RpcError):
            anonymous.augment_texts(["a"], [{"name": "random_swap"}])
        got = scrape(server.endpoint.port)
    finally:
        server.stop(0)
    labels = {"grpc_type": "unary_unary", "grpc_service": SERVICE, "grpc_method": "AugmentTexts"}

    def value(name: str, **extra: str) -> float:
        return got.get((name, frozenset({**labels, **extra}.items())), 0.0)

    assert value("grpc_server_started_total") == 4
    assert value("grpc_server_handled_total", grpc_code="OK") == 2
    assert value("grpc_server_handled_total", grpc_code="RESOURCE_EXHAUSTED") == 1
    assert value("grpc_server_handled_total", grpc_code="UNAUTHENTICATED") == 1
    assert value("grpc_server_handling_seconds_count") == 4
    assert got[("augsvc_samples_total", frozenset({("grpc_method", "AugmentTexts")}))] == 5
    assert [len(b.samples) for b in streamed] == [500, 200]
    assert got[("augsvc_samples_total", frozenset({("grpc_method", "StreamEpoch")}))] == 700


def test_a_slow_reader_holds_the_server_only_a_few_messages_ahead(
        observed: tuple[grpc.Channel, Metrics]) -> None:
    channel, metrics = observed
    big = pb.ImageSample(image=pb.Image(array=to_tensor(np.zeros((512, 512, 3), np.uint8))))
    flip = pb.Pipeline(spec_json=json.dumps([{"name": "horizontal_flip", "p": 1}]))
    total = 64  # responses of ~0.8 MB each
    responses = pb_grpc.AugmenterStub(channel).StreamAugmentImages(
        (pb.AugmentImagesRequest(pipeline=flip, samples=[big], start_index=i) for i in range(total)),
        timeout=60)
    next(responses)  # the client has read one, and now stalls
    produced = settled(lambda: series(metrics, "grpc_server_msg_sent_total", "StreamAugmentImages"))
    assert 1 <= produced <= 20, f"the server ran {produced - 1:.0f} messages ahead of a stalled client"
    assert sum(1 for _ in responses) == total - 1  # and it resumes when the client reads again
    assert series(metrics, "grpc_server_msg_sent_total", "StreamAugmentImages") == total


def test_cancelling_a_stream_stops_the_work(observed: tuple[grpc.Channel, Metrics]) -> None:
    channel, metrics = observed
    pulled = itertools.count()
    requests = (SWAP for _ in pulled)  # endless
    responses = pb_grpc.AugmenterStub(channel).StreamAugmentTexts(requests, timeout=60)
    for _ in range(3):
        next(responses)
    responses.cancel()
    wait_for(lambda: series(metrics, "grpc_server_handled_total", "StreamAugmentTexts",
                            grpc_code="CANCELLED") == 1, 10)
    sent = series(metrics, "grpc_server_msg_sent_total", "StreamAugmentTexts")
    received = series(metrics, "grpc_server_msg_received_total", "StreamAugmentTexts")
    time.sleep(0.3)
    assert series(metrics, "grpc_server_msg_sent_total", "StreamAugmentTexts") == sent
    assert series(metrics, "grpc_server_msg_received_total", "StreamAugmentTexts") == received


def test_a_stream_stops_at_its_deadline(observed: tuple[grpc.Channel, Metrics]) -> None:
    channel, metrics = observed

    def trickle() -> Iterator[pb.AugmentTextsRequest]:
        while True:
            time.sleep(0.02)
            yield SWAP

    # Connected and warm first, and a deadline long enough for the first messages on a busy
    # machine: with 0.5 s from a cold start, the server could send nothing before it.
    pb_grpc.AugmenterStub(channel).AugmentTexts(SWAP, timeout=30)
    with pytest.raises(grpc.RpcError) as info:
        for _ in pb_grpc.AugmenterStub(channel).StreamAugmentTexts(trickle(), timeout=2):
            pass
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    def ended() -> float:
        # The server counts DEADLINE_EXCEEDED when the client's cancel comes within rounding of
        # its own deadline; on a loaded machine the request can reach the server later than the
        # client sent it, so the server's deadline runs later and the same cancel counts as
        # CANCELLED. Either way the call must end, once.
        return sum(series(metrics, "grpc_server_handled_total", "StreamAugmentTexts", grpc_code=code)
                   for code in ("DEADLINE_EXCEEDED", "CANCELLED"))

    wait_for(lambda: ended() == 1, 10)
    sent = series(metrics, "grpc_server_msg_sent_total", "StreamAugmentTexts")
    assert sent > 0
    time.sleep(0.3)
    assert series(metrics, "grpc_server_msg_sent_total", "StreamAugmentTexts") == sent


class _Flaky(AugmenterServicer):
    """Answers UNAVAILABLE to the first ``failures`` AugmentTexts calls, like a restarting replica."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def AugmentTexts(self, request: pb.AugmentTextsRequest,
                     context: grpc.ServicerContext) -> pb.AugmentTextsResponse:
        self.calls += 1
        if self.calls <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        return super().AugmentTexts(request, context)


@pytest.mark.parametrize(("retries", "failures", "ok", "calls"), [(3, 2, True, 3), (0, 1, False, 1),
                                                                  (1, 2, False, 2)])
def test_client_retries_unavailable_unary_calls(retries: int, failures: int, ok: bool, calls: int) -> None:
    servicer = _Flaky(failures)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_AugmenterServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with AugmentClient(f"127.0.0.1:{port}", retries=retries, timeout=10) as client:
            if ok:
                assert client.augment_texts(["a b c"], [{"name": "random_swap"}], seed=0)[0].index == 0
            else:
                with pytest.raises(grpc.RpcError) as info:
                    client.augment_texts(["a b c"], [{"name": "random_swap"}], seed=0)
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert servicer.calls == calls
    finally:
        server.stop(0)
    with pytest.raises(ValueError, match="retries must be from 0 to 4"):
        AugmentClient("127.0.0.1:1", retries=5)


def test_retry_config_keeps_round_robin_over_replicas() -> None:
    # What round_robin guarantees is that calls go to every connected replica, not an exact
    # split: the channel is ready once the first replica connects, calls go to those connected
    # so far, and the rotation starts anywhere ([3, 5] as often as [4, 4] for 8 calls). Under
    # pick_first (what a service config that dropped the policy would bring back) every call
    # would go to one replica.
    metrics = [Metrics(), Metrics()]
    servers = [build_server("127.0.0.1:0", observers=[m]) for m in metrics]
    for server, _ in servers:
        server.start()

    def answered() -> list[float]:
        return [series(m, "grpc_server_handled_total", "AugmentTexts", "unary_unary", grpc_code="OK")
                for m in metrics]

    calls = 0
    try:
        with AugmentClient([f"127.0.0.1:{port}" for _, port in servers], timeout=10) as client:
            client.wait_ready()
            deadline = time.monotonic() + 30
            while min(answered()) == 0:  # until both replicas are connected and picked
                assert time.monotonic() < deadline, f"calls went to one replica only: {answered()}"
                client.augment_texts(["a b c"], [{"name": "random_swap"}])
                calls += 1
            before = answered()
            for _ in range(8):  # both connected: the rotation takes in both
                client.augment_texts(["a b c"], [{"name": "random_swap"}])
    finally:
        for server, _ in servers:
            server.stop(0)
    after = answered()
    assert sum(after) == calls + 8  # every call answered once: none lost, none doubled by retries
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)


def test_binding_a_port_in_use_raises_bind_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(BindError, match=f"cannot bind {address}: the port is in use"):
            build_server(address)


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger at INFO writing JSON lines (``JsonFormatter``) into the returned stream."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.service.calls")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_call_log_details_are_the_status_message_as_text(
        json_log: tuple[logging.Logger, io.StringIO]) -> None:
    # gRPC keeps the message that context.abort sets as bytes; the log must not show b"...".
    logger, stream = json_log
    server, port = build_server("127.0.0.1:0", token="t0k", observers=[CallLog(logger)])
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError) as info:
            pb_grpc.AugmenterStub(channel).AugmentTexts(SWAP, timeout=10)
    finally:
        server.stop(0)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # the line is written before the status goes out, so it is there once the client has it
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["code"] == "UNAUTHENTICATED" and line["method"] == f"/{SERVICE}/AugmentTexts"
    assert line["details"] == info.value.details() == \
        "missing credentials: send the metadata 'authorization: Bearer <token>'"


def test_call_log_writes_one_json_line_per_call_at_the_right_level(
        json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    log = CallLog(logger)
    ok = Call(f"/{SERVICE}/AugmentImages", "unary_unary", "ipv4:127.0.0.1:5000", samples=4,
              received=1, sent=1, seconds=0.0125)
    log.finished(ok)
    log.finished(Call("/grpc.health.v1.Health/Check", "unary_unary"))  # DEBUG: filtered out
    log.finished(Call(f"/{SERVICE}/AugmentTexts", "unary_unary", code=grpc.StatusCode.INTERNAL,
                      details="internal error: boom"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["level"], r["method"], r["code"]) for r in lines] == [
        ("INFO", f"/{SERVICE}/AugmentImages", "OK"), ("WARNING", f"/{SERVICE}/AugmentTexts", "INTERNAL")]
    assert lines[0]["samples"] == 4 and lines[0]["duration_ms"] == 12.5
    assert lines[0]["peer"] == "ipv4:127.0.0.1:5000" and lines[0]["message"] == "call"
    assert lines[1]["details"] == "internal error: boom" and isinstance(lines[1]["pid"], int)


class _Peers:
    """A call observer that keeps the peer (client address and port) of every finished call."""

    def __init__(self) -> None:
        self.peers: list[str] = []

    def started(self, call: Call) -> None: ...

    def received(self, call: Call) -> None: ...

    def sent(self, call: Call, samples: int, skipped: int) -> None: ...

    def finished(self, call: Call) -> None:
        self.peers.append(call.peer)


@pytest.mark.parametrize("age", [None, (1.0, 0.2)])
def test_max_connection_age_makes_clients_reconnect(age: tuple[float, float] | None) -> None:
    """With an age, a client's connection is replaced (so its name is resolved again and new
    replicas are found); without one, the same connection serves every call."""
    peers = _Peers()
    server, port = build_server("127.0.0.1:0", observers=[peers], max_connection_age=age)
    server.start()
    try:
        with AugmentClient(f"127.0.0.1:{port}") as client:
            client.list_datasets()
            first = peers.peers[-1]

            def reconnected() -> bool:
                client.list_datasets()  # a call after GOAWAY goes over a new connection
                return peers.peers[-1] != first

            if age is not None:
                wait_for(reconnected, 60, "the client never reconnected")
            else:
                deadline = time.monotonic() + 3.0  # well past the age the other case uses
                while time.monotonic() < deadline:
                    assert not reconnected()
                    time.sleep(0.2)
    finally:
        server.stop(0)
