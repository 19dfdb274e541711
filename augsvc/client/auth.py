"""The client's half of bearer-token auth: the token on every call of a channel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import grpc

from augsvc.wire.metadata import AUTHORIZATION, bearer

__all__ = ["BearerTokenClientInterceptor"]


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class BearerTokenClientInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every call of a channel (plaintext or TLS).

    Call credentials would do this only over TLS; an interceptor also covers plaintext channels
    on trusted networks, and every RPC of the channel, present or future, gets the token.
    """

    def __init__(self, token: str) -> None:
        self._header = (AUTHORIZATION, bearer(token))

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [*(details.metadata or ()), self._header]  # type: ignore[attr-defined]
        return _CallDetails(details.method, details.timeout, metadata,  # type: ignore[attr-defined, return-value]
                            details.credentials, details.wait_for_ready,  # type: ignore[attr-defined]
                            details.compression)  # type: ignore[attr-defined]

    def intercept_unary_unary(self, continuation: Callable[..., Any],
                              client_call_details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any],
                               client_call_details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any],
                               client_call_details: grpc.ClientCallDetails, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Callable[..., Any],
                                client_call_details: grpc.ClientCallDetails, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)
