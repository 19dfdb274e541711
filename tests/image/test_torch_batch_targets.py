"""TorchBatchPipeline's masks against the CPU path: ``ImagePipeline(spec)(image, mask=m, ...)``.

Real photos (skimage's astronaut and coffee, see test_torch_batch) with real-looking label masks
made from them: the gray image cut into four bands labelled 0, 3, 7 and 255, and the red channel
thresholded (0/1). Two seeds x 16 indices. Tolerance: none -- flips and crops move mask pixels
as they move image pixels; resize and random_resized_crop pick OpenCV's INTER_NEAREST source
indices; shift_scale_rotate's nearest warp rounds OpenCV 5's float32 source coordinates half to
even, with the border mode and ``fill_mask``. Measured against opencv-python 5.0 on x86-64: no
mask pixel differs. Masks are compared with ``assert_array_equal`` except after a warp, where
OpenCV's CPU-dependent split between its SIMD and scalar loops (see ``augsvc.image.torch_ops``)
makes the guarantee a tolerance: under 0.1% of the mask pixels may differ (``close_mask``).
Images likewise: exact, but after a warp test_torch_batch_more's tolerance (``close``).

Boxes (flips, crops, resizes, pixel transforms; pascal_voc, coco and yolo, with a label column and
min_visibility): equal to the CPU path's ``bboxes`` with ``assert_array_equal``.
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import numpy as np
import pytest
import torch

from augsvc.errors import InputError, SpecError
from augsvc.image import ImagePipeline
from augsvc.image.torch_batch import TorchBatchPipeline
from tests.image.test_torch_batch import as_batch, as_image, photos

SEEDS = (7, 2**64 - 1)
STARTS = (0, 1000)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="needs a CUDA GPU"))]
WARP = {"name": "shift_scale_rotate", "scale_limit": 0.3, "shift_limit": 0.2, "rotate_limit": 60}
SPECS: dict[str, list[dict[str, Any]]] = {
    "flips-p0.5": [{"name": "horizontal_flip", "p": 0.5}, {"name": "vertical_flip", "p": 0.5}],
    "crops": [{"name": "random_crop", "height": 48, "width": 40, "p": 1.0},
              {"name": "center_crop", "height": 41, "width": 37, "p": 1.0}],
    "resize_up": [{"name": "resize", "height": 131, "width": 157}],
    "resize_down": [{"name": "resize", "height": 45, "width": 61}],
    "random_resized_crop": [{"name": "random_resized_crop", "height": 72, "width": 56}],
    "warp-p0.5": [{**WARP, "p": 0.5}],
    "warp_fill_mask": [{**WARP, "p": 1.0, "fill": 9, "fill_mask": 5}],
    **{f"warp_{mode}": [{**WARP, "p": 1.0, "border_mode": mode}]
       for mode in ("reflect_101", "reflect", "replicate", "wrap")},
    "pixel_only": [{"name": "brightness_contrast", "p": 1.0}, {"name": "gamma", "p": 1.0},
                   {"name": "hue_saturation_value", "p": 1.0}, {"name": "median_blur", "p": 1.0},
                   {"name": "normalize"}],
    "mixed": [{"name": "random_crop", "height": 56, "width": 50, "p": 1.0},
              {"name": "horizontal_flip"}, {"name": "brightness_contrast"}, {**WARP, "p": 0.7},
              {"name": "random_resized_crop", "height": 40, "width": 44}, {"name": "vertical_flip"}],
}


def label_masks(images: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) four-band labels 0/3/7/255 of the gray image, and (N, H, W) red > 128 (0/1)."""
    stack = np.stack(images).astype(np.int32)
    gray = stack.mean(axis=-1)
    bands = np.array([0, 3, 7, 255], np.uint8)[np.digitize(gray, [70, 130, 190])]
    return bands, (stack[..., 0] > 128).astype(np.uint8)


def close(out: np.ndarray, ref: np.ndarray, warped: bool) -> None:
    if not warped:
        np.testing.assert_array_equal(out, ref)
        return
    diff = np.abs(out.astype(np.int32) - ref.astype(np.int32))
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.001


