"""A labelled grid of augmentations: for each transform, the original and N augmented samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from augsvc.errors import AugsvcError
from augsvc.image.io import to_uint8
from augsvc.image.pipeline import ImagePipeline

__all__ = ["make_gallery", "to_rgb"]

_LABEL_WIDTH = 200
_HEADER = 28
_PAD = 6
_BG = 255


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any image a pipeline takes or makes as uint8 RGB for showing: gray repeated, alpha
    composited on a checkerboard (so transparency is visible), floats scaled as ``to_uint8``."""
    image = to_uint8(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[..., 3:].astype(np.float32) / 255.0
        yy, xx = np.mgrid[0:image.shape[0], 0:image.shape[1]]
        board = np.where(((yy // 8 + xx // 8) % 2)[..., None] == 0, 200, 255).astype(np.float32)
        return (image[..., :3] * alpha + board * (1 - alpha)).astype(np.uint8)
    return image if image.shape[2] == 3 else np.ascontiguousarray(image[..., :3])


def _fit(image: np.ndarray, cell: int) -> np.ndarray:
    """Scale an image into a cell x cell RGB tile, keeping its aspect ratio."""
    image = to_rgb(image)
    h, w = image.shape[:2]
    scale = cell / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tile = np.full((cell, cell, 3), _BG, np.uint8)
    y0, x0 = (cell - size[1]) // 2, (cell - size[0]) // 2
    tile[y0:y0 + size[1], x0:x0 + size[0]] = resized
    return tile


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.5) -> None:
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1, cv2.LINE_AA)


def _error_tile(message: str, cell: int) -> np.ndarray:
    tile = np.full((cell, cell, 3), 235, np.uint8)
    _text(tile, "not applicable:", 6, 20, 0.45)
    words, line, y = message.split(), "", 40
    for word in words:
        if len(line) + len(word) > cell // 8:
            _text(tile, line, 6, y, 0.4)
            line, y = "", y + 16
        line = f"{line} {word}".strip()
        if y > cell - 10:
            break
    _text(tile, line, 6, y, 0.4)
    return tile


def make_gallery(
    images: Sequence[tuple[str, np.ndarray]],
    spec: Any,
    *,
    n: int = 4,
    seed: int = 0,
    cell: int = 160,
) -> np.ndarray:
    """Render the gallery as an RGB uint8 array.

    One row per transform of ``spec`` (each alone, forced to p=1, on the images in turn), then
    one row per image for the whole pipeline. Each row: a label, the original, ``n`` samples
    (sample ``j`` is global index ``j`` under ``seed``). A transform that cannot apply to an
    image (e.g. a crop larger than it) gets a tile saying why.
    """
    if not images:
        raise ValueError("the gallery needs at least one image")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pipeline = ImagePipeline(spec)
    rows: list[tuple[str, str, np.ndarray, ImagePipeline]] = []
    if pipeline.spec is not None:
        options = dict(pipeline.spec.options)
        for k, leaf in enumerate(pipeline.spec.leaves()):
            single = ImagePipeline({"transforms": [{**leaf.to_dict(), "p": 1.0}], **options})
            label, image = images[k % len(images)]
            rows.append((leaf.name, f"on {label}, p=1", image, single))
    for label, image in images:
        rows.append(("full pipeline", f"on {label}", image, pipeline))

    width = _LABEL_WIDTH + (n + 1) * (cell + _PAD) + _PAD
    height = _HEADER + len(rows) * (cell + _PAD) + _PAD
    canvas = np.full((height, width, 3), _BG, np.uint8)
    for j, title in enumerate(["original", *(f"sample {i}" for i in range(n))]):
        _text(canvas, title, _LABEL_WIDTH + j * (cell + _PAD) + _PAD + 4, _HEADER - 9)
    for r, (name, note, image, pipe) in enumerate(rows):
        y = _HEADER + r * (cell + _PAD)
        _text(canvas, name, 8, y + cell // 2 - 4, 0.55)
        _text(canvas, note, 8, y + cell // 2 + 16, 0.42)
        tiles = [_fit(image, cell)]
        for i in range(n):
            try:
                tiles.append(_fit(pipe(image, seed=seed, index=i).image, cell))
            except AugsvcError as exc:
                tiles.append(_error_tile(str(exc).split(": ", 1)[-1], cell))
        for j, tile in enumerate(tiles):
            x = _LABEL_WIDTH + j * (cell + _PAD) + _PAD
            canvas[y:y + cell, x:x + cell] = tile
    return canvas
