"""Decode a JPEG smaller when the pipeline's first step shrinks it anyway.

libjpeg can decode at 1/2, 1/4 or 1/8 of the stored size for much less work (it scales in its
inverse DCT). A pipeline whose first step is ``resize`` or ``random_resized_crop`` (at p=1)
throws most of a large photo's pixels away; this module decides, per sample, how small the
file can be decoded while that step still reads at least as many pixels as it writes, and
runs the step on the smaller image.

When it applies (:func:`jpeg_scale`): a JPEG file, read as RGB, with nothing but the image to
augment (no masks, boxes or keypoints), and a pipeline built by augsvc whose first step is
``resize`` or ``random_resized_crop`` with p=1. The step's parameters are drawn for the full
size, from the file header, exactly as a full decode would draw them, so every later transform
draws the same numbers too. The scale is the largest of 8, 4 and 2 at which the crop (the
whole image for ``resize``) still has at least the output's height and width; else 1, a full
decode.

How it differs from a full decode: the first step resizes from libjpeg's scaled decode instead
of the full image (the scaled decode averages each block of pixels), and the crop's corners are
the full-size corners scaled down and rounded, so they move by less than one output pixel. The
output is deterministic for the file and (seed, index), like every other output, but not equal
to the full decode's byte for byte. ``reduced_decode=False`` on the datasets turns it off.
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.core.utils import ensure_contiguous_output as _contiguous

from augsvc.image.lean import LeanRunner, stand_in
from augsvc.seeding import SampleRandom

__all__ = ["DECODE_FLAGS", "first_shrink", "jpeg_scale", "run_from_source"]

SCALES = (8, 4, 2)
_RGB = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION  # EXIF orientation is applied after
DECODE_FLAGS = {1: _RGB, **{scale: (flag & ~cv2.IMREAD_COLOR_BGR) | _RGB for scale, flag in (
    (2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4), (8, cv2.IMREAD_REDUCED_COLOR_8))}}
"""OpenCV's imdecode flags for an RGB decode at 1/scale, pixels as stored."""


def first_shrink(runner: LeanRunner | None) -> A.DualTransform | None:
    """The pipeline's first step when it is one this module can run from a smaller decode."""
    if runner is None or runner.compose.p < 1 or not runner.compose.transforms:
        return None
    first = runner.compose.transforms[0]
    if type(first) in (A.RandomResizedCrop, A.Resize) and first.p >= 1:
        return first
    return None


def _draw(first: A.DualTransform, shape: tuple[int, ...]) -> dict[str, Any]:
    """The first step's parameters for an image of ``shape``, drawn as the Compose would
    (after its own draw): ``should_apply`` draws nothing at p=1."""
    first.params = {}
    data = {"image": stand_in(shape)}
    params = first.update_transform_params(params=first.get_params(), data=data)
    params.update(first.get_params_dependent_on_data(params=params, data=data))
    return params


def _output_size(first: A.DualTransform) -> tuple[int, int]:
    if isinstance(first, A.RandomResizedCrop):
        return int(first.size[0]), int(first.size[1])
    return int(first.height), int(first.width)


def jpeg_scale(runner: LeanRunner | None, random: SampleRandom, height: int, width: int,
               seed: int | None, index: int) -> int:
    """The scale (1, 2, 4 or 8) to decode sample ``index``'s ``height`` x ``width`` JPEG at.

    Draws the sample's first-step parameters from the start of its streams; augmenting it
    reseeds them, so asking changes nothing.
    """
    first = first_shrink(runner)
    if first is None or seed is None:  # unseeded draws cannot be repeated for the real run
        return 1
    assert runner is not None
    out_h, out_w = _output_size(first)
    if height // 2 < out_h or width // 2 < out_w:  # no crop of it can be decoded smaller
        return 1
    random.reseed(seed, index)
    runner.compose.py_random.random()  # Compose's own draw
    params = _draw(first, (height, width, 3))
    x1, y1, x2, y2 = params.get("crop_coords", (0, 0, width, height))
    for scale in SCALES:
        if (y2 - y1) // scale >= out_h and (x2 - x1) // scale >= out_w:
            return scale
    return 1


def run_from_source(runner: LeanRunner, image: np.ndarray, source: tuple[int, int]
                    ) -> np.ndarray:
    """Augment ``image``, a smaller decode of a ``source`` (height, width) image, as the
    pipeline would augment the full one: the first step's parameters are drawn for the full
    size and its crop scaled to ``image``. The caller has reseeded the sample's streams."""
    first = first_shrink(runner)
    assert first is not None
    if not runner.compose.py_random.random() < runner.compose.p:  # p >= 1: always runs
        return image
    height, width = source
    params = _draw(first, (height, width, *image.shape[2:]))
    params["shape"] = image.shape
    if "crop_coords" in params:
        x1, y1, x2, y2 = params["crop_coords"]
        fy, fx = image.shape[0] / height, image.shape[1] / width
        ys = [min(image.shape[0], round(v * fy)) for v in (y1, y2)]
        xs = [min(image.shape[1], round(v * fx)) for v in (x1, x2)]
        params["crop_coords"] = (xs[0], ys[0], max(xs[1], xs[0] + 1), max(ys[1], ys[0] + 1))
    first.params = params
    out = {"image": _contiguous(first.apply(_contiguous(image), **params))}
    return runner.rest(out)["image"]  # type: ignore[no-any-return]
