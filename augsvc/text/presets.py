"""Named text pipelines (usable wherever a text spec is expected, by name): EDA and its parts.

``eda`` follows Wei & Zou (2019): each augmented sentence gets one of synonym replacement,
random insertion, random swap or random deletion, each changing a share ``alpha = 0.1`` of words.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["TEXT_PRESETS", "text_preset"]

_ALPHA = 0.1

TEXT_PRESETS: dict[str, dict[str, Any]] = {
    "eda": {"transforms": [{"one_of": [
        {"name": "synonym", "aug_p": _ALPHA},
        {"name": "random_insertion", "aug_p": _ALPHA},
        {"name": "random_swap", "aug_p": _ALPHA},
        {"name": "random_deletion", "aug_p": _ALPHA},
    ]}]},
    "synonym": {"transforms": [{"name": "synonym", "aug_p": _ALPHA}]},
    "embedding": {"transforms": [{"name": "embedding", "aug_p": _ALPHA}]},
    # The "PPDB + word2vec" style chain without a masked LM (which needs a model on disk).
    "synonym_embedding": {"transforms": [{"name": "synonym", "aug_p": _ALPHA / 2},
                                         {"name": "embedding", "aug_p": _ALPHA / 2}]},
}


def text_preset(name: str) -> dict[str, Any] | None:
    """A copy of the text preset called ``name``, or None."""
    preset = TEXT_PRESETS.get(name)
    return copy.deepcopy(preset) if preset is not None else None
