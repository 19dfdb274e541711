"""Text augmentation: word/character operations over exact spans of the original text.

The names below are loaded on first use (PEP 562), so ``augsvc.text.presets`` imports without
the transforms and their models (the client reads the preset names).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from augsvc.text.pipeline import AugmentedText, TextPipeline
    from augsvc.text.registry import TEXT_TRANSFORMS, list_text_transforms

__all__ = ["TEXT_TRANSFORMS", "AugmentedText", "TextPipeline", "list_text_transforms"]

_HOMES = {"AugmentedText": "pipeline", "TextPipeline": "pipeline", "TEXT_TRANSFORMS": "registry",
          "list_text_transforms": "registry"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
