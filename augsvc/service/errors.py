"""The one place where exceptions become gRPC status codes."""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
from typing import NoReturn

import grpc

from augsvc.errors import BusyError, InputError, LimitError, SpecError
from augsvc.resources import ResourceError
from augsvc.wire.metadata import RETRY_PUSHBACK_KEY

__all__ = ["abort_with", "retry_pushback", "status_for"]

MAX_DETAILS = 2000
"""Characters of a status message, at most: gRPC refuses metadata over 16 KiB whole, and a
message that quotes a hostile request (a 1 MB dataset name) must still reach the client."""


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """(code, message) for an exception raised while serving a request; the message is cut to
    ``MAX_DETAILS`` characters."""
    code, message = _status_for(exc)
    if len(message) > MAX_DETAILS:
        message = message[:MAX_DETAILS - 20] + f"... ({len(message)} characters)"
    return code, message


def _status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, BusyError):
        return grpc.StatusCode.UNAVAILABLE, f"{exc}; retry in {exc.retry_after:g} s"
    if isinstance(exc, LimitError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, SpecError | InputError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, ResourceError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, MemoryError):  # the process's ceiling (--max-memory) stopped an allocation
        return grpc.StatusCode.RESOURCE_EXHAUSTED, (
            f"the server ran out of memory for this request ({exc or 'MemoryError'}); its ceiling "
            "is --max-memory: send fewer or smaller samples")
    if isinstance(exc, BrokenProcessPool):  # the pool is rebuilt; a retry (or resume) succeeds
        return grpc.StatusCode.UNAVAILABLE, f"a batch worker died ({exc}); retry"
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


def retry_pushback(exc: BaseException) -> tuple[tuple[str, str], ...]:
    """The trailing metadata that goes with ``exc``'s status: a retry hint for a BusyError."""
    if isinstance(exc, BusyError):
        return ((RETRY_PUSHBACK_KEY, str(max(1, round(exc.retry_after * 1000)))),)
    return ()


def abort_with(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    """End the call with ``exc``'s status and message (``status_for``) and its retry hint."""
    code, message = status_for(exc)
    trailer = retry_pushback(exc)
    if trailer:
        context.set_trailing_metadata(trailer)
    context.abort(code, message)
    raise AssertionError("unreachable: abort raises")
