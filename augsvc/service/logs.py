"""Structured logs of the server: JSON lines on stderr, one per call, through the stdlib logging module."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

import grpc

from augsvc.service.observe import PROBE_SERVICES, Call

__all__ = ["CALL_LOGGER", "CallLog", "JsonFormatter", "configure_logging"]

CALL_LOGGER = "augsvc.calls"
_SERVER_FAULTS = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, pid, and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "pid": record.process}
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> logging.Logger:
    """Send the ``augsvc`` loggers to ``stream`` (stderr) as JSON lines at ``level``; returns that logger.

    Only the ``augsvc`` logger tree is configured (it does not propagate to the root logger), so
    libraries and the embedding application keep their own logging set-up.
    """
    logger = logging.getLogger("augsvc")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


class CallLog:
    """A CallObserver that logs each finished call: method, code, duration, samples, peer.

    Calls to probe services (health, reflection) go out at DEBUG, server faults at WARNING, the
    rest at INFO, so the INFO stream is the real traffic.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(CALL_LOGGER)

    def started(self, call: Call) -> None:
        pass

    def received(self, call: Call) -> None:
        pass

    def sent(self, call: Call, samples: int, skipped: int) -> None:
        pass

    def finished(self, call: Call) -> None:
        level = logging.WARNING if call.code in _SERVER_FAULTS \
            else logging.DEBUG if call.service in PROBE_SERVICES else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "method": call.method, "code": call.code.name, "duration_ms": round(call.seconds * 1000, 3),
            "samples": call.samples, "messages_in": call.received, "messages_out": call.sent,
            "peer": call.peer}
        if call.skipped:
            fields["skipped"] = call.skipped
        if call.details:
            fields["details"] = call.details[:500]
        self.logger.log(level, "call", extra={"fields": fields})
