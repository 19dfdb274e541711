"""Prometheus metrics of the server: calls by method and code, messages, samples, latency, admission.

The names and labels follow the grpc-ecosystem convention (``grpc_server_handled_total`` with
``grpc_type``, ``grpc_service``, ``grpc_method``, ``grpc_code``) so existing dashboards work; the
errors by status code are the ``grpc_server_handled_total`` series whose ``grpc_code`` is not OK.
Each server process has its own registry and HTTP port (``metrics_port + process index``):
scrape every port, no shared multiprocess directory needed.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from augsvc.service.admission import Admission
from augsvc.service.observe import Call

__all__ = ["LATENCY_BUCKETS", "Metrics", "MetricsEndpoint"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 300.0)
_LABELS = ("grpc_type", "grpc_service", "grpc_method")
# How often the endpoint's loop looks for a stop request: the most ``close()`` waits.
_POLL_SECONDS = 0.05


class Metrics:
    """Call metrics in their own registry (a CallObserver for ObservingInterceptor)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.started_total = Counter("grpc_server_started", "RPCs started on the server.", _LABELS,
                                     registry=r)
        self.handled_total = Counter("grpc_server_handled", "RPCs completed on the server, by status code.",
                                     (*_LABELS, "grpc_code"), registry=r)
        self.msg_received_total = Counter("grpc_server_msg_received", "Request messages received.",
                                          _LABELS, registry=r)
        self.msg_sent_total = Counter("grpc_server_msg_sent", "Response messages produced by the servicer.",
                                      _LABELS, registry=r)
        self.samples_total = Counter("augsvc_samples", "Augmented samples in responses.",
                                     ("grpc_method",), registry=r)
        self.skipped_total = Counter("augsvc_skipped_samples", "Planned samples that could not be "
                                     "read (corrupt or oversized files), reported instead of sent.",
                                     ["grpc_method"], registry=r)
        self.handling_seconds = Histogram("grpc_server_handling_seconds",
                                          "Time from the start of an RPC to its end.", _LABELS,
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.refused_total = Counter("augsvc_calls_refused", "Data calls refused at once with "
                                     "UNAVAILABLE, by reason (busy: no request slot free; "
                                     "draining: the server is stopping).", ("reason",), registry=r)
        self.slots = Gauge("augsvc_request_slots", "Data calls that may run at once (--threads).",
                           registry=r)
        self.slots_in_use = Gauge("augsvc_request_slots_in_use", "Request slots held by running "
                                  "data calls.", registry=r)

    @staticmethod
    def _labels(call: Call) -> tuple[str, str, str]:
        return call.kind, call.service, call.name

    def started(self, call: Call) -> None:
        self.started_total.labels(*self._labels(call)).inc()

    def received(self, call: Call) -> None:
        self.msg_received_total.labels(*self._labels(call)).inc()

    def sent(self, call: Call, samples: int, skipped: int) -> None:
        self.msg_sent_total.labels(*self._labels(call)).inc()
        if samples:
            self.samples_total.labels(call.name).inc(samples)
        if skipped:
            self.skipped_total.labels(call.name).inc(skipped)

    def finished(self, call: Call) -> None:
        self.handled_total.labels(*self._labels(call), call.code.name).inc()
        self.handling_seconds.labels(*self._labels(call)).observe(call.seconds)

    def refused(self, reason: str) -> None:
        """Count a data call refused by the admission (its ``on_refused``)."""
        self.refused_total.labels(reason).inc()

    def watch(self, admission: Admission) -> None:
        """Export ``admission``'s slots: the total, and those in use (read at each scrape)."""
        self.slots.set(admission.slots)
        self.slots_in_use.set_function(lambda: admission.in_use)

    def value(self, name: str, **labels: str) -> float:
        """The current value of one series (0 when it has not been touched yet)."""
        return self.registry.get_sample_value(name, labels) or 0.0


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a line on stderr for every scrape would drown the call log


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress never holds up the process's exit


class MetricsEndpoint:
    """``/metrics`` over HTTP for a registry, on a daemon thread.

    prometheus_client's ``start_http_server``, except that the serving loop looks for a stop
    request every 50 ms instead of every 500 ms: ``close()`` is part of the server's shutdown,
    which has to fit in the grace period.

    Args:
        metrics: what to expose.
        host: address to bind (the gRPC host: loopback by default).
        port: TCP port (0 picks a free one; see ``port``).

    Raises:
        OSError: the port cannot be bound.
    """

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        server_class = type("_MetricsServer", (_Server,), {"address_family": family})
        self._server: WSGIServer = make_server(host, port, make_wsgi_app(metrics.registry),
                                               server_class, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(_POLL_SECONDS,),
                                        name="augsvc-metrics", daemon=True)
        self._thread.start()
        self.port: int = self._server.server_address[1]

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port (waits at most about ``timeout`` seconds)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=max(0.0, timeout))
