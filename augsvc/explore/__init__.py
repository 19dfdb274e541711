"""``augsvc explore``: a local web page to try pipelines on an image or sentences.

The page (``static/``: plain HTML, script and style, nothing fetched from elsewhere) talks to a
JSON API (``api.py``) over the standard library's HTTP server (``server.py``); augmentations run
in the library in-process or on an augsvc server (``backends.py``). ``draw.py`` draws targets,
``highlight.py`` finds each edited word of a text in its variant. Names load on first use, so
``augsvc --help`` does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from augsvc.explore.api import Explorer
    from augsvc.explore.backends import LocalBackend, RemoteBackend
    from augsvc.explore.server import ExploreServer

__all__ = ["ExploreServer", "Explorer", "LocalBackend", "RemoteBackend"]

_HOMES = {"Explorer": "api", "LocalBackend": "backends", "RemoteBackend": "backends",
          "ExploreServer": "server"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
