"""Reading and writing image files as RGB(A) arrays (OpenCV underneath, unicode paths allowed).

Files are read as a viewer shows them: the EXIF orientation a camera or phone records is applied
(``orient=False`` reads the pixels as stored). ``to_channels`` then gives every image of a dataset
the same number of channels, so that batches stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from augsvc.errors import InputError, LimitError
from augsvc.image.headers import read_header

__all__ = ["CHANNEL_POLICIES", "IMAGE_SUFFIXES", "ChannelPolicy", "cv2_reason", "decode_image_bytes",
           "exif_orientation", "imdecode", "orient_image", "read_image", "to_channels", "to_uint8",
           "write_image"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

ChannelPolicy = Literal["rgb", "gray", "keep"]
CHANNEL_POLICIES: tuple[ChannelPolicy, ...] = ("rgb", "gray", "keep")
"""rgb: HxWx3 (gray repeated, alpha dropped); gray: HxW (ITU-R 601 luma, as Pillow's "L");
keep: as decoded (HxW, HxWx3 or HxWx4)."""



def read_image(path: str | Path, *, orient: bool = True) -> np.ndarray:
    """Read an image file as HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA), upright.

    8-bit files give uint8; 16-bit files give float32 in [0, 1]. Palette images come as RGB(A),
    CMYK JPEGs as RGB. With ``orient`` the EXIF orientation is applied.

    Raises:
        InputError: the file cannot be read or decoded.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return decode_image_bytes(data.tobytes(), orient=orient)
    except InputError as exc:
        raise InputError(f"cannot decode {path}: {exc}") from None


def decode_image_bytes(data: bytes, *, orient: bool = True,
                       orientation: int | None = None) -> np.ndarray:
    """Encoded image bytes as :func:`read_image` gives them (the decoder of files and requests).

    ``orientation`` is the EXIF orientation when the caller has read the header already.

    Raises:
        InputError: not an image OpenCV can decode.
    """
    image = imdecode(data, cv2.IMREAD_UNCHANGED)
    if image.dtype == np.uint16:
        image = (image / 65535.0).astype(np.float32)
    elif image.dtype != np.uint8:
        image = image.astype(np.float32)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    if not orient:
        return image
    return orient_image(image, exif_orientation(data) if orientation is None else orientation)


def imdecode(data: bytes, flags: int) -> np.ndarray:
    """OpenCV's ``imdecode`` of ``data`` with ``flags``, every failure an :class:`InputError`.

    Raises:
        InputError: empty bytes, or not an image OpenCV can decode.
    """
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    except cv2.error as exc:  # OpenCV's own caps and malformed headers raise, not return None
        raise InputError(f"not a readable image: {cv2_reason(exc)}") from None
    if image is None:
        raise InputError("not an image OpenCV can read" if data else "the file is empty (0 bytes)")
    return image


def cv2_reason(exc: cv2.error) -> str:
    """The readable part of an OpenCV error (its message without the source location)."""
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text.split(") ", 1)[-1][:300]


def exif_orientation(source: str | Path | bytes) -> int:
    """The EXIF orientation (1 to 8) of an image file or its bytes; 1 (upright) when it has none.

    Read from the header without decoding pixels: JPEG, PNG (eXIf), and through Pillow TIFF and
    WebP.
    """
    try:
        header = read_header(source if isinstance(source, bytes) else Path(source).read_bytes())
    except (OSError, LimitError):  # no file, or a bomb: nothing to turn
        return 1
    return header.orientation if header is not None else 1


def orient_image(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` as stored, turned upright for EXIF ``orientation`` (the transforms of Pillow's
    ``ImageOps.exif_transpose``): 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90
    clockwise, 7 transverse, 8 rotate 90 counter-clockwise."""
    turns = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    turn = turns.get(orientation)
    return image if turn is None else np.ascontiguousarray(turn(image))


def to_channels(image: np.ndarray, policy: ChannelPolicy) -> np.ndarray:
    """``image`` with the channels ``policy`` asks for (see ``CHANNEL_POLICIES``).

    Alpha is dropped, not composited, as Pillow's ``convert("RGB")`` and torchvision's RGB read
    mode do: a transparent pixel keeps the colour stored under it.

    Raises:
        ValueError: an unknown policy.
        InputError: an image whose channels are not 1, 3 or 4.
    """
    if policy == "keep":
        return image
    if policy not in CHANNEL_POLICIES:
        raise ValueError(f"channels must be one of {', '.join(CHANNEL_POLICIES)}, got {policy!r}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        raise InputError(f"an image of {image.shape[2]} channels has no {policy} form "
                         "(1, 3 or 4 channels expected)")
    if image.ndim == 3 and image.shape[2] == 4:
        image = np.ascontiguousarray(image[..., :3])
    if policy == "rgb":
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


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
