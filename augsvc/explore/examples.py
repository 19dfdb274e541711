"""What the page starts with: a pipeline of each kind, sentences, and example targets on the
built-in sample photos (so boxes, masks and keypoints can be seen moving without a dataset)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["IMAGE_SPEC", "SAMPLE_TARGETS", "TEXTS", "TEXT_SPEC"]

IMAGE_SPEC = """\
transforms:
  - name: random_resized_crop
    height: 256
    width: 256
    scale: [0.5, 1.0]
  - name: horizontal_flip
    p: 0.5
  - name: shift_scale_rotate
    p: 0.7
    rotate_limit: 25
    border_mode: constant
  - name: brightness_contrast
    p: 0.5
  - name: hue_saturation_value
    p: 0.5
"""
"""The image pipeline the page opens with (YAML, as a person would write it)."""

TEXT_SPEC = """\
transforms:
  - name: synonym
    aug_p: 0.3
    context_threshold: null
  - name: random_swap
    p: 0.3
"""
"""The text pipeline the page opens with: WordNet synonyms without the context check (fast,
and offline with WordNet alone), then an occasional swap."""

TEXTS = ("The quick brown fox jumps over the lazy dog.\n"
         "She bought fresh vegetables at the market yesterday morning.")
"""The sentences the page opens with."""


def _ellipse(cx: float, cy: float, rx: float, ry: float, points: int = 10) -> list[list[int]]:
    return [[round(cx + rx * math.cos(2 * math.pi * k / points)),
             round(cy + ry * math.sin(2 * math.pi * k / points))] for k in range(points)]


SAMPLE_TARGETS: dict[str, dict[str, Any]] = {
    "astronaut": {
        # pascal_voc boxes with a label column: the face (0) and the shuttle model (1)
        "bboxes": [[160, 20, 300, 180, 0], [355, 0, 462, 288, 1]],
        # eyes and mouth, x y
        "keypoints": [[206, 106], [249, 106], [226, 146]],
        # filled polygons, instance k drawn as k + 1: the mission patch and the helmet
        "mask": [_ellipse(172, 385, 38, 38), _ellipse(392, 445, 112, 96)],
    },
}
"""Example targets by sample photo name, as the page's targets field takes them."""
