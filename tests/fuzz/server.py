"""``augsvc serve`` under a memory cap, and the checks that it survived a case: alive, SERVING, RSS.

The server runs as a real process with small limits, so hostile cases are cheap, and with an
address-space cap (``RLIMIT_AS``, inherited by its epoch workers), so a regression that tries to
allocate tens of GB fails inside the server instead of taking the test machine down.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from augsvc.service.memory_budget import process_status_bytes
from augsvc.service.process import ServerProcess

__all__ = ["MEMORY_CAP", "RSS_BOUND", "SERVE_FLAGS", "FuzzServer", "Limits"]

_MIB = 1024 * 1024
_GIB = 1024 * _MIB

MEMORY_CAP = 6 * _GIB
"""Address space each server process may map (RLIMIT_AS). The server maps about 2 GiB (VmSize) at
start and 4 GiB with the text models loaded, so this leaves room for real work, while a 10 GB
image allocation fails with a MemoryError (INTERNAL, a failed case) instead of an OOM kill."""

RSS_BOUND = 2 * _GIB
"""What each process of the server tree may peak at during a case (VmHWM); the whole tree (server,
epoch worker, resource tracker) may hold twice that, since the server and its worker each load
the text models a pipeline needs."""


class Limits:
    """The per-request limits the fuzz server runs with (small, so limit checks are exercised)."""

    max_samples = 8
    max_pixels = 1_000_000
    max_tensor_bytes = 16 * _MIB
    max_texts = 64
    max_text_chars = 20_000
    max_message_bytes = 32 * _MIB


SERVE_FLAGS: tuple[str, ...] = (
    "--epoch-workers", "1", "--threads", "4", "--grace-period", "1", "--log-level", "WARNING",
    "--max-samples", str(Limits.max_samples), "--max-pixels", str(Limits.max_pixels),
    "--max-tensor-bytes", str(Limits.max_tensor_bytes), "--max-texts", str(Limits.max_texts),
    "--max-text-chars", str(Limits.max_text_chars),
    "--max-message-bytes", str(Limits.max_message_bytes),
)


def _descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren, ... (the epoch workers and the resource tracker)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            out += [child, *_descendants(child)]
    return out


class FuzzServer:
    """``python -m augsvc.cli serve --port 0 <flags>`` with RLIMIT_AS set to ``memory_cap``.

    Args:
        flags: ``augsvc serve`` flags (default: ``SERVE_FLAGS``).
        memory_cap: bytes of address space for the server and its workers.

    Attributes:
        address: ``host:port`` from the ready line.
        restarts: how many times ``restart`` brought up a fresh process.
    """

    def __init__(self, flags: Sequence[str] = SERVE_FLAGS, *, memory_cap: int = MEMORY_CAP,
                 timeout: float = 120.0) -> None:
        self.flags = tuple(flags)
        self.memory_cap = memory_cap
        self.timeout = timeout
        self.restarts = 0
        self._channel: grpc.Channel | None = None
        self._start()

    def _start(self) -> None:
        self.server = ServerProcess(self.flags, timeout=self.timeout, memory_cap=self.memory_cap)
        self.process = self.server.process
        self.address = self.server.address
        self._channel = grpc.insecure_channel(self.address, options=[
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])

    @property
    def channel(self) -> grpc.Channel:
        """A channel to the server that accepts replies of any size (the server's limit applies)."""
        assert self._channel is not None
        return self._channel

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr_tail(self, lines: int = 20) -> str:
        return self.server.stderr_tail(lines)

    def alive(self) -> bool:
        return self.process.poll() is None

    def serving(self, timeout: float = 10.0) -> str | None:
        """None when health says SERVING within ``timeout``, else what it said instead."""
        try:
            reply = health_pb2_grpc.HealthStub(self.channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError as exc:
            return f"health check failed: {exc.code().name}: {exc.details()}"
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            return f"health says {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
        return None

    def processes(self) -> list[int]:
        """The server and every process below it."""
        return [self.pid, *_descendants(self.pid)] if self.alive() else []

    def rss(self) -> int:
        """Resident bytes of the server and its descendants, now."""
        return sum(process_status_bytes("VmRSS", pid) for pid in self.processes())

    def peak(self) -> int:
        """The highest resident size (VmHWM) any one process of the tree reached since
        ``reset_peak``, in bytes."""
        return max((process_status_bytes("VmHWM", pid) for pid in self.processes()), default=0)

    def reset_peak(self) -> None:
        """Start each process's VmHWM again from its current RSS (``clear_refs`` 5)."""
        for pid in self.processes():
            with contextlib.suppress(OSError):  # not allowed: the peak covers the process's life
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def problems(self, rss_bound: int = RSS_BOUND) -> list[str]:
        """What is wrong with the server now: dead, not SERVING, a process that peaked over
        ``rss_bound`` since ``reset_peak``, or a tree that holds over twice that."""
        if not self.alive():
            code = self.process.returncode
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
            return [f"server process {how}; its last stderr lines:\n{self.stderr_tail()}"]
        out = []
        if (health := self.serving()) is not None:
            out.append(health)
        rss, peak = self.rss(), self.peak()
        if rss > 2 * rss_bound:
            out.append(f"server tree RSS {rss / _MIB:.0f} MiB is over the bound of "
                       f"{2 * rss_bound / _MIB:.0f} MiB")
        if peak > rss_bound:
            out.append(f"a server process peaked at {peak / _MIB:.0f} MiB RSS, over the bound of "
                       f"{rss_bound / _MIB:.0f} MiB")
        return out

    def restart(self) -> None:
        """Kill the server (and any work a bad case left running) and start a fresh one."""
        self.kill()
        self.restarts += 1
        self._start()

    def kill(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        workers = _descendants(self.pid) if self.alive() else []
        if self.alive():
            self.process.kill()
        self.process.wait()
        for pid in workers:  # they would notice their parent is gone, but may be mid-allocation
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> int:
        """SIGTERM, as an operator would stop it; the exit code (killed after 20 s)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        return self.server.stop(timeout=20)

    def __enter__(self) -> FuzzServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
