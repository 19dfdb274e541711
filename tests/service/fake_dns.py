"""A tiny DNS server for tests: A records (TTL 0) for one name, changed while it runs.

It stands in for a Kubernetes headless Service, whose name resolves to one A record per ready
pod. UDP only, on 127.0.0.1; every other name is NXDOMAIN, other types of the name are empty.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Sequence

__all__ = ["FakeDns"]

_A, _IN = 1, 1
_NXDOMAIN = 3


class FakeDns:
    """Answers A queries for ``name`` with ``addresses`` (IPv4 strings; assign to change)."""

    def __init__(self, name: str, addresses: Sequence[str] = ()) -> None:
        self.name = name.rstrip(".").lower()
        self.addresses = list(addresses)
        self.queries = 0  # A queries for the name answered so far
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)  # a blocked recvfrom does not notice close(): poll
        self.port: int = self._sock.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self._sock.close()

    def __enter__(self) -> FakeDns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                query, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            reply = self.answer(query)
            if reply is not None:
                with contextlib.suppress(OSError):  # the asker is gone: it will ask again
                    self._sock.sendto(reply, peer)

    def answer(self, query: bytes) -> bytes | None:
        """The reply to one query message, or None for one that cannot be parsed."""
        if len(query) < 12:
            return None
        ident, flags, qdcount = struct.unpack("!HHH", query[:6])
        if flags & 0x8000 or qdcount != 1:  # a response, or not exactly one question
            return None
        labels, pos = [], 12
        while pos < len(query) and (length := query[pos]):
            labels.append(query[pos + 1:pos + 1 + length].decode("ascii", "replace"))
            pos += 1 + length
        pos += 1
        if pos + 4 > len(query):
            return None
        qtype, qclass = struct.unpack("!HH", query[pos:pos + 4])
        question = query[12:pos + 4]
        known = ".".join(labels).lower() == self.name
        records = list(self.addresses) if known and qtype == _A and qclass == _IN else []
        if known and qtype == _A:
            self.queries += 1
        # QR, the query's opcode and RD, RA; NXDOMAIN for other names
        out_flags = 0x8080 | (flags & 0x7900) | (0 if known else _NXDOMAIN)
        header = struct.pack("!HHHHHH", ident, out_flags, 1, len(records), 0, 0)
        answers = b"".join(struct.pack("!HHHIH", 0xC00C, _A, _IN, 0, 4) + socket.inet_aton(ip)
                           for ip in records)  # 0xC00C: the name of the question, TTL 0
        return header + question + answers
