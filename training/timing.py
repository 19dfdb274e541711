"""How long a training loop waits for its input: the signal that says whether the data source
(the service, the DataLoader workers) or the model is the bottleneck."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["WaitExporter", "Waited"]

T = TypeVar("T")


class Waited(Generic[T]):
    """Iterates ``items`` and adds up, in ``seconds``, the time spent waiting for each one (and
    tells ``report`` each wait, when given)."""

    def __init__(self, items: Iterable[T], report: Callable[[float], Any] | None = None) -> None:
        self._items = iter(items)
        self._report = report
        self.seconds = 0.0

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        start = time.perf_counter()
        try:
            return next(self._items)
        finally:
            waited = time.perf_counter() - start
            self.seconds += waited
            if self._report is not None:
                self._report(waited)


class WaitExporter:
    """The trainer's input wait for Prometheus: ``augsvc_trainer_input_wait_seconds_total`` by
    rank, served over HTTP on ``port`` plus the process's local rank on its machine (torchrun's
    ``LOCAL_RANK``; 0: a free port). Its rate is the share of the
    time a trainer waits for batches: the signal that more service replicas would help (an
    autoscaler's custom metric) where CPU load cannot tell.
    """

    def __init__(self, port: int, rank: int) -> None:
        from prometheus_client import CollectorRegistry, Counter, start_http_server

        self.registry = CollectorRegistry()
        waits = Counter("augsvc_trainer_input_wait_seconds", "Seconds the training loop waited "
                        "for its next batch.", ["rank"], registry=self.registry)
        self.add = waits.labels(str(rank)).inc
        local = int(os.environ.get("LOCAL_RANK", "0"))  # ranks of one machine share its ports
        self._server, _ = start_http_server(port + local if port else 0, registry=self.registry)
        self.port: int = self._server.server_port

    @classmethod
    def serving(cls, port: int | None, rank: int) -> WaitExporter | None:
        """An exporter on ``port`` (the run config's ``metrics_port``), or None when it is null."""
        return None if port is None else cls(port, rank)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
