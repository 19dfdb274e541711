"""Typed errors of augsvc: one class per kind of failure, so callers (and the service) can map them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["AugsvcError", "BusyError", "Cancelled", "ConfigError", "InputError", "LimitError",
           "SpecError", "TransformError", "did_you_mean", "unknown_name"]


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest known name, or ``""``: every "unknown name"
    message of augsvc and its training package ends this way."""
    close = difflib.get_close_matches(str(word), list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    """``unknown optimizer 'adan' (did you mean 'adam'?); known: adam, adamw, ...``"""
    names = sorted(known)
    return f"unknown {what} {name!r}{did_you_mean(name, names)}; known: {', '.join(names)}"


class AugsvcError(Exception):
    """Base class of every error augsvc raises on purpose."""


class SpecError(AugsvcError, ValueError):
    """A pipeline spec is invalid: unknown transform, bad field, value out of range.

    Attributes:
        path: where in the spec the problem is, e.g. ``transforms[2].one_of[0]``.
        transform: the transform name, when the problem is inside one.
        field: the offending field, when there is one.
        value: the offending value.
        allowed: a human description of what would have been accepted.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        transform: str | None = None,
        field: str | None = None,
        value: Any = None,
        allowed: str | None = None,
    ) -> None:
        self.path = path
        self.transform = transform
        self.field = field
        self.value = value
        self.allowed = allowed
        where = path
        if transform:
            where = f"{where} ({transform})" if where else transform
        if field:
            where = f"{where}: field '{field}'" if where else f"field '{field}'"
        full = f"{where}: {message}" if where else message
        if allowed:
            full = f"{full}; allowed: {allowed}"
        super().__init__(full)


class ConfigError(AugsvcError, ValueError):
    """A setting of the server or of a training run is unknown or has a value it does not allow;
    the message names the setting, where its value came from and what is allowed."""


class InputError(AugsvcError, ValueError):
    """An input sample (image, mask, boxes, text) cannot be augmented as given."""


class TransformError(AugsvcError, RuntimeError):
    """A transform failed on a valid-looking input; the message names the transform and sample."""


class LimitError(AugsvcError, ValueError):
    """A request, or what a pipeline would make of it, is larger than allowed.

    The service answers it with RESOURCE_EXHAUSTED: sending it again will fail again.
    """


class BusyError(AugsvcError, RuntimeError):
    """Cannot be served now (every stream slot taken, the memory budget spent, a drain begun).

    The service answers it with UNAVAILABLE and the ``grpc-retry-pushback-ms`` trailer, which
    gRPC's own retries honour: the same request may well succeed a moment later, or elsewhere.

    Attributes:
        retry_after: seconds after which a retry is worth trying.
    """

    def __init__(self, message: str, retry_after: float = 0.5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Cancelled(AugsvcError):
    """The caller asked the work to stop (its client left, or its deadline passed)."""
