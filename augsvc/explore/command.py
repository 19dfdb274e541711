"""``augsvc explore``: its flags, and running the page until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys

from augsvc.errors import AugsvcError

__all__ = ["add_explore_arguments", "run_explore"]


def _dataset(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def add_explore_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``augsvc explore``."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default the loopback: only this machine)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--token", default=os.environ.get("AUGSVC_EXPLORE_TOKEN"),
                        help="require this token on the page and its API (prefer "
                        "AUGSVC_EXPLORE_TOKEN: flags show in ps)")
    parser.add_argument("--server", metavar="HOST:PORT",
                        help="augment on this augsvc server (comma-separated replicas) instead of "
                        "the library in this process")
    parser.add_argument("--server-token", default=os.environ.get("AUGSVC_TOKEN"),
                        help="the server's bearer token (default $AUGSVC_TOKEN)")
    parser.add_argument("--tls", metavar="CA_PEM", help="connect to the server with TLS, trusting "
                        "this CA certificate")
    parser.add_argument("--datasets", type=_dataset, action="append", default=[],
                        metavar="NAME=PATH", help="offer this image dataset too (in-process only; "
                        "repeatable)")
    parser.add_argument("--max-pixels", type=int, default=25_000_000,
                        help="refuse images (given or made by a pipeline) larger than this")
    parser.add_argument("--max-upload-mb", type=float, default=32.0,
                        help="refuse uploads larger than this many MiB")
    parser.add_argument("--open", action="store_true", help="open the page in a browser")


def run_explore(args: argparse.Namespace) -> int:
    """Serve the page until interrupted; prints its address first."""
    from augsvc.explore.api import Explorer
    from augsvc.explore.backends import Backend, LocalBackend, RemoteBackend
    from augsvc.explore.server import ExploreServer

    if args.max_pixels < 1 or args.max_upload_mb <= 0:
        raise AugsvcError("--max-pixels and --max-upload-mb must be above 0")
    if args.server and args.datasets:
        raise AugsvcError("--datasets is for the library in-process; a server offers its own "
                          "(augsvc serve --datasets)")
    backend: Backend = RemoteBackend(args.server, token=args.server_token, tls=args.tls) \
        if args.server else LocalBackend(max_pixels=args.max_pixels, datasets=dict(args.datasets))
    explorer = Explorer(backend, max_pixels=args.max_pixels,
                        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024))
    try:
        server = ExploreServer(explorer, args.host, args.port, token=args.token)
    except OSError as exc:
        backend.close()
        raise AugsvcError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    where = f"server {args.server}" if args.server else "the library in this process"
    print(f"augsvc explore: {server.url} (augmenting with {where}); Ctrl-C to stop", flush=True)
    if not server.loopback and not args.token:
        print("augsvc explore: warning: listening beyond this machine without --token: anyone "
              "who can reach it can use it", file=sys.stderr)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        backend.close()
    return 0
