"""Sample photos bundled with scikit-image (offline), for demos, galleries and tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import skimage.data

__all__ = ["SAMPLE_PHOTOS", "sample_photos"]

SAMPLE_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "coffee": skimage.data.coffee,
    "chelsea": skimage.data.chelsea,
    "rocket": skimage.data.rocket,
    "camera": skimage.data.camera,
    "logo": skimage.data.logo,
}
"""RGB photos, one gray (camera) and one RGBA (logo)."""


def sample_photos(names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The sample photos as uint8 arrays, by name (all of them by default)."""
    chosen = names if names is not None else list(SAMPLE_PHOTOS)
    unknown = [n for n in chosen if n not in SAMPLE_PHOTOS]
    if unknown:
        raise KeyError(f"unknown sample photos {unknown}; known: {sorted(SAMPLE_PHOTOS)}")
    return {n: np.ascontiguousarray(SAMPLE_PHOTOS[n]()) for n in chosen}
