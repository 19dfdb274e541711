"""A server interceptor that times every call, counts its messages and samples, and reports its code."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from augsvc.wire.tensors import Encoded

__all__ = ["PROBE_SERVICES", "Call", "CallObserver", "Continuation", "ObservingInterceptor", "gone_code",
           "wrap_handler"]

Continuation = Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None]
# What load balancers, Kubernetes probes and grpcurl call: open without a token, logged at DEBUG.
PROBE_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                  "grpc.reflection.v1.ServerReflection")


@dataclass
class Call:
    """One RPC as the server saw it; ``code`` and ``seconds`` are set when it ends."""

    method: str  # "/package.Service/Method"
    kind: str  # unary_unary, unary_stream, stream_unary or stream_stream
    peer: str = ""
    started: float = field(default_factory=time.perf_counter)
    received: int = 0  # request messages
    sent: int = 0  # response messages
    samples: int = 0  # items in the responses' ``samples`` fields
    skipped: int = 0  # planned samples the responses report as unreadable (StreamEpoch)
    code: grpc.StatusCode = grpc.StatusCode.OK
    details: str = ""
    seconds: float = 0.0
    pid: int = field(default_factory=os.getpid)
    timeout: float | None = None  # seconds the client gave the call, as the server saw it start

    @property
    def service(self) -> str:
        return self.method.rsplit("/", 2)[-2] if self.method.count("/") >= 2 else ""

    @property
    def name(self) -> str:
        return self.method.rsplit("/", 1)[-1]


class CallObserver(Protocol):
    """What the interceptor reports to: metrics, logs."""

    def started(self, call: Call) -> None: ...

    def received(self, call: Call) -> None: ...

    def sent(self, call: Call, samples: int, skipped: int) -> None: ...

    def finished(self, call: Call) -> None: ...


# Repeated fields with one entry per sample, by response type: Augment*Response, EpochBatch.
_SAMPLE_FIELDS = ("samples", "indices")


def _samples(message: Any) -> tuple[int, int]:
    """How many samples a response carries, and how many it reports skipped (0 and 0 for
    responses that carry none)."""
    if isinstance(message, Encoded):
        message = message.message
    fields = getattr(getattr(message, "DESCRIPTOR", None), "fields_by_name", {})
    name = next((n for n in _SAMPLE_FIELDS if n in fields), None)
    samples = len(getattr(message, name)) if name is not None else 0
    return samples, len(message.skipped) if "skipped" in fields else 0


def wrap_handler(handler: grpc.RpcMethodHandler,
                 wrap: Callable[[Callable[..., Any], bool, bool], Callable[..., Any]]
                 ) -> grpc.RpcMethodHandler:
    """``handler`` with its behavior replaced by ``wrap(behavior, request_streaming, response_streaming)``."""
    if handler.unary_unary:
        make, behavior = grpc.unary_unary_rpc_method_handler, handler.unary_unary
    elif handler.unary_stream:
        make, behavior = grpc.unary_stream_rpc_method_handler, handler.unary_stream
    elif handler.stream_unary:
        make, behavior = grpc.stream_unary_rpc_method_handler, handler.stream_unary
    else:
        make, behavior = grpc.stream_stream_rpc_method_handler, handler.stream_stream
    return make(wrap(behavior, handler.request_streaming, handler.response_streaming),  # type: ignore[operator]
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


# How much later than the client's the server's deadline can be (see _end_code): gRPC core's
# Timeout::FromMillis rounds the grpc-timeout it sends up to whole ms below 1 s, 10 ms units
# below 10 s, 100 ms units below 100 s, then seconds: at most about 1 %, plus a millisecond.
_DEADLINE_SLACK = 0.02
_DEADLINE_SLACK_SECONDS = 0.002


def _text(details: str | bytes | None) -> str:
    """A status message as text: gRPC keeps the one ``abort`` sets as UTF-8 bytes."""
    if isinstance(details, bytes):
        return details.decode("utf-8", errors="replace")
    return details or ""


def gone_code(remaining: float | None, timeout: float | None) -> grpc.StatusCode:
    """The status of a call whose client has left: DEADLINE_EXCEEDED when it left at its deadline
    (``remaining`` of the ``timeout`` the call started with, within the rounding slack), else
    CANCELLED.

    A client whose deadline passes cancels the call, and that cancel can reach the server
    before the server's own deadline, which gRPC sets from a rounded-up timeout.
    """
    slack = _DEADLINE_SLACK * timeout + _DEADLINE_SLACK_SECONDS if timeout is not None else 0.0
    return grpc.StatusCode.DEADLINE_EXCEEDED if remaining is not None and remaining <= slack \
        else grpc.StatusCode.CANCELLED


def _end_code(call: Call, context: grpc.ServicerContext, failed: bool) -> None:
    """The status the call ended with: the one the servicer set, else what the client did to it."""
    code = context.code()  # type: ignore[attr-defined]
    remaining = context.time_remaining()
    if isinstance(code, grpc.StatusCode):
        call.code = code
        call.details = _text(context.details())  # type: ignore[attr-defined]
    elif remaining is not None and remaining <= 0:  # whatever happened, the client saw the deadline
        call.code = grpc.StatusCode.DEADLINE_EXCEEDED
    elif not context.is_active():
        call.code = gone_code(remaining, call.timeout)
    elif failed:
        call.code = grpc.StatusCode.UNKNOWN


def _client_cancelled(context: grpc.ServicerContext) -> bool:
    """Whether the client cancelled the call (itself or at its deadline), once the call has ended.

    gRPC Python has no public accessor for it: its server context keeps it as ``_state.client``.
    """
    return getattr(getattr(context, "_state", None), "client", None) == "cancelled"


class ObservingInterceptor(grpc.ServerInterceptor):
    """Reports every call to ``observers``: when it starts, each message, and how it ended.

    Put it first in the server's interceptors so that calls refused by later ones (auth) are
    counted too. A streamed response is observed as gRPC pulls each message from the servicer's
    generator, so ``sent`` counts what the server has produced, not what the client has read.
    """

    def __init__(self, observers: Sequence[CallObserver]) -> None:
        self.observers = list(observers)

    def intercept_service(self, continuation: Continuation,
                          handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method  # type: ignore[attr-defined]

        def wrap(behavior: Callable[..., Any], request_streaming: bool,
                 response_streaming: bool) -> Callable[..., Any]:
            kind = f"{'stream' if request_streaming else 'unary'}_" \
                   f"{'stream' if response_streaming else 'unary'}"
            run = self._stream if response_streaming else self._unary

            def observed(request: Any, context: grpc.ServicerContext) -> Any:
                call = Call(method, kind, context.peer(), timeout=context.time_remaining())
                return run(behavior, request, context, call, request_streaming)
            return observed
        return wrap_handler(handler, wrap)

    def _start(self, call: Call, request: Any, request_streaming: bool) -> Any:
        for observer in self.observers:
            observer.started(call)
        if request_streaming:
            return self._count_requests(call, request)
        self._received(call)
        return request

    def _count_requests(self, call: Call, requests: Iterator[Any]) -> Iterator[Any]:
        for request in requests:
            self._received(call)
            yield request

    def _received(self, call: Call) -> None:
        call.received += 1
        for observer in self.observers:
            observer.received(call)

    def _sent(self, call: Call, message: Any) -> None:
        samples, skipped = _samples(message)
        call.sent += 1
        call.samples += samples
        call.skipped += skipped
        for observer in self.observers:
            observer.sent(call, samples, skipped)

    def _finish(self, call: Call, context: grpc.ServicerContext, failed: bool,
                request_streaming: bool) -> None:
        _end_code(call, context, failed)
        call.seconds = time.perf_counter() - call.started
        if request_streaming and not failed and call.code == grpc.StatusCode.OK and context.is_active():
            # A client that cancels (or reaches its deadline) ends the request stream as if it
            # had closed it; gRPC marks the call cancelled only afterwards. Settle the code when
            # the call has ended.
            if context.add_callback(lambda: self._settle(call, context)):
                return
            self._settle(call, context)
            return
        self._report(call)

    def _settle(self, call: Call, context: grpc.ServicerContext) -> None:
        if _client_cancelled(context):
            call.code = gone_code(context.time_remaining(), call.timeout)
        self._report(call)

    def _report(self, call: Call) -> None:
        for observer in self.observers:
            observer.finished(call)

    def _unary(self, behavior: Callable[..., Any], request: Any, context: grpc.ServicerContext,
               call: Call, request_streaming: bool) -> Any:
        failed = True
        try:
            response = behavior(self._start(call, request, request_streaming), context)
            self._sent(call, response)
            failed = False
            return response
        finally:
            self._finish(call, context, failed, request_streaming)

    def _stream(self, behavior: Callable[..., Any], request: Any, context: grpc.ServicerContext,
                call: Call, request_streaming: bool) -> Iterator[Any]:
        failed = True
        try:
            for response in behavior(self._start(call, request, request_streaming), context):
                self._sent(call, response)
                yield response
            failed = False
        finally:  # also on GeneratorExit: gRPC drops the generator of a cancelled call
            self._finish(call, context, failed, request_streaming)
