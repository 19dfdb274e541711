"""TorchBatchPipeline against the CPU path: same params, same pixels, sample by sample.

The oracle is ``ImagePipeline(spec)(image, seed=s, index=i, return_params=True)`` on each sample
of real photos (skimage's astronaut and coffee, cut and resized to 64x64 and 100x80), over two
seeds and the indices 0..15 and 1000..1015. Tolerance: none, for every transform -- pixels are
compared with ``assert_array_equal`` and params with ``==``. Flips and crops only move pixels;
brightness_contrast, gamma and normalize are albucore's own uint8 lookup tables (built by the
transform's apply() on a 256-value ramp, gathered on the device); the image mean of
``brightness_by_max: false`` is an exact integer sum (see ``augsvc.image.torch_batch``).

Where ``p < 1`` crops or normalize leave samples in different sizes or dtypes, the whole batch is
refused and each group of one size and dtype is checked through ``indices=``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

from augsvc.errors import InputError, SpecError
from augsvc.image import ImagePipeline
from augsvc.image.torch_batch import SUPPORTED, TorchBatchPipeline

SIZES = {"64x64": (64, 64), "100x80": (100, 80)}
SEEDS = (7, 2**64 - 1)
STARTS = (0, 1000)
COUNT = 16
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="needs a CUDA GPU"))]

ONE = {  # every supported transform with its fields (crops fit both sizes; 41 and 57 leave odd
    # margins, so the centre's floor division shows)
    "horizontal_flip": {},
    "vertical_flip": {},
    "random_crop": {"height": 48, "width": 40},
    "center_crop": {"height": 41, "width": 57},
    "brightness_contrast": {"brightness_limit": 0.3, "contrast_limit": 0.4},
    "brightness_contrast_by_mean": {"brightness_by_max": False},
    "gamma": {"gamma_limit": [60, 160]},
    "normalize": {},
}
SPECS: dict[str, list[dict[str, Any]]] = {
    f"{key}-p{p}": [{"name": key.removesuffix("_by_mean"), "p": p, **fields}]
    for key, fields in ONE.items() for p in (1.0, 0.5)
}
SPECS["all-p1"] = [
    {"name": "random_crop", "height": 56, "width": 50, "p": 1.0},
    {"name": "horizontal_flip", "p": 1.0},
    {"name": "vertical_flip", "p": 1.0},
    {"name": "center_crop", "height": 41, "width": 37, "p": 1.0},
    {"name": "brightness_contrast", "p": 1.0, "brightness_by_max": False},
    {"name": "gamma", "p": 1.0},
    {"name": "normalize", "p": 1.0},
]
SPECS["all-default-p"] = [  # the registry's default probabilities, a p < 1 crop among them
    {"name": "random_crop", "height": 56, "width": 50, "p": 0.5},
    {"name": "horizontal_flip"},
    {"name": "vertical_flip"},
    {"name": "brightness_contrast"},
    {"name": "gamma"},
    {"name": "center_crop", "height": 41, "width": 37},
    {"name": "normalize", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.3, 0.25], "max_pixel_value": 250},
]


@cache
def photos(size: str, channels: int = 3) -> tuple[np.ndarray, ...]:
    """COUNT distinct real photos of ``size`` (HxWx3, or HxW for gray): astronaut and coffee in
    turn, each cut at a different place, resized with INTER_AREA."""
    height, width = SIZES[size]
    out = []
    for k in range(COUNT):
        photo = skdata.astronaut() if k % 2 == 0 else skdata.coffee()
        y, x = 9 * k, 13 * k
        cut = photo[y:y + 360, x:x + 300 + 5 * k]
        image = cv2.resize(cut, (width, height), interpolation=cv2.INTER_AREA)
        out.append(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if channels == 1 else image)
    return tuple(out)


def as_batch(images: tuple[np.ndarray, ...] | list[np.ndarray]) -> torch.Tensor:
    batch = np.stack(images)
    batch = batch[:, None] if batch.ndim == 3 else batch.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(batch))


def as_image(sample: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor -> the CPU path's layout: HxWxC, or HxW for one channel."""
    array = sample.cpu().numpy()
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def check_parity(spec: Any, images: tuple[np.ndarray, ...], seed: int, where: list[int],
                 device: str) -> list[list[dict[str, Any]]]:
    """Assert TorchBatchPipeline(spec) equals the CPU path on ``images`` as indices ``where``;
    return the CPU params."""
    cpu = ImagePipeline(spec)
    refs = [cpu(image, seed=seed, index=i, return_params=True)
            for image, i in zip(images, where, strict=True)]
    batch = TorchBatchPipeline(spec)
    x = as_batch(images).to(device)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for k, ref in enumerate(refs):
        groups.setdefault((ref.image.shape, ref.image.dtype), []).append(k)
    if len(groups) > 1:
        with pytest.raises(InputError, match="different sizes or dtypes"):
            batch(x, seed=seed, indices=where)
    for positions in groups.values():
        if len(groups) == 1:
            out, params = batch(x, seed=seed, start=where[0], return_params=True)
        else:
            out, params = batch(x[positions], seed=seed, indices=[where[k] for k in positions],
                                return_params=True)
        assert out.device == x.device
        assert params == [refs[k].params for k in positions]
        for j, k in enumerate(positions):
            assert out[j].dtype == torch.from_numpy(refs[k].image).dtype
            np.testing.assert_array_equal(as_image(out[j]), refs[k].image,
                                          err_msg=f"sample {k} (index {where[k]})")
    return [ref.params or [] for ref in refs]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("name", sorted(SPECS))
