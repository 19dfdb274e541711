"""Build and run the gRPC server: Augmenter, health, reflection, auth, TLS, metrics, graceful stop.

Backpressure: streamed responses are generators that gRPC pulls one message at a time, and it
pulls the next only once the previous one has been handed to the transport, whose HTTP/2 flow
control stops taking messages when the client stops reading. A slow client therefore holds the
server a few messages (the flow-control window) ahead of it, never a whole epoch: nothing may
precompute a stream into a list. Streams also stop between messages when the client cancels or
the deadline passes (``context.is_active()``), so abandoned work does not go on.

Admission: ``augsvc serve`` runs ``threads + reserve_threads`` request threads, and a data call
(any Augmenter RPC) takes one of ``threads`` slots without waiting or is refused at once with
UNAVAILABLE and a ``grpc-retry-pushback-ms`` hint (``admission.py``), so health checks and
reflection always find a thread, however many streams run.

Shutdown (``AugmentServer.stop``): health turns NOT_SERVING at once and keeps answering, because
the port stays open while calls in flight finish; new data calls are refused ("draining"); what
still runs 1 s before the grace period ends is cancelled, the batch workers and the metrics
endpoint are closed, and ``serve`` ends the process within the grace period of the signal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from augsvc.errors import AugsvcError
from augsvc.memory import reuse_large_buffers
from augsvc.service.admission import Admission, AdmissionInterceptor
from augsvc.service.auth import BearerTokenInterceptor
from augsvc.service.config import ServeConfig
from augsvc.service.epochs import EpochStreamer
from augsvc.service.logs import CallLog
from augsvc.service.memory_budget import MemoryBudget, apply_ceiling
from augsvc.service.metrics import Metrics, MetricsEndpoint
from augsvc.service.observe import CallObserver, ObservingInterceptor
from augsvc.service.servicer import AugmenterServicer, add_augmenter
from augsvc.wire.tensors import MAX_MESSAGE_BYTES, Limits
from augsvc.wire.v1 import augment_pb2 as pb

__all__ = ["SERVICE_NAME", "AugmentServer", "BindError", "build_server", "end_process", "serve"]

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Augmenter"].full_name
_HEALTH_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# Seconds at the end of the grace period kept for the stop itself: cancelling what still runs,
# closing the batch workers and the metrics endpoint, ending the process (about 0.1 s idle on
# two busy cores; the rest is margin). Never more than half of the grace period.
_TEARDOWN_SECONDS = 1.0
_DRAIN_POLL_SECONDS = 0.1  # how soon a drain notices a second signal
_log = logging.getLogger("augsvc.server")


class BindError(AugsvcError, OSError):
    """The server cannot listen on the address it was given."""

    def __init__(self, address: str) -> None:
        super().__init__(f"cannot bind {address}: the port is in use or the host is not an address "
                         "of this machine")


def _age_options(age: tuple[float, float] | None) -> list[tuple[str, int]]:
    if age is None:
        return []
    return [("grpc.max_connection_age_ms", round(age[0] * 1000)),
            ("grpc.max_connection_age_grace_ms", round(age[1] * 1000))]


def build_server(address: str = "127.0.0.1:0", *, workers: int = 4, reserve_workers: int = 0,
                 admission: Admission | None = None, limits: Limits | None = None,
                 max_message_bytes: int = MAX_MESSAGE_BYTES, token: str | None = None,
                 tls: tuple[bytes, bytes] | None = None, observers: Sequence[CallObserver] = (),
                 health_servicer: health.HealthServicer | None = None,
                 reuse_port: bool = False, epochs: EpochStreamer | None = None,
                 budget: MemoryBudget | None = None,
                 max_connection_age: tuple[float, float] | None = None
                 ) -> tuple[grpc.Server, int]:
    """A ready (not yet started) server bound to ``address``, and the bound port.

    Health reports SERVING for "" and the Augmenter service; health and reflection need no token.

    Args:
        address: "host:port"; port 0 picks a free port.
        workers: threads of the request pool (a stream holds one for its whole life).
        reserve_workers: more threads, for calls that take no slot of ``admission``: health,
            reflection, refusals.
        admission: when given, every Augmenter call takes one of its slots or is refused at
            once with UNAVAILABLE (give it ``workers`` slots); default: calls queue for a thread.
        limits: per-request limits of the servicer.
        max_message_bytes: largest message received or sent.
        token: when given, every other call needs ``authorization: Bearer <token>`` metadata.
        tls: (certificate chain PEM, private key PEM) to serve TLS instead of plaintext.
        observers: told about every call (``Metrics``, ``CallLog``).
        health_servicer: the health service to register (pass one to flip it on shutdown).
        reuse_port: share the port with other processes (SO_REUSEPORT); off, binding a port in
            use fails instead of silently splitting its traffic.
        epochs: the datasets and worker pool of ListDatasets/StreamEpoch (default: the
            built-in datasets, batches built on the request thread).
        budget: memory that requests in flight reserve before they run (default: none).
        max_connection_age: (age, grace) in seconds: a connection this old is asked to go away
            (GOAWAY), and cut after ``grace`` more; clients then connect again and resolve the
            server's name again (gRPC resolves a name at most every 30 s), so replicas added
            since are used (None: connections live on).

    Returns:
        (server, port).

    Raises:
        BindError: the address cannot be bound (an OSError).
    """
    interceptors: list[grpc.ServerInterceptor] = []
    if observers:  # first, so calls refused by auth are observed too
        interceptors.append(ObservingInterceptor(observers))
    if token is not None:
        interceptors.append(BearerTokenInterceptor(token))
    if admission is not None:  # after auth: a call refused for its token takes no slot
        interceptors.append(AdmissionInterceptor(admission, (SERVICE_NAME,)))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers + reserve_workers), interceptors=interceptors,
        options=[("grpc.max_receive_message_length", max_message_bytes),
                 ("grpc.max_send_message_length", max_message_bytes),
                 ("grpc.so_reuseport", int(reuse_port)),
                 # Accept the pings of AugmentClient's keepalive (every 2 s at the most), also on
                 # idle connections: gRPC's defaults allow one ping per 5 min while the server
                 # sends nothing (per 2 h without a call) and answer a third ping that comes
                 # sooner with GOAWAY "too_many_pings", dropping the connection and its streams.
                 ("grpc.keepalive_permit_without_calls", 1),
                 ("grpc.http2.min_ping_interval_without_data_ms", 1000),
                 ("grpc.http2.max_ping_strikes", 2),  # still a guard against ping floods
                 *_age_options(max_connection_age)])
    add_augmenter(AugmenterServicer(limits, epochs=epochs, budget=budget), server)
    health_servicer = health_servicer or health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection((SERVICE_NAME, _HEALTH_NAME, reflection.SERVICE_NAME), server)
    try:
        if tls is not None:
            port = server.add_secure_port(address, grpc.ssl_server_credentials([(tls[1], tls[0])]))
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:  # what grpcio raises when the bind fails
        port = 0
    if port == 0:
        raise BindError(address)
    return server, port


class AugmentServer:
    """The server ``augsvc serve`` runs: built from a ServeConfig, with metrics, logs, admission
    of data calls (``config.threads`` at once, ``config.reserve_threads`` more threads for health
    and refusals) and a graceful stop.

    Args:
        config: the settings.
        process_index: this process's number among ``config.processes`` (metrics port offset).
        reuse_port: share the port with sibling processes.

    Raises:
        BindError: the gRPC port cannot be bound.
        OSError: the metrics port cannot be bound, or a TLS file cannot be read.
    """

    def __init__(self, config: ServeConfig, *, process_index: int = 0, reuse_port: bool = False) -> None:
        self.config = config
        self.health = health.HealthServicer()
        self.metrics = Metrics()
        self.admission = Admission(config.threads, on_refused=self.metrics.refused)
        self.metrics.watch(self.admission)
        self._hurry = threading.Event()  # set by a second signal: cut the drain short
        tls = None
        if config.tls_cert is not None and config.tls_key is not None:
            tls = (Path(config.tls_cert).read_bytes(), Path(config.tls_key).read_bytes())
        self.epochs = EpochStreamer(config.dataset_map, limits=config.limits,
                                    workers=config.epoch_workers)
        self.server, self.port = build_server(
            config.address, workers=config.threads, reserve_workers=config.reserve_threads,
            admission=self.admission, limits=config.limits,
            max_message_bytes=config.max_message_bytes, token=config.token, tls=tls,
            observers=(self.metrics, CallLog()), health_servicer=self.health, reuse_port=reuse_port,
            epochs=self.epochs, budget=MemoryBudget.for_ceiling(config.memory_ceiling),
            max_connection_age=None if config.max_connection_age is None
            else (config.max_connection_age, config.max_connection_age_grace))
        self.endpoint: MetricsEndpoint | None = None
        if config.metrics_port is not None:
            port = config.metrics_port + process_index if config.metrics_port else 0
            try:
                self.endpoint = MetricsEndpoint(self.metrics, config.host, port)
            except OSError as exc:
                self.server.stop(0)
                raise BindError(f"{config.host}:{port} (metrics: {exc.strerror or exc})") from None

    def start(self) -> None:
        self.epochs.pool()  # spawn the batch workers now, so the first epoch does not wait
        self.server.start()

    def hurry(self) -> None:
        """Cut a drain in progress short: cancel the calls still running now (a second signal)."""
        self._hurry.set()

    def stop(self, grace: float | None = None, *, since: float | None = None) -> int:
        """Drain, then stop, all within ``grace`` seconds of ``since``.

        Health turns NOT_SERVING for every service at once and keeps answering NOT_SERVING: the
        port stays open while draining. New data calls are refused with UNAVAILABLE
        ("draining") and a retry hint. Calls in flight may finish until the drain deadline,
        ``grace`` minus the teardown reserve (1 s, at most half of ``grace``); whatever still
        runs then is cancelled, the port closed, the batch workers and the metrics endpoint
        closed. Every wait is bounded by the deadline.

        Args:
            grace: seconds from ``since`` the whole stop may take (default: the config's
                grace period).
            since: ``time.monotonic()`` when the stop was asked for (the signal); default now.

        Returns:
            How many data calls were still running at the drain deadline, and were cancelled.
        """
        grace = self.config.grace_period if grace is None else grace
        deadline = (time.monotonic() if since is None else since) + grace
        teardown = min(_TEARDOWN_SECONDS, grace / 2)
        self.health.enter_graceful_shutdown()
        self.admission.drain()
        self._drain(until=deadline - teardown)
        cancelled = self.admission.in_use
        # Closes the port and cancels every call still running: a cancelled stream ends at its
        # next message, and gives its slot back (and is logged) as it ends.
        self.server.stop(0).wait(_left(deadline - teardown / 2))
        self.admission.wait_idle(_left(deadline - teardown / 2))
        self.epochs.close()
        if self.endpoint is not None:
            self.endpoint.close(timeout=_left(deadline))
        return cancelled

    def _drain(self, until: float) -> None:
        """Wait until no data call runs, the monotonic time ``until``, or ``hurry()``."""
        while not self.admission.wait_idle(min(_DRAIN_POLL_SECONDS, _left(until))):
            if self._hurry.is_set() or time.monotonic() >= until:
                return


def _left(deadline: float) -> float:
    """Seconds from now until the monotonic time ``deadline`` (0 once it has passed)."""
    return max(0.0, deadline - time.monotonic())


def end_process(code: int) -> NoReturn:
    """End the process now, once the logs are out.

    Skips the interpreter's own teardown: joining threads of calls that were cancelled but are
    still computing, and finalizing torch, albumentations and grpc (0.5 s idle, more on a busy
    machine), which would push the exit past the grace period. Everything that matters is
    closed by then; shared-memory slots still lent to a worker are unlinked by the resource
    tracker when this process is gone.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a reader that went away
            stream.flush()
    os._exit(code)


