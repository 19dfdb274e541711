"""``augsvc serve`` as a child process, and a wait for its health service to say SERVING.

Used by ``augsvc demo`` and by the tests that run real servers as processes.
"""

from __future__ import annotations

import collections
import json
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["ServerProcess", "wait_serving"]


def wait_serving(address: str, timeout: float = 60.0) -> None:
    """Poll the standard health service until it reports SERVING.

    Raises:
        TimeoutError: not SERVING within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"augsvc at {address} was not SERVING after {timeout:.0f} s")
            time.sleep(0.2)


class ServerProcess:
    """``augsvc serve`` as a child process: started, its address read from the ready line.

    Args:
        args: ``augsvc serve`` arguments (``--port 0`` comes first, so a later one wins).
        memory_cap: bytes of address space (RLIMIT_AS) for the server and the workers it starts;
            a cap from outside, so that a server whose own accounting fails cannot take the
            machine down with it.

    Attributes:
        logs: the JSON log lines the server has written since its ready line (one per call at
            INFO, "stopping", "stopped"); complete once ``wait`` or ``stop`` has returned.
    """

    def __init__(self, args: Sequence[str] = (), *, timeout: float = 120.0,
                 memory_cap: int | None = None) -> None:
        command = [sys.executable, "-m", "augsvc.cli", "serve", "--port", "0", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True, errors="replace")
        if memory_cap is not None:
            # Set on the running child rather than in preexec_fn (unsafe in a threaded parent):
            # the interpreter is still starting, and the workers it spawns later inherit it.
            resource.prlimit(self.process.pid, resource.RLIMIT_AS, (memory_cap, memory_cap))
        self.logs: list[str] = []
        self._tail: collections.deque[str] = collections.deque(maxlen=200)  # every stderr line
        self.metrics_port: int | None = None  # when started with --metrics-port
        self.address = self._ready(timeout)
        # keep draining stderr (JSON call logs) so the child never blocks on a full pipe
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _ready(self, timeout: float) -> str:
        assert self.process.stderr is not None
        lines: list[str] = []
        timer = threading.Timer(timeout, self.process.kill)
        timer.start()
        try:
            for line in self.process.stderr:
                lines.append(line)
                self._tail.append(line.rstrip("\n")[:2000])
                if '"metrics_port": ' in line and json.loads(line)["metrics_port"] is not None:
                    self.metrics_port = int(json.loads(line)["metrics_port"])
                match = re.search(r"serving \S+ on (\S+:\d+)", line)
                if match:
                    return match.group(1)
        finally:
            timer.cancel()
        raise RuntimeError("augsvc serve stopped before it was ready:\n" + "".join(lines[-20:]))

    def _read_rest(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._tail.append(line.rstrip("\n")[:2000])
            if line.startswith("{"):
                self.logs.append(line)

    def stderr_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines the server wrote to stderr (logs, tracebacks), as text."""
        return "\n".join(list(self._tail)[-lines:])

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def records(self) -> list[dict[str, Any]]:
        """``logs`` parsed: one dict per JSON line."""
        return [json.loads(line) for line in list(self.logs)]

    def wait(self, timeout: float = 30.0) -> int:
        """The exit code once the process has ended (killed after ``timeout`` seconds), with
        every line it wrote in ``logs``."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # The pipe ends when the last process holding it (batch workers too) has gone.
        self._drain.join(timeout=10)
        return int(self.process.returncode)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful: health NOT_SERVING, in-flight calls finish); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)