def test_params_and_pixels_equal_the_cpu_path(name: str, size: str, device: str) -> None:
    fired = []
    for seed in SEEDS:
        for start in STARTS:
            params = check_parity({"transforms": SPECS[name]}, photos(size), seed,
                                  list(range(start, start + COUNT)), device)
            fired += [len(p) for p in params]
    if name.endswith("-p0.5"):  # the draw really went both ways
        assert 0 < sum(fired) < len(fired)


def test_gray_batches_equal_the_cpu_path() -> None:
    spec = {"transforms": [*SPECS["all-default-p"][:-1],
                           {"name": "normalize", "mean": [0.45], "std": [0.22]}]}
    images = photos("100x80", channels=1)
    for seed in SEEDS:
        check_parity(spec, images, seed, list(range(1000, 1000 + COUNT)), "cpu")


def test_albumentations_dict_form_equals_the_cpu_path() -> None:
    spec = A.to_dict(A.Compose([A.RandomCrop(50, 60, p=0.9), A.HorizontalFlip(p=0.5),
                                A.RandomGamma((70, 130), p=0.7),
                                A.RandomBrightnessContrast(0.3, 0.3, p=0.6)], p=0.8))
    check_parity(spec, photos("64x64"), 3, list(range(COUNT)), "cpu")


def test_a_per_channel_normalize_on_gray_fails_as_on_the_cpu() -> None:
    images = photos("64x64", channels=1)
    spec = {"transforms": [{"name": "normalize"}]}  # three means for one channel
    with pytest.raises(InputError, match="3 mean values for an image with 1 channels"):
        ImagePipeline(spec)(images[0], seed=1, index=0)
    with pytest.raises(InputError, match="3 mean values for an image with 1 channels"):
        TorchBatchPipeline(spec)(as_batch(images), seed=1)


