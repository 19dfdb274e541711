"""Typed errors of augsvc: one class per kind of failure, so callers (and the service) can map them."""

from __future__ import annotations

from typing import Any

__all__ = ["AugsvcError", "InputError", "SpecError", "TransformError"]


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


class InputError(AugsvcError, ValueError):
    """An input sample (image, mask, boxes, text) cannot be augmented as given."""


class TransformError(AugsvcError, RuntimeError):
    """A transform failed on a valid-looking input; the message names the transform and sample."""
