"""What an image pipeline accepts: images, masks, boxes and keypoints, checked with clear errors."""

from __future__ import annotations

from typing import Any

import numpy as np

from augsvc.errors import InputError

__all__ = ["check_image", "check_mask", "check_points"]


def check_image(image: Any, what: str = "image") -> np.ndarray:
    """``image`` if a pipeline can take it: a non-empty uint8 or float32 HxW(xC) array."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"{what} must be a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.float32):
        raise InputError(f"{what} dtype must be uint8 or float32, got {image.dtype} "
                         f"(convert it, e.g. {what}.astype(np.float32))")
    if image.ndim not in (2, 3):
        raise InputError(f"{what} must be HxW or HxWxC, got shape {image.shape}")
    if image.size == 0:
        raise InputError(f"{what} is empty (shape {image.shape})")
    return image


def check_mask(mask: Any, image: np.ndarray) -> np.ndarray:
    """``mask`` if it is an HxW(xK) array of the image's size."""
    if not isinstance(mask, np.ndarray) or mask.ndim not in (2, 3):
        got = mask.shape if isinstance(mask, np.ndarray) else type(mask).__name__
        raise InputError(f"mask must be a HxW or HxWxK numpy array, got {got}")
    if mask.shape[:2] != image.shape[:2]:
        raise InputError(f"mask size {mask.shape[:2]} differs from image size {image.shape[:2]}")
    return mask


def check_points(values: Any, what: str, min_cols: int) -> np.ndarray:
    """Boxes or keypoints as an (N, >= min_cols) float64 array of finite numbers."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be numbers: {exc}") from None
    if arr.size == 0:
        return np.zeros((0, min_cols), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < min_cols:
        raise InputError(f"{what} must have shape (N, >= {min_cols}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{what} must be finite numbers")
    return arr