def close_mask(out: torch.Tensor, ref: np.ndarray, warped: bool) -> None:
    got = out.cpu().numpy()
    if not warped:
        np.testing.assert_array_equal(got, ref)
        return
    assert got.shape == ref.shape and (got != ref).mean() <= 0.001


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(SPECS))
def test_masks_move_with_the_images_as_on_the_cpu_path(name: str, device: str) -> None:
    spec = {"transforms": SPECS[name]}
    warped = "warp" in name or name == "mixed"
    images = photos("100x80")
    bands, red = label_masks(images)
    cpu, batch = ImagePipeline(spec), TorchBatchPipeline(spec)
    x = as_batch(images).to(device)
    for seed in SEEDS:
        for start in STARTS:
            one, mask, params = batch(x, seed=seed, start=start, return_params=True,
                                      masks=torch.from_numpy(bands).to(device))
            many, got = batch(x, seed=seed, start=start,
                              masks=torch.from_numpy(np.stack([bands, red], axis=1)).to(device))
            assert one.shape[-2:] == many.shape[-2:] and one.device == x.device == got.device
            assert mask.shape == (len(images), *one.shape[-2:]) and got.shape[:2] == (len(images), 2)
            assert torch.equal(mask, got[:, 0])
            for k, image in enumerate(images):
                ref = cpu(image, mask=bands[k], seed=seed, index=start + k, return_params=True)
                assert params[k] == ref.params
                close(as_image(one[k]), ref.image, warped)
                close(as_image(many[k]), ref.image, warped)
                close_mask(got[k, 0], ref.mask, warped)
                refs = cpu(image, masks=[bands[k], red[k]], seed=seed, index=start + k).masks
                assert refs is not None
                close_mask(got[k, 1], refs[1], warped)


@pytest.mark.parametrize("device", DEVICES)
def test_a_three_dim_mask_comes_back_three_dim_and_the_seed7_preset_moves_it(device: str) -> None:
    images = tuple(np.ascontiguousarray(np.pad(im, ((70, 70), (75, 75), (0, 0)), mode="reflect"))
                   for im in photos("100x80")[:6])  # 240x230: seed7 crops 224x224
    bands, _ = label_masks(images)
    x = as_batch(images).to(device)
    out, masks = TorchBatchPipeline("seed7")(x, seed=3, start=40, masks=torch.from_numpy(bands).to(device))
    assert masks.shape == (6, 224, 224) and masks.dtype == torch.uint8
    for k, image in enumerate(images):
        ref = ImagePipeline("seed7")(image, mask=bands[k], seed=3, index=40 + k)
        close_mask(masks[k], ref.mask, True)
        close(as_image(out[k]), ref.image, True)


def test_masks_of_other_dtypes_and_the_caller_tensor_is_never_returned() -> None:
    x = as_batch(photos("100x80")[:4])
    labels = torch.from_numpy(label_masks(photos("100x80")[:4])[0]).to(torch.int64) * 1000
    batch = TorchBatchPipeline({"transforms": [{**WARP, "p": 1.0, "fill_mask": 4}]})
    _, masks = batch(x, seed=5, masks=labels)
    assert masks.dtype == torch.int64 and set(masks.unique().tolist()) <= {0, 3000, 7000, 255000, 4}
    same = TorchBatchPipeline({"transforms": [{"name": "gamma"}]})
    _, kept = same(x, seed=5, masks=labels)
    assert torch.equal(kept, labels) and kept.data_ptr() != labels.data_ptr()


@pytest.mark.parametrize("masks, match", [
    (torch.zeros(4, 100, 80), "integers"),
    (torch.zeros(4, 100, 81, dtype=torch.uint8), "do not fit"),
    (torch.zeros(3, 100, 80, dtype=torch.uint8), "do not fit"),
    (torch.zeros(4, 1, 1, 100, 80, dtype=torch.uint8), r"\(N, H, W\) or \(N, K, H, W\)"),
])
def test_malformed_masks_are_refused(masks: torch.Tensor, match: str) -> None:
    batch = TorchBatchPipeline({"transforms": [{"name": "horizontal_flip"}]})
    with pytest.raises(InputError, match=match):
        batch(as_batch(photos("100x80")[:4]), seed=1, masks=masks)


