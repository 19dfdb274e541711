"""Reading and writing image files as RGB(A) arrays (OpenCV underneath, unicode paths allowed)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np

from augsvc.errors import InputError, LimitError

__all__ = ["IMAGE_SUFFIXES", "header_size", "read_image", "to_uint8", "write_image"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA).

    8-bit files give uint8; 16-bit files give float32 in [0, 1].

    Raises:
        InputError: the file cannot be read or decoded.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"cannot decode {path}: not an image OpenCV can read")
    if image.dtype == np.uint16:
        image = (image / 65535.0).astype(np.float32)
    elif image.dtype != np.uint8:
        image = image.astype(np.float32)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def to_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 as is; float images in [0, 1] scaled to [0, 255], other float ranges min-max scaled."""
    if image.dtype == np.uint8:
        return image
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi > 1.0:
        image = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB(A)/gray image; the suffix picks the format (float images are saved as 8-bit)."""
    path = Path(path)
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise InputError(f"cannot encode an image of shape {image.shape} as {path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded.tofile(str(path))


def header_size(source: str | Path | bytes) -> tuple[int, int] | None:
    """(width, height) an image file's header declares, read without decoding any pixels; None
    when Pillow does not know the format (OpenCV then decodes, and the size is checked after).

    Raises:
        LimitError: the header declares more pixels than Pillow's decompression-bomb guard
            allows.
    """
    from PIL import Image  # a scikit-image dependency; only its lazy header parsing is used

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                width, height = im.size
                return int(width), int(height)
    except Image.DecompressionBombError:
        raise LimitError(f"the image header declares over {2 * (Image.MAX_IMAGE_PIXELS or 0)} "
                         "pixels (a decompression bomb)") from None
    except Exception:  # any header Pillow cannot parse is left to OpenCV
        return None