@pytest.mark.parametrize("spec, named", [
    ([{"name": "gaussian_blur"}, {"name": "horizontal_flip"}, {"name": "to_gray"}],
     ["gaussian_blur", "to_gray"]),
    ([{"one_of": [{"name": "horizontal_flip"}, {"name": "clahe"}]},
      {"some_of": [{"name": "gamma"}], "n": 1}, {"sequential": [{"name": "gamma"}]},
      {"sometimes": [{"name": "vertical_flip"}]}, {"name": "coarse_dropout"}],
     ["one_of (group)", "some_of (group)", "sequential (group)", "sometimes (group)", "clahe",
      "coarse_dropout"]),
    ([{"name": "random_crop", "height": 8, "width": 8, "pad_if_needed": True},
      {"name": "normalize"}, {"name": "gamma"}, {"name": "gaussian_noise"}],
     ["random_crop (pad_if_needed)", "gamma (after normalize", "gaussian_noise"]),
])
def test_unsupported_transforms_and_groups_are_all_named(spec: list[dict[str, Any]],
                                                         named: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        TorchBatchPipeline({"transforms": spec})
    message = str(caught.value)
    for name in named:
        assert name in message
    assert "horizontal_flip" in message.split("allowed:")[1]  # says what would do
    assert ", ".join(SUPPORTED) in message


def test_albumentations_dict_groups_and_classes_are_named() -> None:
    spec = A.to_dict(A.Compose([A.OneOf([A.HorizontalFlip(), A.VerticalFlip()]),
                                A.GaussianBlur(), A.Normalize(normalization="image")]))
    with pytest.raises(SpecError, match=r"OneOf \(group\).*GaussianBlur.*Normalize"):
        TorchBatchPipeline(spec)


def test_masks_boxes_and_keypoints_are_refused() -> None:
    batch = TorchBatchPipeline({"transforms": [{"name": "horizontal_flip"}]})
    x = as_batch(photos("64x64")[:2])
    with pytest.raises(SpecError, match="masks= and bboxes= only; mask, keypoints not supported"):
        batch(x, seed=1, mask=np.zeros((64, 64), np.uint8), keypoints=[[1, 2]])
    with pytest.raises(TypeError, match="unexpected arguments: colour"):
        batch(x, seed=1, colour=1)


def test_a_batch_of_mixed_sizes_is_refused_with_a_clear_error() -> None:
    batch = TorchBatchPipeline({"transforms": [{"name": "horizontal_flip"}]})
    mixed = [as_batch([photos("64x64")[0]])[0], as_batch([photos("100x80")[0]])[0]]
    with pytest.raises(InputError, match=r"one size, got \(C, H, W\) \[\(3, 64, 64\), \(3, 100, 80\)\]"):
        batch(mixed, seed=1)
    same = list(as_batch(photos("64x64")[:4]))  # a list of one size is stacked
    assert torch.equal(batch(same, seed=1), batch(torch.stack(same), seed=1))


@pytest.mark.parametrize("images, call, match", [
    (torch.zeros(2, 3, 8, 8), {}, "uint8 tensor"),
    (torch.zeros(2, 4, 8, 8, dtype=torch.uint8), {}, "1 or 3 channels, got 4"),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), {}, r"\(N, C, H, W\)"),
    (torch.zeros(0, 3, 8, 8, dtype=torch.uint8), {}, "empty"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), {"indices": [1]}, "indices has 1 entries for 2"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), {"indices": [1, -1]}, "non-negative"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), {"seed": None}, "seed is required"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), {"seed": -1}, "seed must be in"),
])
def test_malformed_inputs_are_refused(images: torch.Tensor, call: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        TorchBatchPipeline({"transforms": [{"name": "gamma"}]})(images, **{"seed": 1, **call})


def test_a_crop_larger_than_the_image_names_the_transform_and_sample() -> None:
    batch = TorchBatchPipeline({"transforms": [{"name": "center_crop", "height": 70, "width": 10}]})
    with pytest.raises(InputError, match=r"center_crop on sample 0 \(index 5, image 64x64\)"):
        batch(as_batch(photos("64x64")[:2]), seed=1, start=5)


def test_indices_and_start_mean_what_they_mean_on_the_cpu() -> None:
    spec = {"transforms": SPECS["all-p1"]}
    images = photos("100x80")
    cpu, batch, x = ImagePipeline(spec), TorchBatchPipeline(spec), as_batch(images)
    where = [5, 1000, 3, 3, 0, 2**40, 7, 7, 1, 2, 3, 4, 11, 12, 13, 14]
    out = batch(x, seed=9, indices=where)
    for k, index in enumerate(where):
        np.testing.assert_array_equal(as_image(out[k]), cpu(images[k], seed=9, index=index).image)
    assert torch.equal(out[2], batch(x[2:4], seed=9, indices=[3, 3])[0])  # same index, same draw
    assert torch.equal(batch(x, seed=9, start=1000), batch(x, seed=9, indices=range(1000, 1016)))
    split = torch.cat([batch(x[:5], seed=9, start=1000), batch(x[5:], seed=9, start=1005)])
    assert torch.equal(split, batch(x, seed=9, start=1000))  # no dependence on the batch split


def test_the_same_call_twice_gives_the_same_output_and_leaves_the_input_alone() -> None:
    spec = {"transforms": SPECS["all-default-p"][1:5]}  # no size change: one tensor
    batch, x = TorchBatchPipeline(spec), as_batch(photos("64x64"))
    before = x.clone()
    first, params = batch(x, seed=4, start=100, return_params=True)
    batch(x, seed=5, start=3)  # another call between
    ImagePipeline(spec)(photos("64x64")[0], seed=6, index=1)
    again, params_again = batch(x, seed=4, start=100, return_params=True)
    assert torch.equal(first, again) and params == params_again
    assert not torch.equal(first, batch(x, seed=5, start=100))  # the seed matters
    assert torch.equal(x, before)
    nothing = TorchBatchPipeline({"transforms": [{"name": "gamma", "p": 0.0}]})(x, seed=1)
    nothing[0] += 1  # an output is never the input itself
    assert torch.equal(x, before)
