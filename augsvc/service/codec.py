"""Arrays and images on the wire: raw tensors by default, PNG/JPEG accepted, with size limits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from augsvc.errors import InputError, LimitError
from augsvc.image.io import header_size
from augsvc.v1 import augment_pb2 as pb

__all__ = ["ENCODINGS", "Encoded", "LimitError", "Limits", "check_encoding", "decode_image", "encode_image",
           "encode_with_tensor", "from_tensor", "serialize", "to_tensor"]

_DTYPES = frozenset({"uint8", "float32", "float64", "int32", "int64", "uint16", "bool"})
_MAX_DIMS = 8
_MAX_DIM = 2**31 - 1
ENCODINGS = frozenset(pb.Encoding.values())
"""The output encodings a request may ask for."""


@dataclass(frozen=True)
class Limits:
    """Per-request limits.

    Attributes:
        max_samples: images per request (batch size).
        max_pixels: pixels per image: given, decoded, or made by the pipeline on the way.
        max_tensor_bytes: bytes per array or encoded image.
        max_texts: texts per request.
        max_text_chars: characters per text.
        max_text_variants: texts x n per request (augmented texts in one reply).
        max_reply_bytes: bytes of one reply, bounded before any work (the largest message sent).
        max_spec_bytes: characters of a spec_json.
    """

    max_samples: int = 4096
    max_pixels: int = 64_000_000
    max_tensor_bytes: int = 256 * 1024 * 1024
    max_texts: int = 100_000
    max_text_chars: int = 2_000_000
    max_text_variants: int = 100_000
    max_reply_bytes: int = 512 * 1024 * 1024
    max_spec_bytes: int = 1024 * 1024


def to_tensor(array: np.ndarray) -> pb.Tensor:
    array = np.ascontiguousarray(array)
    return pb.Tensor(data=array.tobytes(), shape=list(array.shape), dtype=str(array.dtype))


@dataclass(frozen=True)
class Encoded:
    """A reply serialized ahead of gRPC (see ``encode_with_tensor``).

    ``message`` is the reply without its bulk bytes, for whoever inspects replies on the way
    out (the call observers count its samples); ``wire`` is what goes on the wire.
    """

    message: Any
    wire: bytes


def serialize(reply: Any) -> bytes:
    """Response serializer that passes ``Encoded`` replies through and serializes messages."""
    return reply.wire if isinstance(reply, Encoded) else reply.SerializeToString()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(field: int, size: int) -> bytes:
    """The tag and length that precede a ``size``-byte bytes or message field (wire type 2)."""
    return _varint(field << 3 | 2) + _varint(size)


def encode_with_tensor(message: Any, field: str, array: np.ndarray) -> Encoded:
    """``message`` with its Tensor ``field`` holding ``array``, serialized with one copy of the data.

    Building the Tensor message copies the bytes into it, serializing copies them again and gRPC
    a third time. Fields may come in any order on the wire and parsers merge them, so the
    message's own bytes followed by the Tensor field written here parse as the full message.
    """
    array = np.ascontiguousarray(array)
    data = array.reshape(-1).view(np.uint8).data  # the bytes, not copied
    head = pb.Tensor(shape=list(array.shape), dtype=str(array.dtype)).SerializeToString()
    data_number = pb.Tensor.DESCRIPTOR.fields_by_name["data"].number
    data_head = _length_delimited(data_number, data.nbytes)
    tensor_size = len(head) + len(data_head) + data.nbytes
    number = message.DESCRIPTOR.fields_by_name[field].number
    wire = b"".join([message.SerializeToString(), _length_delimited(number, tensor_size), head,
                     data_head, data])
    return Encoded(message, wire)


def from_tensor(tensor: pb.Tensor, what: str, limits: Limits) -> np.ndarray:
    """The array a Tensor message holds; InputError if malformed, LimitError if too large."""
    if tensor.dtype not in _DTYPES:
        raise InputError(f"{what}: dtype {tensor.dtype[:40]!r} is not one of {sorted(_DTYPES)}")
    data = tensor.data  # each read of a bytes field makes a fresh copy
    if len(data) > limits.max_tensor_bytes:
        raise LimitError(f"{what}: {len(data)} bytes is over the limit of "
                         f"{limits.max_tensor_bytes}")
    shape = tuple(int(s) for s in tensor.shape)
    if len(shape) > _MAX_DIMS:
        raise InputError(f"{what}: {len(shape)} dimensions, at most {_MAX_DIMS} are allowed")
    if any(s < 0 for s in shape):
        raise InputError(f"{what}: negative dimension in shape {shape}")
    if any(s > _MAX_DIM for s in shape):  # only an empty array could have one: refuse it
        raise InputError(f"{what}: dimension over {_MAX_DIM} in shape {shape}")
    dtype = np.dtype(tensor.dtype)
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no int64 wrap-around
    if expected != len(data):
        raise InputError(f"{what}: shape {shape} of {tensor.dtype} needs {expected} bytes, "
                         f"got {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


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
            dims = header_size(data)
        except LimitError as exc:
            raise LimitError(f"{what}: {exc}") from None
        if dims is not None and dims[0] * dims[1] > limits.max_pixels:
            raise LimitError(f"{what}: the image header says {dims[0]}x{dims[1]} (width x height) "
                             f"pixels, over the limit of {limits.max_pixels}")
        try:
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error as exc:  # OpenCV's own caps and malformed headers raise, not return None
            raise InputError(f"{what}: cannot decode the image bytes: "
                             f"{_cv2_reason(exc)}") from None
        if decoded is None:
            raise InputError(f"{what}: cannot decode the image bytes (PNG or JPEG expected)")
        if decoded.ndim == 3 and decoded.shape[2] in (3, 4):
            code = cv2.COLOR_BGR2RGB if decoded.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
            decoded = cv2.cvtColor(decoded, code)
        array = decoded
    else:
        raise InputError(f"{what}: no image given")
    if array.ndim >= 2 and array.shape[0] * array.shape[1] > limits.max_pixels:
        raise LimitError(f"{what}: {array.shape[0]}x{array.shape[1]} pixels is over the limit of "
                         f"{limits.max_pixels}")
    return array


def _cv2_reason(exc: cv2.error) -> str:
    """The readable part of an OpenCV error (its message without the source location)."""
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text.split(") ", 1)[-1][:300]


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
                         f"{_cv2_reason(exc)}") from None
    if not ok:
        raise InputError(f"cannot encode an image of shape {array.shape}")
    return pb.Image(encoded=data.tobytes())