def test_unsupported_targets_are_refused_with_a_clear_error() -> None:
    spec = A.to_dict(A.Compose([A.Resize(50, 40, mask_interpolation=cv2.INTER_LINEAR)]))
    batch = TorchBatchPipeline(spec)
    x = as_batch(photos("100x80")[:2])
    assert batch(x, seed=1).shape == (2, 3, 50, 40)  # images alone still run
    with pytest.raises(SpecError, match=r"Resize \(mask_interpolation other than nearest\)"):
        batch(x, seed=1, masks=torch.zeros(2, 100, 80, dtype=torch.uint8))
    warp = TorchBatchPipeline({"transforms": [WARP, {"name": "horizontal_flip"}]})
    with pytest.raises(SpecError, match=r"boxes through shift_scale_rotate \(boxes through a warp\)"):
        warp(x, seed=1, bboxes=[[[1, 2, 3, 4]]] * 2)
    with pytest.raises(SpecError, match=r"one \(n, 4\+\) array per image"):
        batch(x, seed=1, bboxes=[[[1, 2, 3, 4]]] * 3)
    with pytest.raises(SpecError, match="keypoints not supported yet"):
        batch(x, seed=1, keypoints=[[[1, 2]]] * 2)


BOX_SPECS: dict[str, dict[str, Any]] = {
    "flips": {"transforms": SPECS["flips-p0.5"]},
    "crops_visibility": {"transforms": [*SPECS["crops"], {"name": "horizontal_flip"}], "min_visibility": 0.4},
    "resizes_coco": {"transforms": [{"name": "random_crop", "height": 60, "width": 70, "p": 1.0},
                                    {"name": "vertical_flip"}, {"name": "gamma"},
                                    {"name": "random_resized_crop", "height": 72, "width": 56}],
                     "bbox_format": "coco"},
    "yolo": {"transforms": [{"name": "center_crop", "height": 41, "width": 37, "p": 1.0},
                            {"name": "horizontal_flip"}, {"name": "resize", "height": 50, "width": 50}],
             "bbox_format": "yolo"},
}


def boxes_for(k: int, fmt: str, height: int = 100, width: int = 80) -> np.ndarray:
    """A few boxes of sample ``k`` with a label column, in ``fmt``: inside, across an edge, small."""
    rng = np.random.default_rng(k)
    x0, y0 = rng.uniform(0, width - 20, 4), rng.uniform(0, height - 20, 4)
    w, h = rng.uniform(3, 40, 4), rng.uniform(3, 50, 4)
    x1, y1 = np.minimum(x0 + w, width), np.minimum(y0 + h, height)
    voc = np.stack([x0, y0, x1, y1, np.arange(4) + 10 * k], axis=1)
    if fmt == "coco":
        return np.stack([x0, y0, x1 - x0, y1 - y0, voc[:, 4]], axis=1)
    if fmt == "yolo":
        return np.stack([(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width,
                         (y1 - y0) / height, voc[:, 4]], axis=1)
    return voc


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(BOX_SPECS))
def test_boxes_move_as_on_the_cpu_path(name: str, device: str) -> None:
    spec = BOX_SPECS[name]
    images = photos("100x80")
    bands, _ = label_masks(images)
    boxes = [boxes_for(k, spec.get("bbox_format", "pascal_voc")) for k in range(len(images))]
    cpu, batch = ImagePipeline(spec), TorchBatchPipeline(spec)
    x = as_batch(images).to(device)
    for seed in SEEDS:
        out, masks, got = batch(x, seed=seed, start=5, masks=torch.from_numpy(bands).to(device), bboxes=boxes)
        assert len(got) == len(images)
        for k, image in enumerate(images):
            ref = cpu(image, mask=bands[k], bboxes=boxes[k], seed=seed, index=5 + k)
            np.testing.assert_array_equal(as_image(out[k]), ref.image)
            np.testing.assert_array_equal(masks[k].cpu().numpy(), ref.mask)
            assert ref.bboxes is not None and got[k].shape == np.asarray(ref.bboxes).shape
            np.testing.assert_array_equal(got[k], np.asarray(ref.bboxes), err_msg=f"sample {k}")
