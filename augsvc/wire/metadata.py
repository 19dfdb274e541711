"""The call metadata both ends read: the bearer token and the server's retry hint."""

from __future__ import annotations

__all__ = ["AUTHORIZATION", "RETRY_PUSHBACK_KEY", "bearer"]

AUTHORIZATION = "authorization"
"""The metadata key of the bearer token (gRPC keys are lower case)."""

RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"
"""The trailer gRPC's retry policy reads: how long to wait before the next attempt."""


def bearer(token: str) -> str:
    """The ``authorization`` value that carries ``token``."""
    return f"Bearer {token}"
