"""Build and run the gRPC server: Augmenter, health, reflection, auth, TLS, metrics, graceful stop.

Backpressure: streamed responses are generators that gRPC pulls one message at a time, and it
pulls the next only once the previous one has been handed to the transport, whose HTTP/2 flow
control stops taking messages when the client stops reading. A slow client therefore holds the
server a few messages (the flow-control window) ahead of it, never a whole epoch: nothing may
precompute a stream into a list. Streams also stop between messages when the client cancels or
the deadline passes (``context.is_active()``), so abandoned work does not go on.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from augsvc.errors import AugsvcError
from augsvc.memory import reuse_large_buffers
from augsvc.service.auth import BearerTokenInterceptor
from augsvc.service.codec import Limits
from augsvc.service.config import ServeConfig
from augsvc.service.epochs import EpochStreamer
from augsvc.service.logs import CallLog
from augsvc.service.memory_budget import MemoryBudget, apply_ceiling
from augsvc.service.metrics import Metrics, MetricsEndpoint
from augsvc.service.observe import CallObserver, ObservingInterceptor
from augsvc.service.servicer import AugmenterServicer, add_augmenter
from augsvc.v1 import augment_pb2 as pb

__all__ = ["SERVICE_NAME", "AugmentServer", "BindError", "build_server", "serve"]

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Augmenter"].full_name
_HEALTH_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
_MAX_MESSAGE = 512 * 1024 * 1024
_log = logging.getLogger("augsvc.server")


class BindError(AugsvcError, OSError):
    """The server cannot listen on the address it was given."""

    def __init__(self, address: str) -> None:
        super().__init__(f"cannot bind {address}: the port is in use or the host is not an address "
                         "of this machine")


def build_server(address: str = "127.0.0.1:0", *, workers: int = 4, limits: Limits | None = None,
                 max_message_bytes: int = _MAX_MESSAGE, token: str | None = None,
                 tls: tuple[bytes, bytes] | None = None, observers: Sequence[CallObserver] = (),
                 health_servicer: health.HealthServicer | None = None,
                 reuse_port: bool = False, epochs: EpochStreamer | None = None,
                 budget: MemoryBudget | None = None
                 ) -> tuple[grpc.Server, int]:
    """A ready (not yet started) server bound to ``address``, and the bound port.

    Health reports SERVING for "" and the Augmenter service; health and reflection need no token.

    Args:
        address: "host:port"; port 0 picks a free port.
        workers: threads of the request pool (a stream holds one for its whole life).
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
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers), interceptors=interceptors,
        options=[("grpc.max_receive_message_length", max_message_bytes),
                 ("grpc.max_send_message_length", max_message_bytes),
                 ("grpc.so_reuseport", int(reuse_port)),
                 # Accept the pings of AugmentClient's keepalive (every 2 s at the most), also on
                 # idle connections: gRPC's defaults allow one ping per 5 min while the server
                 # sends nothing (per 2 h without a call) and answer a third ping that comes
                 # sooner with GOAWAY "too_many_pings", dropping the connection and its streams.
                 ("grpc.keepalive_permit_without_calls", 1),
                 ("grpc.http2.min_ping_interval_without_data_ms", 1000),
                 ("grpc.http2.max_ping_strikes", 2)])  # still a guard against ping floods
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
    """The server ``augsvc serve`` runs: built from a ServeConfig, with metrics, logs and a graceful stop.

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
        tls = None
        if config.tls_cert is not None and config.tls_key is not None:
            tls = (Path(config.tls_cert).read_bytes(), Path(config.tls_key).read_bytes())
        self.epochs = EpochStreamer(config.dataset_map, limits=config.limits,
                                    workers=config.epoch_workers)
        self.server, self.port = build_server(
            config.address, workers=config.threads, limits=config.limits,
            max_message_bytes=config.max_message_bytes, token=config.token, tls=tls,
            observers=(self.metrics, CallLog()), health_servicer=self.health, reuse_port=reuse_port,
            epochs=self.epochs, budget=MemoryBudget.for_ceiling(config.memory_ceiling))
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

    def stop(self, grace: float | None = None) -> None:
        """Health to NOT_SERVING for every service, refuse new calls, let in-flight ones finish.

        Args:
            grace: seconds in-flight calls may still take (default: the config's grace period);
                calls still running after it are cancelled.
        """
        self.health.enter_graceful_shutdown()
        self.server.stop(self.config.grace_period if grace is None else grace).wait()
        self.epochs.close()
        if self.endpoint is not None:
            self.endpoint.close()


def serve(config: ServeConfig, *, process_index: int = 0, reuse_port: bool = False,
          on_ready: Callable[[int], None] | None = None) -> int:
    """Run one server process until SIGTERM or SIGINT, then stop gracefully; returns the exit code.

    A second signal during the grace period cancels the calls still running. Must run in the
    main thread (it installs the signal handlers).

    Args:
        config: the settings.
        process_index: this process's number among ``config.processes``.
        reuse_port: share the port with sibling processes.
        on_ready: called with the bound port once the server accepts calls.

    Returns:
        0 after a clean stop.
    """
    reuse_large_buffers()
    apply_ceiling(config.memory_ceiling)  # before the batch workers start: they inherit it
    server = AugmentServer(config, process_index=process_index, reuse_port=reuse_port)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            server.server.stop(0)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    server.start()
    _log.info("serving", extra={"fields": {
        "address": f"{config.host}:{server.port}", "process_index": process_index,
        "tls": config.tls_cert is not None, "auth": config.token is not None,
        "metrics_port": server.endpoint.port if server.endpoint else None}})
    if on_ready is not None:
        on_ready(server.port)
    while not stop.wait(3600):
        pass
    _log.info("stopping", extra={"fields": {"grace_period": config.grace_period}})
    server.stop()
    _log.info("stopped")
    return 0
