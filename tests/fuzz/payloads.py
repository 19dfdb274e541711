"""Hostile image payloads: hand-made PNG headers, decompression bombs, truncations and raw tensors."""

from __future__ import annotations

import functools
import struct
import zlib

import cv2
import numpy as np

from augsvc.wire.v1 import augment_pb2 as pb

__all__ = ["bmp_header", "jpeg", "jpeg_with_size", "png", "png_bomb", "png_header", "pnm_header",
           "tensor"]

_PNG_COLOUR = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (gray, gray+alpha, RGB, RGBA)


def tensor(array: np.ndarray) -> pb.Tensor:
    """A Tensor message that honestly describes ``array``."""
    array = np.ascontiguousarray(array)
    return pb.Tensor(data=array.tobytes(), shape=list(array.shape), dtype=str(array.dtype))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int, channels: int = 3, idat: bytes = b"", bit_depth: int = 8) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` and whose pixel data is ``idat`` (zlib)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, _PNG_COLOUR[channels], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@functools.cache
def png_bomb(width: int, height: int, channels: int = 1) -> bytes:
    """A valid PNG of ``width`` x ``height`` zeros: a few MB that decode to width*height*channels bytes.

    Built without ever holding the image: every scanline (filter byte 0, then zeros) compresses
    to the same deflate block after a full flush, so one block is repeated ``height`` times.
    """
    row = bytes(1 + width * channels)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: header and checksum are ours
    deflate.compress(row)
    deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(row) + deflate.flush(zlib.Z_FULL_FLUSH)
    total = len(row) * height
    adler = ((total % 65521) << 16) | 1  # Adler-32 of zeros: a stays 1, b counts the bytes
    stream = b"\x78\xda" + block * height + b"\x03\x00" + struct.pack(">I", adler)  # 03 00: empty final block
    return png_header(width, height, channels, stream)


def png(array: np.ndarray) -> bytes:
    """``array`` (HxW gray, HxWx3 RGB or HxWx4 RGBA, uint8 or uint16) as PNG bytes."""
    bgr = array if array.ndim == 2 else cv2.cvtColor(array, cv2.COLOR_RGB2BGR if array.shape[2] == 3
                                                      else cv2.COLOR_RGBA2BGRA)
    ok, data = cv2.imencode(".png", bgr)
    assert ok
    return data.tobytes()


def jpeg(array: np.ndarray) -> bytes:
    """``array`` (HxWx3 RGB uint8) as JPEG bytes."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(array, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` (a baseline JPEG) with its SOF0 frame header claiming ``width`` x ``height``."""
    at = data.index(b"\xff\xc0")  # SOF0: marker, length (2), precision (1), height (2), width (2)
    return data[:at + 5] + struct.pack(">HH", height, width) + data[at + 9:]


def pnm_header(width: int, height: int) -> bytes:
    """A binary PGM that declares ``width`` x ``height`` and carries 16 bytes of pixels."""
    return f"P5\n{width} {height}\n255\n".encode() + bytes(16)


def bmp_header(width: int, height: int) -> bytes:
    """A 24-bit BMP that declares ``width`` x ``height`` and carries no pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    size = 14 + len(info)
    return b"BM" + struct.pack("<IHHI", size, 0, 0, size) + info
