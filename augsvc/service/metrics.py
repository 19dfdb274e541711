"""Prometheus metrics of the server: calls by method and code, messages, samples and latency.

The names and labels follow the grpc-ecosystem convention (``grpc_server_handled_total`` with
``grpc_type``, ``grpc_service``, ``grpc_method``, ``grpc_code``) so existing dashboards work; the
errors by status code are the ``grpc_server_handled_total`` series whose ``grpc_code`` is not OK.
Each server process has its own registry and HTTP port (``metrics_port + process index``):
scrape every port, no shared multiprocess directory needed.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from augsvc.service.observe import Call

__all__ = ["LATENCY_BUCKETS", "Metrics", "MetricsEndpoint"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 300.0)
_LABELS = ("grpc_type", "grpc_service", "grpc_method")


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
        self.handling_seconds = Histogram("grpc_server_handling_seconds",
                                          "Time from the start of an RPC to its end.", _LABELS,
                                          buckets=LATENCY_BUCKETS, registry=r)

    @staticmethod
    def _labels(call: Call) -> tuple[str, str, str]:
        return call.kind, call.service, call.name

    def started(self, call: Call) -> None:
        self.started_total.labels(*self._labels(call)).inc()

    def received(self, call: Call) -> None:
        self.msg_received_total.labels(*self._labels(call)).inc()

    def sent(self, call: Call, samples: int) -> None:
        self.msg_sent_total.labels(*self._labels(call)).inc()
        if samples:
            self.samples_total.labels(call.name).inc(samples)

    def finished(self, call: Call) -> None:
        self.handled_total.labels(*self._labels(call), call.code.name).inc()
        self.handling_seconds.labels(*self._labels(call)).observe(call.seconds)

    def value(self, name: str, **labels: str) -> float:
        """The current value of one series (0 when it has not been touched yet)."""
        return self.registry.get_sample_value(name, labels) or 0.0


class MetricsEndpoint:
    """``/metrics`` over HTTP for a registry, on a daemon thread.

    Args:
        metrics: what to expose.
        host: address to bind (the gRPC host: loopback by default).
        port: TCP port (0 picks a free one; see ``port``).

    Raises:
        OSError: the port cannot be bound.
    """

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.port: int = server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
