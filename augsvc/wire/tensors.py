"""Arrays on the wire: Tensor messages to and from numpy, the per-request limits, and replies
serialized with one copy of their bulk bytes. numpy only: the client imports this."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from augsvc.errors import InputError, LimitError
from augsvc.wire.v1 import augment_pb2 as pb

__all__ = ["MAX_MESSAGE_BYTES", "TARGET_FIELDS", "Encoded", "Limits", "encode_with_tensor",
           "from_targets", "from_tensor", "serialize", "to_targets", "to_tensor"]

TARGET_FIELDS = ("boxes", "labels", "masks", "mask", "keypoints")
"""The fields of a Targets message: a detection or segmentation sample's labels."""

MAX_MESSAGE_BYTES = 512 * 1024 * 1024
"""The largest gRPC message either end sends or accepts (server and client channel options)."""
_DTYPES = frozenset({"uint8", "float32", "float64", "int32", "int64", "uint16", "bool"})
_MAX_DIMS = 8
_MAX_DIM = 2**31 - 1


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
    max_reply_bytes: int = MAX_MESSAGE_BYTES
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


def to_targets(fields: Mapping[str, np.ndarray]) -> pb.Targets:
    """A sample's targets (``Target.as_dict()``: boxes, labels, masks, mask, keypoints) as a message."""
    return pb.Targets(**{name: to_tensor(value) for name, value in fields.items()})


def from_targets(message: pb.Targets, what: str, limits: Limits) -> dict[str, np.ndarray]:
    """The arrays a Targets message holds, by field name (absent fields left out)."""
    return {name: from_tensor(getattr(message, name), f"{what}.{name}", limits)
            for name in TARGET_FIELDS if message.HasField(name)}
