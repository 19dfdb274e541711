"""``augsvc serve``: one server process, or N sharing a port (SO_REUSEPORT) under a supervising parent.

The multi-process layout is gRPC's ``examples/python/multiprocessing``: gRPC cannot survive a
fork once a server exists, so the parent creates none. It reserves the port with a plain
SO_REUSEPORT socket, forks the children (each builds its own server and thread pool on that port;
the kernel spreads connections over them), waits until all accept calls, prints the ready line,
forwards SIGTERM/SIGINT to them as SIGTERM, and exits 0 when all stopped cleanly. A child that
dies on its own stops the rest and the parent exits 1, for the process manager to restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import NoReturn

from augsvc.service.config import ServeConfig
from augsvc.service.logs import configure_logging
from augsvc.service.server import SERVICE_NAME, BindError, end_process, serve

__all__ = ["ready_line", "run"]

_log = logging.getLogger("augsvc.supervisor")
_START_TIMEOUT = 120.0


def ready_line(config: ServeConfig, port: int) -> str:
    """The one line printed to stderr when the server accepts calls (scripts wait for it)."""
    return f"augsvc serving {SERVICE_NAME} on {config.host}:{port}"


@contextlib.contextmanager
def _reserve_port(host: str, port: int) -> Iterator[int]:
    """Hold ``host:port`` (port 0: a free one) with SO_REUSEPORT, without listening, for the children."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise BindError(f"{host}:{port}") from None
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _child(config: ServeConfig, index: int, ready: Connection) -> None:
    # serve() ends the process itself (exit code 0), within the grace period of the signal
    serve(config, process_index=index, reuse_port=True, on_ready=lambda port: ready.send(port))


def run(config: ServeConfig) -> NoReturn:
    """Serve until SIGTERM/SIGINT with ``config.processes`` processes, then end the process.

    It exits with 0 when every server process stopped cleanly, 1 otherwise, within the grace
    period of the signal.

    Args:
        config: the settings (logging is configured from them).
    """
    configure_logging(config.log_level)
    if config.processes == 1:
        serve(config, on_ready=lambda port: print(ready_line(config, port), file=sys.stderr,
                                                  flush=True))
    with _reserve_port(config.host, config.port) as port:
        code = _supervise(dataclasses.replace(config, port=port))
    # As each child does: the interpreter's teardown (torch, grpc) would add 0.5 s or more
    # after the children have stopped, past a grace period they kept.
    end_process(code)


def _supervise(config: ServeConfig) -> int:
    ctx = multiprocessing.get_context("fork")
    parent = os.getpid()
    children: list[multiprocessing.process.BaseProcess] = []
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if os.getpid() != parent:  # a child that has not installed its own handlers yet
            raise SystemExit(0)
        stopping = True
        for child in children:
            if child.pid is not None and child.exitcode is None:
                os.kill(child.pid, signal.SIGTERM)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    readers: dict[Connection, int] = {}
    for index in range(config.processes):
        reader, writer = ctx.Pipe(duplex=False)
        child: multiprocessing.process.BaseProcess = ctx.Process(
            target=_child, args=(config, index, writer), name=f"augsvc-serve-{index}")
        child.start()
        writer.close()
        children.append(child)
        readers[reader] = index
    failed = _wait_ready(children, readers)
    if stopping:  # a signal came while starting: the children are stopping already
        failed = None
    elif failed is None:
        print(ready_line(config, config.port), file=sys.stderr, flush=True)
    else:
        _log.error("a server process failed to start", extra={"fields": {"process_index": failed}})
        forward(signal.SIGTERM, None)
    while any(child.exitcode is None for child in children):
        ended = wait([c.sentinel for c in children if c.exitcode is None])
        for child in children:
            if child.sentinel in ended:
                child.join()
                if not stopping:
                    _log.error("a server process exited; stopping the others",
                               extra={"fields": {"child_pid": child.pid, "exitcode": child.exitcode}})
                    forward(signal.SIGTERM, None)
    codes = [child.exitcode for child in children]
    _log.info("all server processes stopped", extra={"fields": {"exitcodes": codes}})
    return 0 if failed is None and all(code == 0 for code in codes) else 1


def _wait_ready(children: list[multiprocessing.process.BaseProcess],
                readers: dict[Connection, int]) -> int | None:
    """None once every child reported its port; else the index of a child that died (or hung) first."""
    pending = dict(readers)
    sentinels = {child.sentinel: k for k, child in enumerate(children)}
    while pending:
        ready = wait([*pending, *sentinels], timeout=_START_TIMEOUT)
        if not ready:
            return next(iter(pending.values()))
        for item in ready:
            if not isinstance(item, Connection):  # a sentinel: that child ended
                return sentinels[item]  # type: ignore[index]
            try:
                item.recv()
            except EOFError:
                return pending[item]
            del pending[item]
    return None
