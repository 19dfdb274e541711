"""The one place where exceptions become gRPC status codes."""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool

import grpc

from augsvc.errors import InputError, SpecError
from augsvc.resources import ResourceError
from augsvc.service.codec import LimitError

__all__ = ["status_for"]


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """(code, message) for an exception raised while serving a request."""
    if isinstance(exc, LimitError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, SpecError | InputError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, ResourceError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, BrokenProcessPool):  # the pool is rebuilt; a retry (or resume) succeeds
        return grpc.StatusCode.UNAVAILABLE, f"a batch worker died ({exc}); retry"
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"
