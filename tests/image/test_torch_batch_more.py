"""TorchBatchPipeline's median_blur, hue_saturation_value, shift_scale_rotate, resize and
random_resized_crop, and the whole seed7 and eval presets, against the CPU path: same params,
same pixels (or within the stated tolerance).

The oracle is ``ImagePipeline(spec)(image, seed=s, index=i, return_params=True)`` on real photos
(skimage's astronaut, coffee and chelsea, cut and resized to 96x96 and 120x100; 256x256 and
240x230 for seed7, whose crop is 224x224), two seeds x 16 indices. Params: always ``==``.

Pixels:
- median_blur, hue_saturation_value, resize, random_resized_crop: exact (``assert_array_equal``);
  HSV also over all 2**24 RGB colours, in a row width whose last columns take OpenCV's scalar
  loop. Resizes up and down, by odd factors and by 2, gray too.
- shift_scale_rotate (albumentations Affine): tolerance WARP_MAX_DIFF = 1 level on at most
  WARP_SHARE = 0.1% of the pixels of each spec (all border modes). Measured with opencv-python
  5.0 on x86-64 (AVX2): 0 pixels differ, here and over seed7.
- seed7 (random_crop, horizontal_flip, brightness_contrast, hue_saturation_value, median_blur,
  gamma, shift_scale_rotate): the warp's tolerance, as it may fire; measured: 0 pixels differ.
  eval (resize 256x256, center_crop 224x224): exact.

Where ``p < 1`` resizes leave samples in different sizes, the whole batch is refused and each
group of one size is checked through ``indices=``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from albumentations.augmentations.pixel import functional as fpixel
from skimage import data as skdata

from augsvc.errors import InputError, SpecError
from augsvc.image import ImagePipeline, torch_ops
from augsvc.image.torch_batch import TorchBatchPipeline
from tests.image.test_torch_batch import as_batch, as_image

SIZES = {"96x96": (96, 96), "120x100": (120, 100), "256x256": (256, 256), "240x230": (240, 230)}
SEEDS = (11, 2**40 + 3)
COUNT = 16
WARP_MAX_DIFF = 1
WARP_SHARE = 0.001
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="needs a CUDA GPU"))]

ONE: dict[str, tuple[dict[str, Any], bool]] = {  # spec fields, exact
    "median_blur": ({"name": "median_blur", "blur_limit": [3, 7]}, True),
    "hue_saturation_value": ({"name": "hue_saturation_value"}, True),
    "hue_saturation_value_wide": ({"name": "hue_saturation_value", "hue_shift_limit": 90,
                                   "sat_shift_limit": 120, "val_shift_limit": 100}, True),
    "shift_scale_rotate": ({"name": "shift_scale_rotate"}, False),
    "shift_scale_rotate_fill": ({"name": "shift_scale_rotate", "fill": [10, 200, 30.5],
                                 "scale_limit": 0.3, "shift_limit": 0.2}, False),
    **{f"shift_scale_rotate_{mode}": ({"name": "shift_scale_rotate", "border_mode": mode,
                                       "scale_limit": 0.3, "shift_limit": 0.2}, False)
       for mode in ("reflect_101", "reflect", "replicate", "wrap")},
    "resize_up": ({"name": "resize", "height": 131, "width": 157}, True),
    "resize_down": ({"name": "resize", "height": 45, "width": 61}, True),
    "resize_by_2": ({"name": "resize", "height": 192, "width": 200}, True),
    "random_resized_crop": ({"name": "random_resized_crop", "height": 64, "width": 72}, True),
    "random_resized_crop_up": ({"name": "random_resized_crop", "height": 224, "width": 200,
                                "scale": [0.3, 1.0]}, True),
}
SPECS = {f"{key}-p{p}": ({"transforms": [{**fields, "p": p}]}, exact)
         for key, (fields, exact) in ONE.items() for p in (1.0, 0.5)}


@cache
def photos(size: str, channels: int = 3) -> tuple[np.ndarray, ...]:
    """COUNT real photos of ``size``: astronaut, coffee and chelsea in turn, each cut at a
    different place and resized with INTER_AREA."""
    height, width = SIZES[size]
    out = []
    for k in range(COUNT):
        photo = (skdata.astronaut, skdata.coffee, skdata.chelsea)[k % 3]()
        cut = photo[7 * k:7 * k + 280, 11 * k:11 * k + 260 + 5 * k]
        image = cv2.resize(cut, (width, height), interpolation=cv2.INTER_AREA)
        out.append(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if channels == 1 else image)
    return tuple(out)


def compare(spec: Any, images: tuple[np.ndarray, ...], device: str, exact: bool
            ) -> tuple[int, int, int]:
    """Params equal the CPU path's; pixels equal it when ``exact``. Returns (pixels that differ,
    pixels, transforms fired) over both seeds, after checking the warp tolerance."""
    cpu, batch, x = ImagePipeline(spec), TorchBatchPipeline(spec), as_batch(images).to(device)
    differ = total = fired = 0
    for seed in SEEDS:
        refs = [cpu(image, seed=seed, index=1000 + k, return_params=True)
                for k, image in enumerate(images)]
        groups: dict[tuple[int, ...], list[int]] = {}
        for k, ref in enumerate(refs):
            groups.setdefault(ref.image.shape, []).append(k)
        if len(groups) > 1:
            with pytest.raises(InputError, match="different sizes"):
                batch(x, seed=seed, start=1000)
        for rows in groups.values():
            out, params = batch(x[rows], seed=seed, indices=[1000 + k for k in rows],
                                return_params=True)
            assert out.device == x.device
            for j, k in enumerate(rows):
                ref = refs[k]
                assert params[j] == ref.params, f"sample {k}"
                fired += len(ref.params or [])
                got = as_image(out[j])
                assert got.shape == ref.image.shape and got.dtype == ref.image.dtype
                if exact:
                    np.testing.assert_array_equal(got, ref.image, err_msg=f"sample {k}, seed {seed}")
                diff = np.abs(got.astype(np.int16) - ref.image)
                assert diff.max() <= WARP_MAX_DIFF, f"sample {k}, seed {seed}: {diff.max()} levels"
                differ += int(np.count_nonzero(diff))
                total += diff.size
    assert differ <= WARP_SHARE * total, f"{differ} of {total} pixel values differ"
    return differ, total, fired


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", ["96x96", "120x100"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_new_transform_equals_the_cpu_path(name: str, size: str, device: str) -> None:
    spec, exact = SPECS[name]
    _, _, fired = compare(spec, photos(size), device, exact)
    if name.endswith("-p0.5"):
        assert 0 < fired < len(SEEDS) * COUNT  # the draw went both ways
    else:
        assert fired == len(SEEDS) * COUNT


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", ["256x256", "240x230"])
def test_the_seed7_preset_by_name_equals_the_cpu_path(size: str, device: str) -> None:
    assert "shift_scale_rotate" in repr(TorchBatchPipeline("seed7"))
    compare("seed7", photos(size), device, exact=False)


def test_the_eval_preset_by_name_equals_the_cpu_path() -> None:
    compare("eval", photos("120x100"), "cpu", exact=True)


def test_gray_images_equal_the_cpu_path() -> None:
    spec = {"transforms": [{"name": "hue_saturation_value", "p": 0.7},
                           {"name": "median_blur", "p": 0.7, "blur_limit": [3, 5]},
                           {"name": "shift_scale_rotate", "p": 0.7, "border_mode": "reflect_101"}]}
    compare(spec, photos("120x100", channels=1), "cpu", exact=False)
    exact = [*spec["transforms"][:2], {"name": "random_resized_crop", "height": 50, "width": 70}]
    compare({"transforms": exact}, photos("96x96", channels=1), "cpu", exact=True)


def test_albumentations_dict_form_equals_the_cpu_path() -> None:
    spec = A.to_dict(A.Compose([
        A.HueSaturationValue(p=0.8), A.MedianBlur(blur_limit=(3, 5), p=0.8),
        A.Affine(scale=(0.8, 1.2), rotate=(-30, 30), shear=(-10, 10), translate_px=(-5, 5),
                 border_mode=cv2.BORDER_REFLECT_101, p=0.8)]))
    compare(spec, photos("120x100"), "cpu", exact=False)


@pytest.mark.slow
def test_hue_saturation_value_is_exact_on_every_rgb_colour() -> None:
    """All 2**24 colours in rows 4100 wide: 4096 columns through OpenCV's SIMD loops, 4 through
    its scalar ones (which round where the SIMD loop truncates)."""
    cube = np.stack(np.meshgrid(*[np.arange(256, dtype=np.uint8)] * 3, indexing="ij"), -1)
    width = 4100
    flat = np.zeros((-(-256**3 // width) * width, 3), np.uint8)
    flat[:256**3] = cube.reshape(-1, 3)
    image = flat.reshape(-1, width, 3)
    t = A.HueSaturationValue(p=1)
    params = {"hue_shift": -13.7, "sat_shift": 21.3, "val_shift": -9.9}
    ref = fpixel.shift_hsv(image, **params)
    luts = torch.from_numpy(torch_ops.hsv_tables(t, params, 3)[None])  # type: ignore[index]
    got = torch_ops.shift_hsv(torch.from_numpy(image).permute(2, 0, 1)[None], luts)
    np.testing.assert_array_equal(got[0].permute(1, 2, 0).numpy(), ref)


def test_median_blur_is_exact_on_noise_for_every_kernel() -> None:
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (3, 23, 37, 3), dtype=np.uint8)
    for ksize in (3, 5, 7, 9):
        got = torch_ops.median_blur(as_batch(tuple(images)), ksize)
        for k, image in enumerate(images):
            np.testing.assert_array_equal(as_image(got[k]), cv2.medianBlur(image, ksize))


def test_a_zero_hsv_shift_leaves_the_image_as_albumentations_does() -> None:
    t = A.HueSaturationValue(p=1)
    assert torch_ops.hsv_tables(t, {"hue_shift": 0, "sat_shift": 0, "val_shift": 0}, 3) is None
    x = as_batch(photos("96x96")[:2])
    out = torch_ops.apply(t, x, [{"hue_shift": 0.0, "sat_shift": 0.0, "val_shift": 0.0},
                                 {"hue_shift": 5.0, "sat_shift": 0.0, "val_shift": 0.0}])
    assert torch.equal(out[0], x[0])  # no HSV round trip, which is not the identity
    np.testing.assert_array_equal(as_image(out[1]), fpixel.shift_hsv(photos("96x96")[1], 5.0, 0, 0))


@pytest.mark.parametrize("spec, named", [
    ([{"name": "shift_scale_rotate", "interpolation": "cubic"}, {"name": "median_blur"}],
     ["shift_scale_rotate (interpolation other than linear)"]),
    ([{"name": "normalize"}, {"name": "hue_saturation_value"}, {"name": "median_blur"}],
     ["hue_saturation_value (after normalize", "median_blur (after normalize"]),
    ([{"name": "resize", "height": 8, "width": 8, "interpolation": "area"},
      {"name": "random_resized_crop", "height": 8, "width": 8, "interpolation": "nearest"}],
     ["resize (interpolation other than linear)",
      "random_resized_crop (interpolation other than linear)"]),
])
def test_unsupported_uses_are_named(spec: list[dict[str, Any]], named: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        TorchBatchPipeline({"transforms": spec})
    for name in named:
        assert name in str(caught.value)


def test_an_affine_that_fits_its_output_and_an_area_downscale_are_named() -> None:
    with pytest.raises(SpecError, match=r"Affine \(fit_output\).*Resize \(area_for_downscale\)"):
        TorchBatchPipeline(A.to_dict(A.Compose([A.Affine(rotate=10, fit_output=True),
                                                A.Resize(8, 8, area_for_downscale="image")])))
