"""A real ``augsvc serve`` process on SIGTERM: drain with health NOT_SERVING, refuse, cancel, exit in time.

Also, in process, a stream that ends just as the drain waits for it. Time is asserted only
through what the mechanism guarantees: the server's own "stopped" line gives the seconds from the
signal to the end, which must fit the grace period (the server cuts the drain 1 s before it
ends), and lower bounds that only a broken drain could undercut.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from augsvc.service.config import ServeConfig
from augsvc.service.process import ServerProcess
from augsvc.service.server import AugmentServer
from augsvc.wire.metadata import RETRY_PUSHBACK_KEY
from augsvc.wire.v1 import augment_pb2 as pb
from augsvc.wire.v1 import augment_pb2_grpc as pb_grpc
from tests.conftest import wait_for

SWAP = pb.AugmentTextsRequest(pipeline=pb.Pipeline(spec_json=json.dumps([{"name": "random_swap"}])),
                              texts=["a b c d e"], seed=0)
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Stream:
    """A StreamAugmentTexts call the test feeds one request at a time; open until ``end``."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.outbox: queue.Queue[pb.AugmentTextsRequest | None] = queue.Queue()
        self.responses: Iterator[pb.AugmentTextsResponse] = pb_grpc.AugmenterStub(
            channel).StreamAugmentTexts(iter(self.outbox.get, None), timeout=300)

    def ask(self) -> str:
        self.outbox.put(SWAP)
        return next(self.responses).samples[0].text

    def end(self) -> None:
        self.outbox.put(None)


@pytest.fixture
def started() -> Iterator[list[ServerProcess]]:
    servers: list[ServerProcess] = []
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def start(started: list[ServerProcess], *args: str) -> ServerProcess:
    started.append(ServerProcess(args))
    return started[-1]


def wait_not_serving(channel: grpc.Channel) -> None:
    """Check health until it says NOT_SERVING; every answer before must be a status, not an error."""
    stub = health_pb2_grpc.HealthStub(channel)
    wait_for(lambda: stub.Check(health_pb2.HealthCheckRequest(), timeout=30).status == NOT_SERVING,
             60, "health never said NOT_SERVING after SIGTERM")


def server_line(server: ServerProcess, message: str) -> dict[str, Any]:
    lines = [r for r in server.records() if r["logger"] == "augsvc.server" and r["message"] == message]
    assert len(lines) == 1, f"want one {message!r} line, got {lines}"
    return lines[0]


def calls(server: ServerProcess, method: str) -> list[dict[str, Any]]:
    return [r for r in server.records() if r["message"] == "call" and r["method"].endswith(method)]


@pytest.mark.slow
def test_sigterm_drains_health_not_serving_new_calls_refused_the_stream_finishes(
        started: list[ServerProcess]) -> None:
    # A long grace period: the stream ends when the test says, never at the deadline.
    server = start(started, "--grace-period", "60")
    with grpc.insecure_channel(server.address) as channel:
        stream = Stream(channel)
        assert stream.ask()
        server.process.send_signal(signal.SIGTERM)
        wait_not_serving(channel)  # the port stays open while draining
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.AugmenterStub(channel).AugmentTexts(SWAP, timeout=30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert (info.value.details() or "").startswith("draining: the server is shutting down")
        assert dict(info.value.trailing_metadata() or ())[RETRY_PUSHBACK_KEY] == "250"
        assert health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="augsvc.v1.Augmenter"), timeout=30).status == NOT_SERVING
        assert stream.ask() and stream.ask()  # the call in flight goes on, and ends normally
        stream.end()
        assert list(stream.responses) == []
    assert server.wait(60) == 0
    assert server_line(server, "stopping")["in_flight"] == 1
    stopped = server_line(server, "stopped")
    assert stopped["cancelled"] == 0 and stopped["seconds"] <= 60
    [refusal] = calls(server, "/AugmentTexts")
    assert refusal["code"] == "UNAVAILABLE" and refusal["details"].startswith("draining: ")
    [done] = calls(server, "/StreamAugmentTexts")
    assert done["code"] == "OK" and done["messages_out"] == 3


@pytest.mark.slow
def test_a_call_still_running_at_the_drain_deadline_is_cancelled_within_the_grace_period(
        started: list[ServerProcess]) -> None:
    grace = 3.0
    server = start(started, "--grace-period", str(grace), "--epoch-workers", "1", "--metrics-port", "0")
    with grpc.insecure_channel(server.address) as channel:
        stream = Stream(channel)  # the client never ends it
        assert stream.ask()
        server.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as info:
            next(stream.responses)  # the client sends nothing: the server cancels at the deadline
        # UNAVAILABLE, not CANCELLED: the client's stream_epoch resumes on another replica.
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        stream.end()
    assert server.wait(60) == 0
    stopped = server_line(server, "stopped")
    assert stopped["cancelled"] == 1
    # The drain lasts until 1 s before the grace period ends (a lower bound only a drain cut
    # short could miss), and the whole stop fits the grace period.
    assert grace - 1 <= stopped["seconds"] <= grace


@pytest.mark.slow
def test_an_idle_server_stops_without_waiting_and_a_second_signal_cuts_a_drain_short(
        started: list[ServerProcess]) -> None:
    grace = 120.0
    idle = start(started, "--grace-period", str(grace), "--epoch-workers", "1", "--metrics-port", "0")
    busy = start(started, "--grace-period", str(grace))
    assert idle.stop(60) == 0
    stopped = server_line(idle, "stopped")
    assert stopped["cancelled"] == 0 and stopped["seconds"] < grace - 1  # nothing to wait for
    with grpc.insecure_channel(busy.address) as channel:
        stream = Stream(channel)
        assert stream.ask()
        busy.process.send_signal(signal.SIGTERM)
        wait_not_serving(channel)  # the first signal was handled: the drain has begun
        busy.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError):
            next(stream.responses)  # cancelled by the second signal
        stream.end()
    assert busy.wait(60) == 0  # long before the drain deadline (killed, exit -9, if not)
    stopped = server_line(busy, "stopped")
    assert stopped["cancelled"] == 1 and stopped["seconds"] < grace - 1


def test_a_stream_ending_as_the_drain_waits_for_it_gets_its_ok_status(tmp_path: Path) -> None:
    # The slot of a stream comes back only once gRPC has sent its status, not when its
    # generator ends: in between, the drain would see no call running and cancel the stream,
    # and its client would get UNAVAILABLE for a stream that had finished. The window is widest
    # while the call log writes the stream's line, so it is written to a file here.
    log = logging.getLogger("augsvc.calls")
    handler = logging.FileHandler(tmp_path / "calls.log")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    cut = []
    try:
        for _ in range(100):
            server = AugmentServer(ServeConfig(port=0, grace_period=60.0))
            server.start()
            stopping = threading.Thread(target=server.stop)
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stream = Stream(channel)
                assert stream.ask()
                stopping.start()
                while not server.admission.draining:
                    time.sleep(0.001)
                stream.end()
                try:
                    assert list(stream.responses) == []
                except grpc.RpcError as error:
                    cut.append(error.code())
                stopping.join()
    finally:
        log.removeHandler(handler)
        handler.close()
    assert cut == []
