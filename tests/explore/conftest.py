"""Fixtures of the explore tests: the page's server over the library and over a real gRPC
server, each on a free loopback port, and HTTP helpers."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from augsvc.explore.api import Explorer
from augsvc.explore.backends import Backend, LocalBackend, RemoteBackend
from augsvc.explore.server import ExploreServer
from augsvc.service.server import build_server

MAX_PIXELS = 2_000_000
MAX_UPLOAD = 1_000_000


@dataclass
class Page:
    """A running page server: its address and a way to call it."""

    server: ExploreServer
    token: str | None = None

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def call(self, method: str, path: str, body: Any = None, *, kind: str = "application/json",
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(status, decoded JSON) of one request; a body that is not bytes is sent as JSON."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", kind)
        if self.token:
            request.add_header("X-Augsvc-Token", self.token)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


def start_page(backend: Backend, token: str | None = None) -> Page:
    server = ExploreServer(Explorer(backend, max_pixels=MAX_PIXELS, max_upload_bytes=MAX_UPLOAD),
                           "127.0.0.1", 0, token=token)
    threading.Thread(target=server.serve_forever, name="explore-test", daemon=True).start()
    return Page(server, token)


def stop_page(page: Page) -> None:
    page.server.shutdown()
    page.server.server_close()
    page.server.explorer.backend.close()


@pytest.fixture(scope="module")
def grpc_address() -> Iterator[str]:
    """A real augsvc server in this process."""
    server, port = build_server("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture(scope="module")
def local_page() -> Iterator[Page]:
    """The page over the library in this process."""
    page = start_page(LocalBackend(max_pixels=MAX_PIXELS))
    yield page
    stop_page(page)


@pytest.fixture(scope="module")
def remote_page(grpc_address: str) -> Iterator[Page]:
    """The page over the gRPC server of ``grpc_address``."""
    page = start_page(RemoteBackend(grpc_address))
    yield page
    stop_page(page)


def raw(page: Page, path: str, headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET, whatever its type."""
    request = urllib.request.Request(page.base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