def serve(config: ServeConfig, *, process_index: int = 0, reuse_port: bool = False,
          on_ready: Callable[[int], None] | None = None) -> NoReturn:
    """Run one server process until SIGTERM or SIGINT, stop gracefully, and end the process.

    The process has exited, with code 0, within ``config.grace_period`` seconds of the first
    signal (see ``AugmentServer.stop``); its "stopped" log line says how many seconds it took.
    A second signal cancels the calls still running at once. Must run in the main thread (it
    installs the signal handlers), as the process's last act: it never returns.

    Args:
        config: the settings.
        process_index: this process's number among ``config.processes``.
        reuse_port: share the port with sibling processes.
        on_ready: called with the bound port once the server accepts calls.
    """
    reuse_large_buffers()
    apply_ceiling(config.memory_ceiling)  # before the batch workers start: they inherit it
    server = AugmentServer(config, process_index=process_index, reuse_port=reuse_port)
    signalled: list[float] = []  # time.monotonic() of the first signal: the grace period's start

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signalled:
            server.hurry()
        else:
            signalled.append(time.monotonic())

    # Python runs signal handlers in the main thread only, but the kernel may hand SIGTERM to
    # any thread (gRPC's, the request pool's), and a main thread blocked in a lock (an
    # Event.wait) then runs the handler only when its wait times out. The wakeup socket is
    # written by whichever thread takes the signal, so the main thread's select() returns and
    # the handler runs at once.
    wake, wake_writer = socket.socketpair()
    wake_writer.setblocking(False)
    signal.set_wakeup_fd(wake_writer.fileno(), warn_on_full_buffer=False)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    server.start()
    _log.info("serving", extra={"fields": {
        "address": f"{config.host}:{server.port}", "process_index": process_index,
        "tls": config.tls_cert is not None, "auth": config.token is not None,
        "metrics_port": server.endpoint.port if server.endpoint else None}})
    if on_ready is not None:
        on_ready(server.port)
    while not signalled:
        select.select([wake], [], [])
        wake.recv(4096)
    _log.info("stopping", extra={"fields": {"grace_period": config.grace_period,
                                            "in_flight": server.admission.in_use}})
    cancelled = server.stop(since=signalled[0])
    _log.info("stopped", extra={"fields": {"seconds": round(time.monotonic() - signalled[0], 3),
                                           "cancelled": cancelled}})
    end_process(0)
