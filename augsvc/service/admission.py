"""Admission of data calls: a fixed number of request slots, taken without waiting, and a drain.

gRPC Python runs every call's behaviour on one thread pool, in arrival order, and a stream holds
its thread for its whole life. With every thread held by long streams, a health check or a new
call waits in the pool's queue until a stream ends, and a probe times out on a healthy server.
So the server's pool has ``slots + reserve`` threads, and a data call (any Augmenter RPC) takes
one of ``slots`` when its behaviour starts, without waiting: with none free it is refused at once
with UNAVAILABLE and a retry hint (``BusyError``), and the reserve threads are left for health,
reflection and refusals, which never wait behind data streams.

The slot is taken in the behaviour, not in ``intercept_service``: gRPC runs interceptors on its
polling thread when a call arrives, and a call may be cancelled before its behaviour ever runs
(``grpc/_server.py``: ``_handle_call`` then ``thread_pool.submit``), which would leak a slot
taken there. It is given back once both (a) the behaviour has returned, however it ended
(returned, raised, cancelled: gRPC closes a dropped stream generator), so its thread is free,
and (b) gRPC has finished the call (``context.add_callback``: the status is out, or the call
was cancelled). Without (b), a drain that sees no slot held could cancel a stream whose
generator had ended but whose OK status was not sent yet; without (a), a client cancelling
heavy calls could have more than ``slots`` threads computing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from augsvc.errors import BusyError
from augsvc.service.errors import abort_with
from augsvc.service.observe import Continuation, wrap_handler

__all__ = ["Admission", "AdmissionInterceptor"]


class Admission:
    """At most ``slots`` data calls at once; a call that finds none free is refused, never queued.

    Thread-safe: request threads enter and leave concurrently.

    Args:
        slots: data calls that may run at once (``--threads``).
        retry_after: seconds a client refused for want of a slot should wait before trying again.
        drain_retry_after: the same for a call refused because the server is draining; short,
            since a retry goes to another replica (round_robin) or finds the restarted server.
        on_refused: called with the reason ("busy" or "draining") of each refused call.

    Raises:
        ValueError: ``slots`` is below 1 or a retry hint is not positive.
    """

    def __init__(self, slots: int, *, retry_after: float = 1.0, drain_retry_after: float = 0.25,
                 on_refused: Callable[[str], None] | None = None) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, not {slots}")
        if retry_after <= 0 or drain_retry_after <= 0:
            raise ValueError("retry hints must be positive")
        self.slots = slots
        self.retry_after = retry_after
        self.drain_retry_after = drain_retry_after
        self.on_refused = on_refused
        self._in_use = 0
        self._draining = False
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        """Slots held by running data calls."""
        return self._in_use

    @property
    def draining(self) -> bool:
        """True once ``drain()`` was called: every new call is refused."""
        return self._draining

    def enter(self) -> None:
        """Take a slot now, or refuse.

        Raises:
            BusyError: the server is draining, or every slot is taken.
        """
        with self._changed:
            if self._draining:
                reason, error = "draining", BusyError(
                    "draining: the server is shutting down", self.drain_retry_after)
            elif self._in_use >= self.slots:
                reason, error = "busy", BusyError(
                    f"busy: all {self.slots} request slots are taken", self.retry_after)
            else:
                self._in_use += 1
                return
        if self.on_refused is not None:
            self.on_refused(reason)
        raise error

    def leave(self) -> None:
        """Give back the slot ``enter`` took."""
        with self._changed:
            self._in_use -= 1
            self._changed.notify_all()

    def drain(self) -> None:
        """Refuse every new call from now on; calls holding a slot go on."""
        with self._changed:
            self._draining = True
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no slot is held, for at most ``timeout`` seconds; True when none is."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._in_use:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True


class _Release:
    """Gives a slot back on its second call: one from the behaviour, one from gRPC's end of call."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._calls = 0
        self._lock = threading.Lock()  # the behaviour's thread and gRPC's polling thread

    def __call__(self) -> None:
        with self._lock:
            self._calls += 1
            last = self._calls == 2
        if last:
            self._admission.leave()


def _admit(admission: Admission, context: grpc.ServicerContext) -> _Release:
    """Take a slot for this call, or answer UNAVAILABLE with the retry hint (raises)."""
    try:
        admission.enter()
    except BusyError as exc:
        abort_with(context, exc)
    release = _Release(admission)
    if not context.add_callback(release):  # the call is over already (cancelled)
        release()
    return release


class AdmissionInterceptor(grpc.ServerInterceptor):
    """Runs the calls of ``services`` through ``admission``; other services pass untouched.

    Put it after the auth interceptor, so calls refused for their token take no slot.

    Args:
        admission: the slots.
        services: fully qualified names of the services whose calls need a slot.
    """

    def __init__(self, admission: Admission, services: tuple[str, ...]) -> None:
        self.admission = admission
        self._gated = tuple(f"/{name}/" for name in services)

    def intercept_service(self, continuation: Continuation,
                          handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or not method.startswith(self._gated):
            return handler
        admission = self.admission

        def gate(behavior: Callable[..., Any], _request_streaming: bool,
                 response_streaming: bool) -> Callable[..., Any]:
            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                release = _admit(admission, context)
                try:
                    return behavior(request, context)
                finally:
                    release()

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                # A generator: this body runs when gRPC asks for the first message, on the
                # thread that will serve the whole stream.
                release = _admit(admission, context)
                try:
                    yield from behavior(request, context)
                finally:  # also on GeneratorExit: gRPC drops the generator of a cancelled call
                    release()

            return stream if response_streaming else unary
        return wrap_handler(handler, gate)
