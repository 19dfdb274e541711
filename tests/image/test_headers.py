"""Image headers parsed without Pillow agree with Pillow on every file kind the tests can make."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augsvc.errors import LimitError
from augsvc.image.headers import Header, read_header
from tests.messy_data import photo, write_messy_folder


def _pillow(data: bytes) -> Header:
    with Image.open(io.BytesIO(data)) as im:
        return Header(im.width, im.height, im.getexif().get(0x0112, 1))


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def test_every_readable_file_of_the_messy_folder(tmp_path: Path) -> None:
    root = write_messy_folder(tmp_path / "photos")
    checked = 0
    for path in sorted(root.rglob("*.*")):
        data = path.read_bytes()
        try:
            want = _pillow(data)
        except Exception:
            continue  # not an image: the decoder reports it
        assert read_header(data) == want, path.name
        checked += 1
    assert checked == 15  # 8 orientations, gray, CMYK, RGBA, palette, 16-bit, large, truncated


@pytest.mark.parametrize(("fmt", "options"), [
    ("JPEG", {"progressive": True, "quality": 80}),
    ("JPEG", {"exif": _exif(6), "quality": 70}),
    ("JPEG", {"exif": Image.Exif().tobytes()}),  # an Exif block without the tag
    ("PNG", {"exif": _exif(8)}),  # an eXIf chunk
    ("PNG", {}),
    ("WEBP", {"exif": _exif(3)}),  # through Pillow
    ("TIFF", {}),
])
def test_formats_and_exif_blocks(fmt: str, options: dict[str, object]) -> None:
    for size, seed in [((37, 21), 1), ((300, 200), 2)]:
        image = Image.fromarray(photo(size[1], size[0], seed=seed))
        data = _encoded(image, fmt, **options)
        assert read_header(data) == _pillow(data)


def test_what_no_parser_knows_is_left_to_the_decoder() -> None:
    assert read_header(b"") is None
    assert read_header(b"not an image at all") is None
    assert read_header(b"\xff\xd8\xff\xe0\x00") is None  # a JPEG cut inside its first segment
    assert read_header(b"\x89PNG\r\n\x1a\n\x00\x00") is None


def test_a_bomb_is_refused_from_its_header_in_every_format() -> None:
    def png_header(width: int, height: int) -> bytes:
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
        chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
        return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))

    with pytest.raises(LimitError, match="decompression bomb"):
        read_header(png_header(30000, 30000))
    small = _encoded(Image.fromarray(np.zeros((4, 4), np.uint8)), "JPEG")
    sof = small.index(b"\xff\xc0")
    big = bytearray(small)
    struct.pack_into(">HH", big, sof + 5, 40000, 40000)  # height, width of the frame header
    with pytest.raises(LimitError, match="decompression bomb"):
        read_header(bytes(big))
    assert read_header(png_header(300, 200)) == Header(300, 200, 1)
