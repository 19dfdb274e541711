"""A folder of real photos as users bring them: phone orientations, odd modes, broken files.

Written by Pillow from scikit-image's sample photos, so every case is a real encoder's output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

ORIENTED = tuple(f"cat/orient_{k}.jpg" for k in range(1, 9))  # EXIF orientations 1 to 8
ODD_MODES = ("cat/gray.jpg", "cat/cmyk.jpg", "dog/rgba.png", "dog/palette.png", "dog/deep16.png",
             "dog/large.jpg")
BROKEN = {  # file -> a word its skip reason must contain
    "dog/empty.jpg": "empty",
    "dog/notes.png": "cannot decode",
    "dog/truncated.jpg": "cannot decode",
}


def photo(height: int, width: int, seed: int) -> np.ndarray:
    """An RGB crop of the astronaut photo: asymmetric, so every flip and turn shows."""
    source = skimage.data.astronaut()
    rng = np.random.default_rng(seed)
    top = int(rng.integers(0, source.shape[0] - height))
    left = int(rng.integers(0, source.shape[1] - width))
    return np.ascontiguousarray(source[top:top + height, left:left + width])


def write_messy_folder(root: Path) -> Path:
    """The folder ``root/{cat,dog}/...``: 17 files, of which the three in ``BROKEN`` cannot be read.

    Sizes differ (80x120 stored sideways as 120x80 by orientations 5 to 8, 96x64, 160x200, ...).
    """
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    for k, name in enumerate(ORIENTED, 1):
        exif = Image.Exif()
        exif[0x0112] = k
        Image.fromarray(photo(80, 120, seed=k)).save(root / name, quality=95, exif=exif.tobytes())
    base = Image.fromarray(photo(96, 64, seed=20))
    base.convert("L").save(root / "cat/gray.jpg", quality=95)
    base.convert("CMYK").save(root / "cat/cmyk.jpg", quality=95)
    rgba = np.dstack([photo(96, 64, seed=21), np.linspace(0, 255, 96 * 64).reshape(96, 64)])
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(root / "dog/rgba.png")
    base.quantize(colors=32).save(root / "dog/palette.png")
    deep = np.asarray(base.convert("L")).astype(np.uint16) * 257 + 100
    Image.fromarray(deep).save(root / "dog/deep16.png")
    Image.fromarray(photo(160, 200, seed=22)).save(root / "dog/large.jpg", quality=90)
    (root / "dog/empty.jpg").write_bytes(b"")
    (root / "dog/notes.png").write_text("meeting notes, saved with the wrong suffix\n")
    whole = (root / "dog/large.jpg").read_bytes()
    (root / "dog/truncated.jpg").write_bytes(whole[: len(whole) // 3])
    return root
