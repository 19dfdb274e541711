"""What a pipeline raises when albumentations fails on a sample: an error that names the transform."""

from __future__ import annotations

import traceback
from collections.abc import Sequence

import albumentations as A
import numpy as np
from albumentations.augmentations.crops.transforms import CropSizeError

from augsvc.errors import InputError, TransformError

__all__ = ["explain_failure"]


def explain_failure(exc: Exception, leaves: Sequence[tuple[str, A.BasicTransform]],
                    image: np.ndarray, index: int) -> Exception:
    """The error to raise for ``exc``, raised while augmenting sample ``index``.

    OpenCV's out-of-memory becomes a ``MemoryError``; a crop larger than the image, or a bad
    value, an ``InputError``; anything else a ``TransformError``. Each names the transform
    (augsvc's name, from ``leaves``) whose method raised.
    """
    if "Insufficient memory" in str(exc):  # OpenCV's MemoryError
        return MemoryError(f"augmenting sample {index}: {str(exc).strip()[-200:]}")
    ids = {id(t): name for name, t in leaves}
    name = "pipeline"
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        if id(owner) in ids:
            name = ids[id(owner)]
    where = f"{name} on sample {index} (image shape {image.shape}, dtype {image.dtype})"
    if isinstance(exc, CropSizeError):
        return InputError(f"{where}: {exc}; set pad_if_needed: true or resize first")
    if isinstance(exc, TypeError | ValueError):
        return InputError(f"{where}: {exc}")
    return TransformError(f"{where} failed: {type(exc).__name__}: {exc}")
