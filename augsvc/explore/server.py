"""The page and its JSON API over HTTP, on the standard library's threading server.

Routes: ``GET /`` the page; ``GET /static/NAME`` its script and style (files of this package:
nothing is loaded from elsewhere, and the Content-Security-Policy says so to the browser);
``GET /api/config``, ``/api/presets``, ``/api/samples``, ``/api/datasets``; ``POST /api/upload``
(a file's bytes), ``/api/image`` and ``/api/text`` (JSON). Every request is answered, whatever
it holds: errors come back as JSON with the library's message (``fields.error_reply``), and
the server goes on.

With a token, the page and the API need it (``?token=`` or the ``X-Augsvc-Token`` header). On a
loopback address the Host header must name the loopback too, so a web page elsewhere cannot
reach the API through a DNS name it rebinds to 127.0.0.1.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import sys
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from augsvc.errors import InputError, LimitError
from augsvc.explore.api import Explorer
from augsvc.explore.fields import FieldError, error_reply

__all__ = ["MAX_JSON_BYTES", "TOKEN_HEADER", "ExploreServer"]

TOKEN_HEADER = "X-Augsvc-Token"
MAX_JSON_BYTES = 4 * 1024 * 1024
"""A JSON request (a spec and sentences), at most."""
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
_DRAIN = 4
"""An oversized body up to this many times the limit is read and dropped, so the browser gets
the 413 reply; a larger one is answered at once and the connection closed."""

Reply = tuple[int, bytes, str]


def _json(status: int, body: Any) -> Reply:
    return status, json.dumps(body, ensure_ascii=False, default=str).encode(), "application/json"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ExploreServer(ThreadingHTTPServer):
    """The page's HTTP server; ``serve_forever`` serves it, each request on its own thread.

    Args:
        explorer: the API it answers with.
        host, port: where to listen (port 0 picks a free one; see :attr:`url`).
        token: when given, required on the page and on every API call.
        work_slots: requests that augment at once; more wait their turn.
    """

    daemon_threads = True

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 8765, *,
                 token: str | None = None, work_slots: int = 2) -> None:
        self.explorer = explorer
        self.token = token or None
        self.loopback = _is_loopback(host)
        self.slots = threading.BoundedSemaphore(work_slots)
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        """The page's address, with its token."""
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host}]" if ":" in host else host
        query = f"?token={quote(self.token)}" if self.token else ""
        return f"http://{shown}:{port}/{query}"


class _Handler(BaseHTTPRequestHandler):
    server: ExploreServer
    server_version = "augsvc-explore"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are not logged; failures are (``_answer``)."""

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _answer(self, route: Callable[[], Reply]) -> None:
        """Run ``route`` and send what it returns; any exception becomes a JSON error."""
        try:
            status, body, kind = route()
        except Exception as exc:
            status, payload = error_reply(exc)
            if status >= 500:
                print(f"augsvc explore: {self.command} {self.path[:200]}:", file=sys.stderr)
                traceback.print_exc(file=sys.stderr)
            status, body, kind = _json(status, payload)
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", _CSP)
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the page went away first
            self.close_connection = True

    def _refused(self) -> Reply | None:
        """A reply refusing the request for its Host or token, or None to go on."""
        if self.server.loopback:
            host = urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
            if host not in _LOOPBACK_NAMES:
                return _json(403, {"error": {"field": "host", "message": (
                    f"this page answers on the loopback only, not for host {host[:100]!r}")}})
        if self.server.token is None:
            return None
        given = self.headers.get(TOKEN_HEADER) or \
            (parse_qs(urlsplit(self.path).query).get("token") or [""])[0]
        if hmac.compare_digest(given.encode(), self.server.token.encode()):
            return None
        return _json(401, {"error": {"field": "token", "message": (
            "a token is needed: open the address augsvc explore printed (it ends in ?token=...)")}})

    def _get(self) -> Reply:
        path = urlsplit(self.path).path
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        refused = self._refused()
        if refused is not None:
            return refused
        explorer = self.server.explorer
        pages: dict[str, Callable[[], Any]] = {
            "/api/config": explorer.config, "/api/presets": explorer.presets,
            "/api/samples": explorer.samples, "/api/datasets": explorer.datasets}
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path in pages:
            return _json(200, pages[path]())
        return _json(404, {"error": {"field": "path", "message": f"no page {path[:200]!r}"}})

    def _static(self, name: str) -> Reply:
        file = resources.files("augsvc.explore").joinpath("static").joinpath(name) \
            if re.fullmatch(r"[\w-]+\.\w+", name) else None
        if file is None or not file.is_file():
            return _json(404, {"error": {"field": "path", "message": f"no file {name[:200]!r}"}})
        suffix = "." + name.rsplit(".", 1)[-1]
        return 200, file.read_bytes(), _TYPES.get(suffix, "application/octet-stream")

    def _body(self, limit: int, field: str) -> bytes:
        """The request's body, refused (LimitError) past ``limit`` bytes."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise InputError("the request has no Content-Length") from None
        if length > limit:
            left = length if length <= _DRAIN * limit else 0
            while left > 0 and (chunk := self.rfile.read(min(1 << 20, left))):
                left -= len(chunk)
            self.close_connection = True
            what = "upload: the file" if field == "image" else "the request"
            raise FieldError(field, LimitError(f"{what} is {length} bytes, over the limit of "
                                               f"{limit} bytes"))
        return self.rfile.read(length) if length > 0 else b""

    def _post(self) -> Reply:
        refused = self._refused()
        if refused is not None:
            return refused
        path = urlsplit(self.path).path
        kind = self.headers.get("Content-Type", "").split(";")[0].strip()
        explorer = self.server.explorer
        if path == "/api/upload":
            # not a type a form can send: another site's page cannot post here without asking
            if kind != "application/octet-stream":
                raise InputError("an upload is sent as application/octet-stream")
            data = self._body(explorer.max_upload_bytes, "image")
            with self.server.slots:
                return _json(200, explorer.upload(data))
        routes = {"/api/image": explorer.image, "/api/text": explorer.text}
        if path not in routes:
            return _json(404, {"error": {"field": "path", "message": f"no API {path[:200]!r}"}})
        if kind != "application/json":
            raise InputError("a request is sent as application/json")
        try:
            request = json.loads(self._body(MAX_JSON_BYTES, "run") or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"the request is not valid JSON: {exc}") from None
        if not isinstance(request, dict):
            raise InputError("the request must be a JSON object")
        with self.server.slots:
            return _json(200, routes[path](request))
