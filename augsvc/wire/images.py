"""Images on the wire: an Image message is a raw array or PNG/JPEG bytes, decoded within limits."""

from __future__ import annotations

import cv2
import numpy as np

from augsvc.errors import InputError, LimitError
from augsvc.image.headers import read_header
from augsvc.image.io import cv2_reason, decode_image_bytes
from augsvc.wire.tensors import Limits, from_tensor, to_tensor
from augsvc.wire.v1 import augment_pb2 as pb

__all__ = ["ENCODINGS", "check_encoding", "decode_image", "encode_image"]

ENCODINGS = frozenset(pb.Encoding.values())
"""The output encodings a request may ask for."""


def decode_image(image: pb.Image, what: str, limits: Limits) -> np.ndarray:
    """An Image message as an HxW(xC) array (encoded images become RGB(A) uint8)."""
    kind = image.WhichOneof("payload")
    if kind == "array":
        array = from_tensor(image.array, what, limits)
    elif kind == "encoded":
        data = image.encoded
        if len(data) > limits.max_tensor_bytes:
            raise LimitError(f"{what}: encoded image is over {limits.max_tensor_bytes} bytes")
        if not data:
            raise InputError(f"{what}: the encoded image is empty (0 bytes)")
        try:
            header = read_header(data)
        except LimitError as exc:
            raise LimitError(f"{what}: {exc}") from None
        if header is not None and header.width * header.height > limits.max_pixels:
            raise LimitError(f"{what}: the image header says {header.width}x{header.height} "
                             f"(width x height) pixels, over the limit of {limits.max_pixels}")
        try:  # upright: the EXIF orientation is applied
            array = decode_image_bytes(
                data, orientation=header.orientation if header is not None else None)
        except InputError as exc:
            raise InputError(f"{what}: cannot decode the image bytes: {exc}") from None
    else:
        raise InputError(f"{what}: no image given")
    if array.ndim >= 2 and array.shape[0] * array.shape[1] > limits.max_pixels:
        raise LimitError(f"{what}: {array.shape[0]}x{array.shape[1]} pixels is over the limit of "
                         f"{limits.max_pixels}")
    return array


def check_encoding(encoding: int) -> None:
    """Raise InputError unless ``encoding`` is one of the wire's output encodings."""
    if encoding not in ENCODINGS:
        raise InputError(f"output_encoding {encoding} is not one of {sorted(ENCODINGS)} "
                         "(0 raw, 1 PNG, 2 JPEG)")


def encode_image(array: np.ndarray, encoding: int) -> pb.Image:
    """Raw by default; PNG/JPEG when asked (uint8 images only)."""
    if encoding == pb.ENCODING_RAW:
        return pb.Image(array=to_tensor(array))
    check_encoding(encoding)
    if array.dtype != np.uint8:
        raise InputError(f"only uint8 images can be sent as PNG/JPEG, this one is {array.dtype}")
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise InputError(f"only images with 1, 3 or 4 channels can be sent as PNG/JPEG, this one "
                         f"has {array.shape[2]}")
    bgr = array
    if array.ndim == 3 and array.shape[2] in (3, 4):
        bgr = cv2.cvtColor(array, cv2.COLOR_RGB2BGR if array.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    try:
        ok, data = cv2.imencode(".png" if encoding == pb.ENCODING_PNG else ".jpg", bgr)
    except cv2.error as exc:
        raise InputError(f"cannot encode an image of shape {array.shape}: "
                         f"{cv2_reason(exc)}") from None
    if not ok:
        raise InputError(f"cannot encode an image of shape {array.shape}")
    return pb.Image(encoded=data.tobytes())
