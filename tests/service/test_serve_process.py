"""The real ``augsvc serve`` process: graceful SIGTERM shutdown, and N processes sharing one port."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from augsvc.wire.v1 import augment_pb2 as pb
from augsvc.wire.v1 import augment_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
SWAP = pb.AugmentTextsRequest(pipeline=pb.Pipeline(spec_json=json.dumps([{"name": "random_swap"}])),
                              texts=["a b c d e"], seed=0)
READY = re.compile(r"^augsvc serving augsvc\.v1\.Augmenter on 127\.0\.0\.1:(\d+)$", re.M)


class Serve:
    """``augsvc serve`` in a subprocess, its stderr in a file (so a full pipe never blocks it)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.log = tmp_path / "stderr.log"
        with self.log.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "augsvc.cli", "serve", "--port", "0", *args],
                                         cwd=ROOT, stderr=err, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (found := READY.search(self.log.read_text())):
            assert self.proc.poll() is None, f"serve exited early:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, "serve never printed its ready line"
            time.sleep(0.05)
        self.address = f"127.0.0.1:{found.group(1)}"

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def stop(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    started: list[Serve] = []

    def start(*args: str) -> Serve:
        started.append(Serve(tmp_path, *args))
        return started[-1]

    yield start
    for server in started:
        server.kill()


@pytest.mark.slow
def test_sigterm_flips_health_finishes_the_in_flight_stream_and_exits_0(serve: Callable[..., Serve]) -> None:
    server = serve("--grace-period", "20", "--threads", "4")
    outbox: queue.Queue[pb.AugmentTextsRequest | None] = queue.Queue()
    with grpc.insecure_channel(server.address) as channel:
        responses = pb_grpc.AugmenterStub(channel).StreamAugmentTexts(iter(outbox.get, None), timeout=60)
        outbox.put(SWAP)
        assert next(responses).samples[0].text
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        server.proc.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        assert server.proc.poll() is None  # still serving the stream that was in flight
        for _ in range(2):  # which goes on after SIGTERM, and ends normally
            outbox.put(SWAP)
            assert next(responses).samples[0].text
        outbox.put(None)
        assert list(responses) == []
        assert responses.code() == grpc.StatusCode.OK
    assert server.proc.wait(15) == 0
    calls = [r for r in server.records() if r["message"] == "call"]
    stream = [r for r in calls if r["method"] == "/augsvc.v1.Augmenter/StreamAugmentTexts"]
    assert len(stream) == 1 and stream[0]["code"] == "OK" and stream[0]["messages_out"] == 3
    assert stream[0]["samples"] == 3 and stream[0]["peer"].startswith("ipv4:127.0.0.1:")
    assert stream[0]["duration_ms"] > 0
    assert [r["message"] for r in server.records() if r["logger"] == "augsvc.server"] == \
        ["serving", "stopping", "stopped"]


@pytest.mark.slow
def test_two_processes_share_the_port_and_stop_together(serve: Callable[..., Serve]) -> None:
    server = serve("--processes", "2")
    serving = {r["pid"]: r["process_index"] for r in server.records() if r["message"] == "serving"}
    assert sorted(serving.values()) == [0, 1] and server.proc.pid not in serving
    for _ in range(24):  # a connection each, spread over the two listeners by the kernel
        with grpc.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)]) as chan:
            assert pb_grpc.AugmenterStub(chan).AugmentTexts(SWAP, timeout=30).samples[0].text
    answered = {r["pid"] for r in server.records() if r["message"] == "call"}
    assert answered == set(serving), "both processes should have answered calls"
    assert server.stop() == 0
    done = [r for r in server.records() if r["message"] == "all server processes stopped"]
    assert done and done[0]["exitcodes"] == [0, 0] and done[0]["pid"] == server.proc.pid
