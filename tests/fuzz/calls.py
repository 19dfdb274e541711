"""A fuzz case (an RPC, its request, the statuses it may get), how it is sent, how its answer is judged."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import grpc
from google.protobuf import text_format
from google.protobuf.message import Message

__all__ = ["ACCEPTABLE", "RPCS", "Case", "Outcome", "Request", "call", "describe", "judge"]

_SERVICE = "/augsvc.v1.Augmenter/"
C = grpc.StatusCode

RPCS: dict[str, str] = {
    "ListTransforms": "unary", "AugmentImages": "unary", "StreamAugmentImages": "stream",
    "AugmentTexts": "unary", "StreamAugmentTexts": "stream", "ListDatasets": "unary",
    "StreamEpoch": "server_stream",
}
"""Every Augmenter method and its shape: unary, streams both ways, or a server stream."""

ACCEPTABLE = frozenset({C.OK, C.INVALID_ARGUMENT, C.RESOURCE_EXHAUSTED, C.FAILED_PRECONDITION,
                        C.UNAVAILABLE, C.NOT_FOUND})
"""What a hostile request may get: served, refused with a reason, or 'busy, retry'. Never
INTERNAL or UNKNOWN (a bug), and DEADLINE_EXCEEDED only for a case that says it may be slow."""

_ACTIONABLE = {
    C.RESOURCE_EXHAUSTED: re.compile(r"limit|over|max|larger|too (many|large|long|big|deep)", re.I),
    C.UNAVAILABLE: re.compile(r"retry|busy|try again", re.I),
    C.FAILED_PRECONDITION: re.compile(  # names the resource that is missing or unreadable
        r"install|not found|missing|needs|download|set |cannot (read|open|load|find)|not available", re.I),
}
_MAX_DETAILS = 8192  # gRPC's default soft limit on trailers: longer messages may not arrive at all


Request: TypeAlias = Message | tuple[Message, ...] | bytes
"""One request, the requests of a stream, or raw wire bytes."""


@dataclass(frozen=True)
class Case:
    """One hostile call.

    Attributes:
        name: what it is; ``id`` (``rpc.name``) names it in reports and pytest ids.
        rpc: the Augmenter method.
        request: a request message; for streaming-request methods, a tuple of them; or raw
            bytes, sent as the wire form of the request (for bytes no message would produce);
            or a function that builds one of these (large payloads are built when sent).
        allowed: the statuses that are right for it (INTERNAL and UNKNOWN never are).
        deadline: seconds the call may take.
        slow: DEADLINE_EXCEEDED is acceptable too (the work is legal, only long).
        max_replies: server streams are cancelled after this many replies (counted as OK).
        note: why the expected statuses are what they are, for the report of a failure.
    """

    name: str
    rpc: str
    request: Request | Callable[[], Request]
    allowed: frozenset[grpc.StatusCode] = ACCEPTABLE
    deadline: float = 10.0
    slow: bool = False
    max_replies: int = 3
    note: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        """``rpc.name``: unique in the corpus, the pytest id."""
        return f"{self.rpc}.{self.name}"

    def build(self) -> Request:
        """The request itself (built now if it is built lazily)."""
        return self.request() if callable(self.request) else self.request


@dataclass(frozen=True)
class Outcome:
    """What the server answered: the status, its message, the seconds it took, replies received."""

    code: grpc.StatusCode
    details: str
    seconds: float
    replies: int


def _identity(data: bytes) -> bytes:
    return data


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _requests(request: Request) -> Iterator[Any]:
    if isinstance(request, tuple):
        yield from request
    else:
        yield request


def call(channel: grpc.Channel, case: Case) -> Outcome:
    """Send ``case`` with its deadline and wait for the status (replies are read and dropped)."""
    kind = RPCS[case.rpc]
    request = case.build()
    serializer = _identity if isinstance(request, bytes) else _serialize
    method = _SERVICE + case.rpc
    start = time.monotonic()
    replies = 0
    try:
        if kind == "unary":
            first = next(_requests(request))
            channel.unary_unary(method, request_serializer=serializer, response_deserializer=_identity)(
                first, timeout=case.deadline)
            replies = 1
        else:
            stream: Any
            if kind == "stream":
                stream = channel.stream_stream(method, request_serializer=serializer,
                                               response_deserializer=_identity)(
                    _requests(request), timeout=case.deadline)
            else:
                stream = channel.unary_stream(method, request_serializer=serializer,
                                              response_deserializer=_identity)(
                    next(_requests(request)), timeout=case.deadline)
            for _ in stream:
                replies += 1
                if kind == "server_stream" and replies >= case.max_replies:
                    stream.cancel()  # enough to know it works; the rest is the same work again
                    break
    except grpc.RpcError as exc:
        if exc.code() != C.CANCELLED or replies < case.max_replies:
            return Outcome(exc.code(), exc.details() or "", time.monotonic() - start, replies)
    return Outcome(C.OK, "", time.monotonic() - start, replies)


def judge(case: Case, outcome: Outcome) -> list[str]:
    """What is wrong with ``outcome`` as the answer to ``case`` (empty: nothing)."""
    got = f"{outcome.code.name}: {outcome.details[:400]!r} after {outcome.seconds:.2f} s"
    allowed = case.allowed | ({C.DEADLINE_EXCEEDED} if case.slow else set())
    if outcome.code in (C.INTERNAL, C.UNKNOWN) or outcome.code not in allowed:
        return [f"expected {'/'.join(sorted(c.name for c in allowed))}, got {got}"]
    if outcome.code in (C.OK, C.DEADLINE_EXCEEDED):
        return []
    if not outcome.details.strip():
        return [f"{outcome.code.name} with an empty message"]
    if len(outcome.details) > _MAX_DETAILS:
        return [f"{outcome.code.name} with a {len(outcome.details)}-character message (over "
                f"{_MAX_DETAILS}): {outcome.details[:200]!r}..."]
    pattern = _ACTIONABLE.get(outcome.code)
    if pattern is not None and not pattern.search(outcome.details):
        return [f"{outcome.code.name} message says nothing actionable (/{pattern.pattern}/): {got}"]
    return []


def _short(value: Any, limit: int) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _abridged(message: Message, keep: int) -> Message:
    """A copy of ``message`` with bytes fields over 64 bytes and strings over ``keep`` characters cut."""
    copy = type(message)()
    copy.CopyFrom(message)
    pending = [copy]
    while pending:
        node = pending.pop()
        for field_, value in node.ListFields():
            if field_.type == field_.TYPE_MESSAGE:
                pending.extend(value if field_.is_repeated else [value])
            elif isinstance(value, bytes) and len(value) > 64:
                setattr(node, field_.name, value[:32])  # the shape and dtype beside it tell the rest
            elif isinstance(value, str) and len(value) > keep:
                setattr(node, field_.name, value[:keep] + f"... ({len(value)} characters)")
    return copy


def describe(case: Case, limit: int = 600) -> str:
    """The request of ``case`` as protobuf text: ``limit`` characters per message, bytes fields cut
    to 32 bytes, at most 3 messages of a stream."""
    request = case.build()
    if isinstance(request, bytes):
        return f"{case.rpc} raw bytes {_short(request, limit)}"
    messages: Iterable[Message] = request if isinstance(request, tuple) else (request,)
    parts = []
    for message in messages:
        text = text_format.MessageToString(_abridged(message, limit), as_one_line=True, as_utf8=True)
        parts.append(f"{type(message).__name__}({text if len(text) <= limit else text[:limit] + '...'})")
    more = f" (+{len(parts) - 3} more)" if len(parts) > 3 else ""
    return f"{case.rpc} " + "; ".join(parts[:3]) + more
