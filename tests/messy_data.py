"""A folder of real photos as users bring them: phone orientations, odd modes, broken files.

Written by Pillow from scikit-image's sample photos, so every case is a real encoder's output.
"""

from __future__ import annotations

import json
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


def write_coco(root: Path) -> Path:
    """``root/instances.json`` with three photos: polygons, an RLE mask, keypoints, a crowd
    annotation (left out by readers), an image with nothing in it, and category ids that are not
    0..K-1."""
    from pycocotools import mask as coco_mask

    root.mkdir(parents=True, exist_ok=True)
    images = []
    for k, (height, width) in enumerate([(64, 80), (72, 72), (48, 96)], 1):
        Image.fromarray(photo(height, width, seed=30 + k)).save(root / f"img{k}.png")
        images.append({"id": k * 10, "file_name": f"img{k}.png", "height": height, "width": width})
    blob = np.zeros((72, 72), np.uint8, order="F")
    blob[20:50, 30:60] = 1
    rle = coco_mask.encode(blob)
    rle["counts"] = rle["counts"].decode()
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [10, 8, 30, 20], "iscrowd": 0,
         "area": 600, "segmentation": [[10, 8, 40, 8, 40, 28, 10, 28]],
         "keypoints": [12, 10, 2, 38, 26, 1, 0, 0, 0], "num_keypoints": 2},  # the third unlabelled
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [50, 30, 25, 30], "iscrowd": 0,
         "area": 375, "segmentation": [[50, 30, 75, 30, 62, 60]]},
        {"id": 3, "image_id": 20, "category_id": 3, "bbox": [30, 20, 30, 30], "iscrowd": 0,
         "area": 900, "segmentation": rle},
        {"id": 4, "image_id": 20, "category_id": 7, "bbox": [0, 0, 72, 72], "iscrowd": 1,
         "area": 5184, "segmentation": {"size": [72, 72], "counts": [0, 72 * 72]}},  # crowd: RLE
    ]
    categories = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]
    (root / "instances.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}))
    return root / "instances.json"


def write_segmentation_folder(root: Path) -> Path:
    """``root/images`` + ``root/masks``: four photos of two sizes with class maps of 0, 1 and 2."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k, (height, width) in enumerate([(40, 60), (40, 60), (56, 48), (56, 48)]):
        Image.fromarray(photo(height, width, seed=40 + k)).save(root / f"images/s{k}.jpg", quality=95)
        mask = np.zeros((height, width), np.uint8)
        mask[5:20, 5:30] = 1
        mask[25:, 20:] = 2
        Image.fromarray(mask).save(root / f"masks/s{k}.png")
    return root
