"""What a pipeline returns for one sample, and the applied parameters it reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from augsvc.params import to_jsonable

__all__ = ["AugmentedImage", "clean_params"]

# Fields albumentations records that are configuration, not sampled values.
_CONFIG_KEYS = frozenset({"shape", "interpolation", "mask_interpolation", "fill", "fill_mask",
                          "border_mode"})
_MAX_PARAM_ARRAY = 64  # larger arrays (noise maps) are summarised by their shape


@dataclass(slots=True)
class AugmentedImage:
    """One augmented sample.

    Attributes:
        image: the augmented image (uint8 or float32, like the input unless a transform changes it).
        mask: the augmented mask, if one was given.
        masks: the augmented list of masks, if one was given.
        bboxes: boxes (N, 4 + extra columns) in the pipeline's ``bbox_format``, if given.
        keypoints: keypoints (N, 2 + extra columns), if given.
        index: the global sample index it was augmented as.
        params: when asked for, which transforms fired with their values (JSON-able).
    """

    image: np.ndarray
    index: int
    mask: np.ndarray | None = None
    masks: list[np.ndarray] | None = None
    bboxes: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    params: list[dict[str, Any]] | None = None


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
    """A transform's applied parameters as JSON-able values, configuration left out."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in _CONFIG_KEYS:
            continue
        if isinstance(value, np.ndarray) and value.size > _MAX_PARAM_ARRAY:
            out[key] = {"array_shape": list(value.shape)}
        else:
            out[key] = to_jsonable(value)
    return out
