"""Named pipelines shipped with augsvc (usable wherever a spec is expected, by name)."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["IMAGE_PRESETS", "image_preset"]

IMAGE_PRESETS: dict[str, dict[str, Any]] = {
    # Photos of any size in, 224x224 out: the classic flip/crop/colour/blur/geometry recipe.
    "default": {
        "transforms": [
            {"name": "random_resized_crop", "height": 224, "width": 224, "scale": [0.5, 1.0]},
            {"name": "horizontal_flip", "p": 0.5},
            {"name": "shift_scale_rotate", "p": 0.5, "rotate_limit": 20, "border_mode": "reflect"},
            {"name": "brightness_contrast", "p": 0.5},
            {"name": "hue_saturation_value", "p": 0.5},
            {"name": "gamma", "p": 0.3},
            {"one_of": [{"name": "median_blur", "blur_limit": [3, 5]},
                        {"name": "gaussian_blur", "blur_limit": [3, 5]}], "p": 0.2},
        ]
    },
    # The evaluation counterpart of "default": photos of any size to 224x224, nothing random, so
    # a holdout or validation set of mixed sizes stacks into batches.
    "eval": {
        "transforms": [
            {"name": "resize", "height": 256, "width": 256},
            {"name": "center_crop", "height": 224, "width": 224},
        ]
    },
    # The seven transforms of the product brief, for 256x256 inputs (used by the benchmark).
    "seed7": {
        "transforms": [
            {"name": "random_crop", "height": 224, "width": 224},
            {"name": "horizontal_flip", "p": 0.5},
            {"name": "brightness_contrast", "p": 0.5},
            {"name": "hue_saturation_value", "p": 0.5},
            {"name": "median_blur", "p": 0.5, "blur_limit": [3, 5]},
            {"name": "gamma", "p": 0.5},
            {"name": "shift_scale_rotate", "p": 0.5},
        ]
    },
    # Small grayscale digits (the demo's 32x32 upsampled sklearn digits): mild geometry, no flips
    # (a mirrored 2 is not a 2), a little contrast and an occasional occluding patch.
    "digits": {
        "transforms": [
            {"name": "shift_scale_rotate", "p": 0.8, "shift_limit": 0.08, "scale_limit": 0.1,
             "rotate_limit": 12, "border_mode": "constant"},
            {"name": "brightness_contrast", "p": 0.3, "brightness_limit": 0.15, "contrast_limit": 0.15},
            {"name": "coarse_dropout", "p": 0.2, "num_holes_range": [1, 1],
             "hole_height_range": [0.15, 0.25], "hole_width_range": [0.15, 0.25]},
        ]
    },
}


def image_preset(name: str) -> dict[str, Any] | None:
    """A copy of the preset called ``name``, or None."""
    preset = IMAGE_PRESETS.get(name)
    return copy.deepcopy(preset) if preset is not None else None
