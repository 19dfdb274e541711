"""Optional bearer-token auth: ``authorization: Bearer <token>`` checked by a server interceptor.

Health checking and reflection stay open without a token, so load balancers, Kubernetes probes
and ``grpcurl list``/``describe`` work; reflection reveals the schema, never data. Every other
method needs the token. Send it over TLS unless the network is trusted (loopback, a private pod
network): a bearer token travels in the clear on a plaintext channel.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from augsvc.service.observe import PROBE_SERVICES, Continuation, wrap_handler
from augsvc.wire.metadata import AUTHORIZATION, bearer

__all__ = ["OPEN_SERVICES", "BearerTokenInterceptor"]

OPEN_SERVICES = PROBE_SERVICES


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without the right bearer token with UNAUTHENTICATED and a message saying why.

    Args:
        token: the shared secret clients send as ``authorization: Bearer <token>`` metadata.
        open_services: fully qualified services that need no token.
    """

    def __init__(self, token: str, open_services: tuple[str, ...] = OPEN_SERVICES) -> None:
        if not token:
            raise ValueError("the token must be a non-empty string")
        self._expected = bearer(token).encode()
        self._open = tuple(f"/{name}/" for name in open_services)

    def refusal(self, metadata: tuple[tuple[str, Any], ...] | None) -> str | None:
        """Why a call with this metadata is refused, or None when its token is right."""
        values = [v for k, v in metadata or () if k == AUTHORIZATION]
        if not values:
            return "missing credentials: send the metadata 'authorization: Bearer <token>'"
        value = values[0].encode() if isinstance(values[0], str) else bytes(values[0])
        # Constant time: how much of the token matched must not show in the response time.
        if len(values) > 1 or not hmac.compare_digest(value, self._expected):
            return "invalid bearer token in the 'authorization' metadata"
        return None

    def intercept_service(self, continuation: Continuation,
                          handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(self._open):
            return handler
        reason = self.refusal(handler_call_details.invocation_metadata)  # type: ignore[attr-defined]
        if reason is None:
            return handler

        def refuse(_behavior: Callable[..., Any], _request_streaming: bool,
                   response_streaming: bool) -> Callable[..., Any]:
            def unary(_request: Any, context: grpc.ServicerContext) -> Any:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

            def stream(_request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
                yield  # unreachable: abort raises; the yield makes this a generator

            return stream if response_streaming else unary
        return wrap_handler(handler, refuse)
