"""The code the observing interceptor reports for a call that streams requests and ends quietly.

A client that cancels, or reaches its deadline, ends the server's request iterator just as a
client that closes its side does; gRPC marks the call cancelled only afterwards. These tests drive
the interceptor with a stand-in context whose end the test controls, so each order of events is
checked on purpose rather than left to the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from augsvc.service.observe import Call, ObservingInterceptor


class _Context:
    """The parts of a gRPC server context the interceptor reads; ``end`` terminates the call."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining
        self.active = True
        self.callbacks: list[Callable[[], None]] | None = []
        self._state = SimpleNamespace(client="open")

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    def code(self) -> None:
        return None

    def details(self) -> None:
        return None

    def time_remaining(self) -> float | None:
        return self.remaining

    def is_active(self) -> bool:
        return self.active

    def add_callback(self, callback: Callable[[], None]) -> bool:
        if self.callbacks is None:
            return False
        self.callbacks.append(callback)
        return True

    def end(self, client: str, remaining: float | None) -> None:
        self._state.client, self.remaining, self.active = client, remaining, False
        callbacks, self.callbacks = self.callbacks or [], None
        for callback in callbacks:
            callback()


class _Finished:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    def started(self, call: Call) -> None: ...

    def received(self, call: Call) -> None: ...

    def sent(self, call: Call, samples: int, skipped: int) -> None: ...

    def finished(self, call: Call) -> None:
        self.calls.append(call)


def _echo(requests: Iterator[str], context: Any) -> Iterator[str]:
    yield from requests


def _observed_echo() -> tuple[Callable[[Iterator[str], Any], Iterator[str]], _Finished]:
    finished = _Finished()
    handler = grpc.stream_stream_rpc_method_handler(_echo)
    details = SimpleNamespace(method="/augsvc.v1.Augmenter/StreamAugmentTexts")
    wrapped = ObservingInterceptor([finished]).intercept_service(lambda _: handler, details)
    assert wrapped is not None
    return wrapped.stream_stream, finished  # type: ignore[return-value]


@pytest.mark.parametrize(("client", "remaining", "code"), [
    ("closed", 1.5, grpc.StatusCode.OK),  # the client closed its side: a success
    ("cancelled", 1.5, grpc.StatusCode.CANCELLED),  # the client cancelled early
    ("cancelled", 0.01, grpc.StatusCode.DEADLINE_EXCEEDED),  # the client left at its deadline
])
def test_a_request_stream_that_ends_quietly_gets_the_code_of_how_the_call_ended(
        client: str, remaining: float, code: grpc.StatusCode) -> None:
    behavior, finished = _observed_echo()
    context = _Context(remaining=2.0)
    assert list(behavior(iter(["a", "b"]), context)) == ["a", "b"]
    assert finished.calls == []  # still undecided: the call has not ended yet
    context.end(client, remaining)
    assert [(c.code, c.sent, c.received) for c in finished.calls] == [(code, 2, 2)]


def test_a_call_that_has_already_ended_is_reported_at_once() -> None:
    behavior, finished = _observed_echo()
    context = _Context(remaining=2.0)
    context.callbacks = None  # gRPC takes no callbacks once a call has ended
    context._state.client = "cancelled"
    list(behavior(iter(["a"]), context))
    assert [c.code for c in finished.calls] == [grpc.StatusCode.CANCELLED]


def test_a_call_the_servicer_sees_cancelled_is_reported_at_once() -> None:
    behavior, finished = _observed_echo()
    context = _Context(remaining=2.0)
    context.active = False
    list(behavior(iter(["a"]), context))
    assert [c.code for c in finished.calls] == [grpc.StatusCode.CANCELLED]
