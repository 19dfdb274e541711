"""Every registered image transform against an explicit albumentations oracle.

``CASES`` has one row per entry of ``IMAGE_TRANSFORMS``: the augsvc fields to use and, written
out by hand, the albumentations class and arguments they must amount to. The oracle is a plain
``A.Compose`` of that class driven by the same per-sample random streams as the pipeline
(``SampleRandom().reseed(seed, index)``), so the pipeline's output must equal it byte for byte.
The arguments are deliberately not derived from ``info.build``/``info.to_albu``: the test would
otherwise compare the code with itself.

Adding a transform to the registry means adding a row here; ``test_every_transform_has_a_row``
names the missing ones.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
import pytest

from augsvc.errors import InputError
from augsvc.image import IMAGE_TRANSFORMS, ImagePipeline
from augsvc.seeding import SampleRandom
from tests.conftest import structured_image

H, W = 64, 80
RGB = structured_image(H, W)
GRAY = structured_image(H, W, channels=1)
RGBA = structured_image(H, W, channels=4)
RGB_FLOAT = (RGB.astype(np.float32) / 255).astype(np.float32)
INPUTS = {"gray": GRAY, "rgb_float": RGB_FLOAT, "rgba": RGBA}
SEEDS = [(0, 0), (1, 5), (123_456_789, 42), (2**64 - 1, 3)]

# Plain albumentations (the oracle) warns on every sample when a colour transform meets a gray
# image; augsvc does the same work silently (test_gray_inputs_raise_no_warnings).
pytestmark = [
    pytest.mark.filterwarnings("ignore:HueSaturationValue. hue_shift:UserWarning"),
    pytest.mark.filterwarnings("ignore:The image is already gray:UserWarning"),
]

Kind = Literal["flip", "crop", "resize", "warp", "dropout", "pixel"]
"""How a transform moves targets: flips and crops exactly, resizes up to nearest-neighbour
rounding, warps (rotation/affine) up to interpolation and box enlargement; dropout erases;
pixel transforms touch only the image."""


@dataclass(frozen=True)
class Case:
    """One registry entry under test.

    Attributes:
        fields: the augsvc fields (besides name and p), non-default where sensible.
        albu: the albumentations class the oracle builds.
        kwargs: its keyword arguments (cv2 flags as numbers), written out by hand.
        kind: how it moves mask, boxes and keypoints.
        size: output (height, width) where the transform changes the size.
        dtype: output dtype where the transform changes it.
        target_fields: overrides for the target tests (an image that is a function of the mask
            needs constant borders filled with 0).
    """

    fields: dict[str, Any]
    albu: type[A.BasicTransform]
    kwargs: dict[str, Any]
    kind: Kind
    size: tuple[int, int] | None = None
    dtype: type | None = None
    target_fields: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "horizontal_flip": Case({}, A.HorizontalFlip, {}, "flip"),
    "vertical_flip": Case({}, A.VerticalFlip, {}, "flip"),
    "random_crop": Case(
        {"height": 40, "width": 88, "pad_if_needed": True, "fill": [10, 20, 30], "fill_mask": 0},
        A.RandomCrop,
        {"height": 40, "width": 88, "pad_if_needed": True, "border_mode": cv2.BORDER_CONSTANT,
         "fill": (10.0, 20.0, 30.0), "fill_mask": 0.0},
        "crop", size=(40, 88), target_fields={"fill": 0}),
    "center_crop": Case(
        {"height": 40, "width": 48},
        A.CenterCrop,
        {"height": 40, "width": 48, "pad_if_needed": False, "border_mode": cv2.BORDER_CONSTANT,
         "fill": 0.0, "fill_mask": 0.0},
        "crop", size=(40, 48)),
    "random_resized_crop": Case(
        {"height": 48, "width": 56, "scale": [0.3, 0.9], "ratio": [0.8, 1.25],
         "interpolation": "cubic"},
        A.RandomResizedCrop,
        {"size": (48, 56), "scale": (0.3, 0.9), "ratio": (0.8, 1.25),
         "interpolation": cv2.INTER_CUBIC},
        "resize", size=(48, 56)),
    "brightness_contrast": Case(
        {"brightness_limit": [0.1, 0.3], "contrast_limit": 0.25, "brightness_by_max": False},
        A.RandomBrightnessContrast,
        {"brightness_limit": (0.1, 0.3), "contrast_limit": (-0.25, 0.25),
         "brightness_by_max": False},
        "pixel"),
    "hue_saturation_value": Case(
        {"hue_shift_limit": 30, "sat_shift_limit": [-40, 10], "val_shift_limit": [5, 25]},
        A.HueSaturationValue,
        {"hue_shift_limit": (-30, 30), "sat_shift_limit": (-40, 10), "val_shift_limit": (5, 25)},
        "pixel"),
    "median_blur": Case(
        {"blur_limit": [5, 9]}, A.MedianBlur, {"blur_limit": (5, 9)}, "pixel"),
    "gamma": Case(
        {"gamma_limit": [60, 150]}, A.RandomGamma, {"gamma_limit": (60, 150)}, "pixel"),
    "shift_scale_rotate": Case(
        {"shift_limit": 0.1, "scale_limit": [-0.2, 0.1], "rotate_limit": 30,
         "interpolation": "cubic", "border_mode": "reflect_101"},
        A.Affine,
        {"scale": (0.8, 1.1), "translate_percent": {"x": (-0.1, 0.1), "y": (-0.1, 0.1)},
         "rotate": (-30.0, 30.0), "shear": (0.0, 0.0), "interpolation": cv2.INTER_CUBIC,
         "mask_interpolation": cv2.INTER_NEAREST, "border_mode": cv2.BORDER_REFLECT_101,
         "fill": 0.0, "fill_mask": 0.0, "fit_output": False, "keep_ratio": True,
         "rotate_method": "largest_box"},
        "warp", target_fields={"border_mode": "constant"}),
    "rotate": Case(
        {"limit": 40, "interpolation": "nearest", "border_mode": "reflect"},
        A.Rotate,
        {"limit": (-40, 40), "interpolation": cv2.INTER_NEAREST, "border_mode": cv2.BORDER_REFLECT,
         "fill": 0.0, "fill_mask": 0.0, "crop_border": False},
        "warp", target_fields={"border_mode": "constant"}),
    "gaussian_blur": Case(
        {"blur_limit": [5, 9], "sigma_limit": [1.0, 2.5]},
        A.GaussianBlur, {"blur_limit": (5, 9), "sigma_limit": (1.0, 2.5)}, "pixel"),
    "gaussian_noise": Case(
        {"std_range": [0.05, 0.1], "mean_range": [-0.05, 0.05], "per_channel": False},
        A.GaussNoise,
        {"std_range": (0.05, 0.1), "mean_range": (-0.05, 0.05), "per_channel": False},
        "pixel"),
    "normalize": Case(
        {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "max_pixel_value": 255},
        A.Normalize,
        {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3), "max_pixel_value": 255.0},
        "pixel", dtype=np.float32),
    "resize": Case(
        {"height": 48, "width": 100, "interpolation": "area"},
        A.Resize, {"height": 48, "width": 100, "interpolation": cv2.INTER_AREA},
        "resize", size=(48, 100)),
    "to_gray": Case(
        {"num_output_channels": 3, "method": "average"},
        A.ToGray, {"num_output_channels": 3, "method": "average"}, "pixel"),
    "clahe": Case(
        {"clip_limit": [2, 6], "tile_grid_size": [4, 4]},
        A.CLAHE, {"clip_limit": (2, 6), "tile_grid_size": (4, 4)}, "pixel"),
    "coarse_dropout": Case(
        {"num_holes_range": [2, 4], "hole_height_range": [0.2, 0.3],
         "hole_width_range": [0.2, 0.3], "fill": 128, "fill_mask": 5},
        A.CoarseDropout,
        {"num_holes_range": (2, 4), "hole_height_range": (0.2, 0.3),
         "hole_width_range": (0.2, 0.3), "fill": 128.0, "fill_mask": 5.0},
        "dropout", target_fields={"fill": 0, "fill_mask": 0}),
}
NAMES = sorted(CASES)
GEOMETRIC = [n for n in NAMES if CASES[n].kind in ("flip", "crop", "resize", "warp")]
PIXEL = [n for n in NAMES if CASES[n].kind == "pixel"]
KEEP_ALPHA_COLOUR = ["clahe", "hue_saturation_value", "to_gray"]


def pipeline(name: str, p: float = 1.0, *, targets: bool = False, **options: Any) -> ImagePipeline:
    case = CASES[name]
    fields = {**case.fields, **case.target_fields} if targets else case.fields
    return ImagePipeline({"transforms": [{"name": name, "p": p, **fields}], **options})


def oracle(name: str, image: np.ndarray, seed: int, index: int, **compose: Any) -> dict:
    """The plain albumentations result for ``image`` under (seed, index)."""
    case = CASES[name]
    transform = A.Compose([case.albu(**case.kwargs, p=1.0)], **compose)
    rnd = SampleRandom()
    rnd.reseed(seed, index)
    transform.set_random_state(rnd.numpy, rnd.python)
    return transform(image=image)


def expected_shape(name: str, image: np.ndarray) -> tuple[int, ...]:
    size = CASES[name].size or image.shape[:2]
    return (*size, *image.shape[2:])


def expected_dtype(name: str, image: np.ndarray) -> np.dtype:
    return np.dtype(CASES[name].dtype or image.dtype)


def describe(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"{a.shape} {a.dtype} vs {b.shape} {b.dtype}"
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return f"{int((diff > 0).sum())} values differ, max difference {diff.max():g}"


# --------------------------------------------------------------------------------------------
# The table itself
# --------------------------------------------------------------------------------------------


def test_every_transform_has_a_row() -> None:
    missing = sorted(set(IMAGE_TRANSFORMS) - set(CASES))
    extra = sorted(set(CASES) - set(IMAGE_TRANSFORMS))
    assert not missing, f"add rows to CASES for the registered transforms {missing}"
    assert not extra, f"CASES has rows for transforms that are not registered: {extra}"


@pytest.mark.parametrize("name", NAMES)
def test_row_describes_the_entry(name: str) -> None:
    case, info = CASES[name], IMAGE_TRANSFORMS[name]
    assert info.albu is case.albu, f"{name} wraps {info.albu.__name__}, row says {case.albu}"
    # The fields of the row are valid; every field named exists in the schema.
    info.validate(case.fields, "test")
    pixel_only = info.targets == ("image",)
    assert pixel_only == (case.kind == "pixel"), (
        f"{name}: targets {info.targets} but the row's kind is {case.kind!r}")
    if not pixel_only:
        assert set(info.targets) == {"image", "mask", "bboxes", "keypoints"}, info.targets


# --------------------------------------------------------------------------------------------
# RGB uint8: the oracle, shapes and dtypes, and that something happens
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_rgb_output_equals_the_albumentations_oracle(name: str) -> None:
    pipe = pipeline(name)
    for seed, index in SEEDS:
        out = pipe(RGB, seed=seed, index=index).image
        assert out.shape == expected_shape(name, RGB), f"{name}: shape {out.shape}"
        assert out.dtype == expected_dtype(name, RGB), f"{name}: dtype {out.dtype}"
        want = oracle(name, RGB, seed, index)["image"]
        assert np.array_equal(out, want), (
            f"{name} (seed {seed}, index {index}) differs from {CASES[name].albu.__name__}"
            f"({CASES[name].kwargs}): {describe(out, want)}")


@pytest.mark.parametrize("name", NAMES)
def test_transform_changes_the_image(name: str) -> None:
    pipe = pipeline(name)
    changed = []
    for seed, index in SEEDS:
        out = pipe(RGB, seed=seed, index=index).image
        same = out.shape == RGB.shape and out.dtype == RGB.dtype and np.array_equal(out, RGB)
        changed.append(not same)
    assert any(changed), f"{name} at p=1 returned the input unchanged for every seed"
    if name in ("horizontal_flip", "vertical_flip", "center_crop", "resize", "normalize",
                "to_gray"):
        return  # not random: every seed gives the same result
    outs = {pipe(RGB, seed=s, index=i).image.tobytes() for s, i in SEEDS}
    assert len(outs) > 1, f"{name} gave the same output for every (seed, index)"


# --------------------------------------------------------------------------------------------
# Gray, float and RGBA inputs
# --------------------------------------------------------------------------------------------


def check_float_range(name: str, out: np.ndarray) -> None:
    """A float image in [0, 1] stays there, but for two things albumentations does on purpose.

    ``fill`` is in the image's own units, so a fill of 30 paints 30.0 into a float image; and
    cubic interpolation overshoots at edges and is not clipped for float images.
    """
    fields = CASES[name].fields
    fill = np.atleast_1d(fields.get("fill", 0.0)).astype(np.float32)
    lo, hi = (-0.25, 1.25) if fields.get("interpolation") in ("cubic", "lanczos") else (0.0, 1.0)
    outside = (out < lo) | (out > hi)
    values = out[outside] if fill.size == 1 else out[outside.any(axis=-1)]
    expect = fill if fill.size == 1 else fill[None, :]
    assert (values == expect).all(), (
        f"{name} on a float [0, 1] image: values in [{out.min()}, {out.max()}] that are not "
        f"the fill {fill}")


@pytest.mark.parametrize("kind", sorted(INPUTS))
@pytest.mark.parametrize("name", NAMES)
def test_other_inputs(name: str, kind: str) -> None:
    if name == "normalize" and kind in ("rgba", "gray"):
        return  # 3 means for 1 or 4 channels is refused: test_normalize_follows_its_formula
    image = INPUTS[kind]
    pipe = pipeline(name)
    keep_alpha = IMAGE_TRANSFORMS[name].keep_alpha
    for seed, index in SEEDS[:2]:
        out = pipe(image, seed=seed, index=index).image
        assert out.shape == expected_shape(name, image), (
            f"{name} on {kind} {image.shape}: shape {out.shape}")
        assert out.dtype == expected_dtype(name, image), f"{name} on {kind}: dtype {out.dtype}"
        assert np.isfinite(out).all(), f"{name} on {kind}: non-finite values"
        if kind == "rgb_float" and name != "normalize":
            check_float_range(name, out)
        if kind == "rgba" and keep_alpha:
            assert np.array_equal(out[..., 3], image[..., 3]), f"{name} changed the alpha channel"
            want = oracle(name, np.ascontiguousarray(image[..., :3]), seed, index)["image"]
            assert np.array_equal(out[..., :3], want), (
                f"{name} on RGBA: RGB channels differ from {CASES[name].albu.__name__} on the "
                f"RGB channels alone: {describe(out[..., :3], want)}")
        else:
            want = oracle(name, image, seed, index)["image"]
            assert np.array_equal(out, want), (
                f"{name} on {kind} (seed {seed}, index {index}) differs from the oracle: "
                f"{describe(out, want)}")


@pytest.mark.parametrize("name", KEEP_ALPHA_COLOUR)
def test_colour_transforms_keep_alpha_exactly(name: str) -> None:
    pipe = pipeline(name)
    for seed, index in SEEDS:
        out = pipe(RGBA, seed=seed, index=index).image
        assert out.shape == RGBA.shape, f"{name}: RGBA became {out.shape}"
        assert np.array_equal(out[..., 3], RGBA[..., 3]), f"{name} changed the alpha channel"
        assert not np.array_equal(out[..., :3], RGBA[..., :3]), f"{name} did not change RGB"


def test_rgba_inputs_keep_alpha_under_to_gray_with_one_channel() -> None:
    # With one gray channel, the RGBA result is gray + alpha.
    pipe = ImagePipeline([{"name": "to_gray", "p": 1, "num_output_channels": 1}])
    out = pipe(RGBA, seed=0).image
    assert out.shape == (H, W, 2), out.shape
    assert np.array_equal(out[..., 1], RGBA[..., 3]), "alpha changed"
    gray = pipe(np.ascontiguousarray(RGBA[..., :3]), seed=0).image
    assert np.array_equal(out[..., 0], gray.reshape(H, W))


@pytest.mark.parametrize("name", [n for n in PIXEL if n != "normalize"])  # normalize: see above
def test_pixel_transforms_keep_four_channels(name: str) -> None:
    out = pipeline(name)(RGBA, seed=4).image
    assert out.ndim == 3 and out.shape[-1] == 4, f"{name}: RGBA became {out.shape}"


@pytest.mark.parametrize("name", [n for n in NAMES if IMAGE_TRANSFORMS[n].keep_alpha])
def test_rgb_result_does_not_depend_on_alpha(name: str) -> None:
    """keep_alpha transforms work on RGB: the alpha values must not leak into the colours."""
    pipe = pipeline(name)
    other = RGBA.copy()
    other[..., 3] = 255 - other[..., 3] // 4
    for seed, index in SEEDS:
        a = pipe(RGBA, seed=seed, index=index).image
        b = pipe(other, seed=seed, index=index).image
        assert np.array_equal(a[..., :3], b[..., :3]), (
            f"{name} (seed {seed}): the RGB result depends on the alpha channel: "
            f"{describe(a[..., :3], b[..., :3])}")
        assert np.array_equal(b[..., 3], other[..., 3])


def test_normalize_follows_its_formula() -> None:
    """(img / max_pixel_value - mean) / std per channel, on every input kind."""
    case = CASES["normalize"]
    mean, std = np.array(case.kwargs["mean"]), np.array(case.kwargs["std"])
    pipe = pipeline("normalize")
    rgb = pipe(RGB, seed=0).image
    np.testing.assert_allclose(rgb, (RGB / 255.0 - mean) / std, atol=1e-5)
    as_float = pipe(RGB_FLOAT, seed=0).image  # max_pixel_value=255 applies to floats too
    np.testing.assert_allclose(as_float, (RGB_FLOAT / 255.0 - mean) / std, atol=1e-5)
    for image in (GRAY, RGBA):  # albumentations would silently use mean[0] and std[0]
        with pytest.raises(InputError, match=r"normalize has 3 mean values for an image with"):
            pipe(image, seed=0)
    one = ImagePipeline([{"name": "normalize", "mean": 0.5, "std": 0.25}])(GRAY, seed=0).image
    np.testing.assert_allclose(one, (GRAY / 255.0 - 0.5) / 0.25, atol=1e-5)
    four = ImagePipeline([{"name": "normalize", "mean": [0.1, 0.2, 0.3, 0.4],
                           "std": [0.5, 0.6, 0.7, 0.8]}])(RGBA, seed=0).image
    want = (RGBA / 255.0 - np.array([0.1, 0.2, 0.3, 0.4])) / np.array([0.5, 0.6, 0.7, 0.8])
    np.testing.assert_allclose(four, want, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gray_inputs_raise_no_warnings(name: str) -> None:
    if name == "normalize":
        return  # refuses 3 means for one channel, tested above
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipeline(name)(GRAY, seed=0)


@pytest.mark.parametrize(
    ("name", "fields", "image", "needle"),
    [
        ("coarse_dropout", {"fill": [255, 0, 128]}, GRAY, ""),
        ("coarse_dropout", {"fill": [255, 0, 128]}, RGBA, "channels"),
        ("clahe", {}, RGBA[..., :2].copy(), "channel"),
        ("to_gray", {}, RGBA[..., :2].copy(), "channel"),
        ("random_crop", {"height": 70, "width": 20}, GRAY, "pad_if_needed"),
    ],
    ids=["dropout-rgb-fill-on-gray", "dropout-rgb-fill-on-rgba", "clahe-2ch", "to_gray-2ch",
         "crop-too-tall"],
)
def test_inputs_albumentations_cannot_take_raise_input_error(
        name: str, fields: dict, image: np.ndarray, needle: str) -> None:
    pipe = ImagePipeline([{"name": name, "p": 1, **fields}])
    with pytest.raises(InputError) as info:
        pipe(image, seed=0, index=2)
    message = str(info.value)
    assert message.startswith(f"{name} on sample 2"), f"the message does not name {name}: {message}"
    assert needle in message, message


# --------------------------------------------------------------------------------------------
# Targets: mask, boxes and keypoints move with the image
# --------------------------------------------------------------------------------------------

Y0, Y1, X0, X1 = 12, 36, 16, 48  # the rectangle: rows Y0..Y1-1, columns X0..X1-1
CORNERS = {2: (X0, Y0), 3: (X1 - 1, Y0), 4: (X0, Y1 - 1), 5: (X1 - 1, Y1 - 1)}
MASK = np.zeros((H, W), np.uint8)
MASK[Y0:Y1, X0:X1] = 1
for _label, (_x, _y) in CORNERS.items():
    MASK[_y, _x] = _label  # each corner pixel carries its keypoint's label
SCENE = np.repeat((MASK > 0)[..., None] * np.uint8(200), 3, axis=-1)
BOX = [X0, Y0, X1, Y1, 7]
KEYPOINTS = [[x, y, label] for label, (x, y) in CORNERS.items()]
TOLERANCE = {"flip": 0, "crop": 0, "resize": 1, "warp": 1}
"""How far (px, per axis) a keypoint may land from its corner pixel, and a box side from the
mask's extent: nearest-neighbour masks round positions by up to a pixel."""
BOX_TOLERANCE = {"flip": 0, "crop": 0, "resize": 1, "warp": 2}
"""Rotated boxes are the bounds of the rotated corners: a little looser than the mask."""


def mask_box(region: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(region)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def band(region: np.ndarray) -> np.ndarray:
    """Pixels within 1 px of the region's border (inside or outside)."""
    u8 = region.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    return cv2.dilate(u8, kernel).astype(bool) & ~cv2.erode(u8, kernel).astype(bool)


def run_targets(name: str, seed: int, index: int) -> tuple[Any, dict]:
    pipe = pipeline(name, targets=True)
    out = pipe(SCENE, mask=MASK, bboxes=[BOX], keypoints=KEYPOINTS, seed=seed, index=index)
    case = CASES[name]
    kwargs = dict(case.kwargs)
    for key, value in case.target_fields.items():  # the same overrides, in albumentations terms
        kwargs[key] = cv2.BORDER_CONSTANT if key == "border_mode" else float(value)
    transform = A.Compose([case.albu(**kwargs, p=1.0)],
                          bbox_params=A.BboxParams(format="pascal_voc"),
                          keypoint_params=A.KeypointParams(format="xy"))
    rnd = SampleRandom()
    rnd.reseed(seed, index)
    transform.set_random_state(rnd.numpy, rnd.python)
    want = transform(image=SCENE, mask=MASK, bboxes=np.array([BOX], np.float64),
                     keypoints=np.array(KEYPOINTS, np.float64))
    return out, want


@pytest.mark.parametrize("name", GEOMETRIC)
def test_geometry_moves_mask_boxes_and_keypoints_with_the_image(name: str) -> None:
    kind = CASES[name].kind
    tol = TOLERANCE[kind]
    for seed, index in SEEDS:
        out, want = run_targets(name, seed, index)
        where = f"{name} (seed {seed}, index {index})"
        # The pipeline agrees with albumentations on every target...
        assert np.array_equal(out.image, want["image"]), f"{where}: image differs from oracle"
        assert np.array_equal(out.mask, want["mask"]), f"{where}: mask differs from oracle"
        np.testing.assert_allclose(out.bboxes, np.asarray(want["bboxes"]).reshape(-1, 5),
                                   atol=1e-4, err_msg=f"{where}: boxes differ from oracle")
        np.testing.assert_allclose(out.keypoints, np.asarray(want["keypoints"]).reshape(-1, 3),
                                   atol=1e-4, err_msg=f"{where}: keypoints differ from oracle")
        # ...and the targets agree with each other.
        assert out.mask.shape == out.image.shape[:2], f"{where}: mask {out.mask.shape}"
        region, shown = out.mask > 0, out.image.max(axis=-1) > 100
        if kind in ("flip", "crop"):
            assert np.array_equal(shown, region), f"{where}: image region != mask region"
        else:
            off = shown ^ region
            assert not (off & ~band(region)).any(), (
                f"{where}: image and mask regions differ by more than 1 px "
                f"({int((off & ~band(region)).sum())} pixels)")
        if not region.any():
            assert len(out.bboxes) == 0, f"{where}: rectangle gone but box kept: {out.bboxes}"
            continue
        assert out.bboxes.shape == (1, 5), f"{where}: boxes {out.bboxes}"
        assert out.bboxes[0, 4] == 7, f"{where}: label column lost: {out.bboxes}"
        box, truth = out.bboxes[0, :4], mask_box(region)
        assert np.abs(box - truth).max() <= BOX_TOLERANCE[kind] + 1e-4, (
            f"{where}: box {box.round(2)} vs mask extent {truth}")
        check_keypoints(where, kind, out.mask, out.keypoints, tol)


def check_keypoints(where: str, kind: str, mask: np.ndarray, keypoints: np.ndarray,
                    tol: float) -> None:
    labels = set(keypoints[:, 2].astype(int).tolist())
    assert labels <= set(CORNERS), f"{where}: label column changed: {keypoints}"
    assert len(labels) == len(keypoints), f"{where}: keypoints duplicated: {keypoints}"
    for label in CORNERS:
        pixels = np.argwhere(mask == label)[:, ::-1]  # (x, y)
        if kind in ("flip", "crop") and len(pixels):
            assert label in labels, f"{where}: corner {label} is in the image, keypoint dropped"
        if label not in labels:
            continue
        x, y = keypoints[keypoints[:, 2] == label, :2][0]
        if len(pixels) == 0:  # resampling dropped the labelled pixel: land on the rectangle
            assert kind not in ("flip", "crop"), f"{where}: keypoint {label} has no pixel"
            pixels = np.argwhere(mask > 0)[:, ::-1]
        distance = np.maximum(abs(pixels[:, 0] - x), abs(pixels[:, 1] - y)).min()
        assert distance <= tol + 1e-4, (
            f"{where}: keypoint {label} at ({x:.2f}, {y:.2f}) is {distance:.2f} px from its "
            f"corner pixel")


def test_flips_move_targets_to_the_mirrored_place() -> None:
    """Worked by hand: the rectangle's corners swap, the box mirrors."""
    h = pipeline("horizontal_flip")(SCENE, mask=MASK, bboxes=[BOX], keypoints=KEYPOINTS, seed=0)
    assert np.array_equal(h.mask, MASK[:, ::-1]) and np.array_equal(h.image, SCENE[:, ::-1])
    np.testing.assert_allclose(h.bboxes, [[W - X1, Y0, W - X0, Y1, 7]], atol=1e-4)
    np.testing.assert_allclose(h.keypoints, [[W - 1 - x, y, c] for x, y, c in KEYPOINTS])
    v = pipeline("vertical_flip")(SCENE, mask=MASK, bboxes=[BOX], keypoints=KEYPOINTS, seed=0)
    assert np.array_equal(v.mask, MASK[::-1]) and np.array_equal(v.image, SCENE[::-1])
    np.testing.assert_allclose(v.bboxes, [[X0, H - Y1, X1, H - Y0, 7]], atol=1e-4)
    np.testing.assert_allclose(v.keypoints, [[x, H - 1 - y, c] for x, y, c in KEYPOINTS])


def test_center_crop_moves_targets_by_its_offset() -> None:
    out = pipeline("center_crop")(SCENE, mask=MASK, bboxes=[BOX], keypoints=KEYPOINTS, seed=0)
    top, left = (H - 40) // 2, (W - 48) // 2
    assert np.array_equal(out.mask, MASK[top:top + 40, left:left + 48])
    np.testing.assert_allclose(
        out.bboxes, [[X0 - left, Y0 - top, X1 - left, Y1 - top, 7]], atol=1e-4)
    np.testing.assert_allclose(out.keypoints, [[x - left, y - top, c] for x, y, c in KEYPOINTS])


BOX_FORMATS = {
    # format: (boxes in, boxes after a horizontal flip); the last column is a label
    "pascal_voc": ([[X0, Y0, X1, Y1, 7], [0, 0, 10, 5, 9]],
                   [[W - X1, Y0, W - X0, Y1, 7], [W - 10, 0, W, 5, 9]]),
    "coco": ([[X0, Y0, X1 - X0, Y1 - Y0, 7], [0, 0, 10, 5, 9]],
             [[W - X1, Y0, X1 - X0, Y1 - Y0, 7], [W - 10, 0, 10, 5, 9]]),
    "yolo": ([[(X0 + X1) / 2 / W, (Y0 + Y1) / 2 / H, (X1 - X0) / W, (Y1 - Y0) / H, 7],
              [5 / W, 2.5 / H, 10 / W, 5 / H, 9]],
             [[1 - (X0 + X1) / 2 / W, (Y0 + Y1) / 2 / H, (X1 - X0) / W, (Y1 - Y0) / H, 7],
              [1 - 5 / W, 2.5 / H, 10 / W, 5 / H, 9]]),
}


@pytest.mark.parametrize("fmt", sorted(BOX_FORMATS))
def test_box_formats_under_a_flip(fmt: str) -> None:
    boxes, flipped = BOX_FORMATS[fmt]
    pipe = pipeline("horizontal_flip", bbox_format=fmt)
    out = pipe(SCENE, mask=MASK, bboxes=boxes, seed=0)
    atol = 1e-6 if fmt == "yolo" else 1e-4
    np.testing.assert_allclose(out.bboxes, flipped, atol=atol, err_msg=f"{fmt} boxes")
    assert out.bboxes[:, 4].tolist() == [7, 9], "labels lost or reordered"
    # The flipped box still frames the flipped rectangle.
    back = pipeline("horizontal_flip", bbox_format=fmt)(SCENE, bboxes=out.bboxes, seed=0)
    np.testing.assert_allclose(back.bboxes, boxes, atol=atol, err_msg=f"{fmt} twice flipped")


@pytest.mark.parametrize("name", PIXEL)
def test_pixel_transforms_leave_targets_alone(name: str) -> None:
    pipe = pipeline(name)
    boxes = np.array([BOX, [1.5, 2.25, 70.0, 60.5, 3]], np.float64)
    for seed, index in SEEDS[:2]:
        out = pipe(RGB, mask=MASK, bboxes=boxes, keypoints=KEYPOINTS, seed=seed, index=index)
        assert np.array_equal(out.mask, MASK), f"{name} changed the mask"
        # albumentations carries boxes as float32 internally: equal up to float32 rounding.
        np.testing.assert_allclose(out.bboxes, boxes, rtol=0, atol=1e-4,
                                   err_msg=f"{name} moved the boxes")
        np.testing.assert_array_equal(out.keypoints, KEYPOINTS, err_msg=f"{name} moved keypoints")
        # The image is the same as without targets.
        assert np.array_equal(out.image, pipe(RGB, seed=seed, index=index).image)


def test_coarse_dropout_erases_image_and_mask_and_drops_covered_keypoints() -> None:
    grid = [[x, y, 10 + k] for k, (x, y) in
            enumerate((x, y) for y in range(Y0, Y1, 4) for x in range(X0, X1, 4))]
    dropped_any = False
    for seed, index in [*SEEDS, (5, 0), (6, 0), (7, 0)]:
        out, want = run_targets("coarse_dropout", seed, index)
        assert np.array_equal(out.image, want["image"]) and np.array_equal(out.mask, want["mask"])
        holes = (MASK > 0) & (out.mask == 0)
        assert np.array_equal(out.image.max(axis=-1) > 0, out.mask > 0), (
            "with fill 0 and fill_mask 0, the image and mask must be erased at the same places")
        assert np.array_equal(out.mask[~holes], MASK[~holes]), "mask changed outside the holes"
        # A box shrinks to the part the holes leave visible, as albumentations does; it never grows.
        np.testing.assert_allclose(out.bboxes, want["bboxes"], atol=1e-4, err_msg="box differs")
        assert out.bboxes[0, 4] == BOX[4] and (out.bboxes[0, :2] >= np.array(BOX[:2]) - 1e-4).all()
        assert (out.bboxes[0, 2:4] <= np.array(BOX[2:4]) + 1e-4).all()
        pipe = pipeline("coarse_dropout", targets=True)
        kept = pipe(SCENE, mask=MASK, keypoints=grid, seed=seed, index=index)
        survivors = {int(c) for c in kept.keypoints[:, 2]}
        for x, y, label in grid:
            covered = bool(holes[y, x])
            dropped_any |= covered
            assert (label in survivors) != covered, (
                f"seed {seed}: keypoint ({x}, {y}) {'in' if covered else 'outside'} a hole was "
                f"{'kept' if label in survivors else 'dropped'}")
    assert dropped_any, "no hole ever covered a keypoint: the test checks nothing"


def test_coarse_dropout_without_fill_mask_leaves_the_mask() -> None:
    pipe = ImagePipeline([{"name": "coarse_dropout", "p": 1, "num_holes_range": [4, 4],
                           "hole_height_range": [0.3, 0.3], "hole_width_range": [0.3, 0.3]}])
    out = pipe(SCENE, mask=MASK, seed=3)
    assert np.array_equal(out.mask, MASK)
    assert not np.array_equal(out.image, SCENE), "no hole was cut"


# --------------------------------------------------------------------------------------------
# Applied parameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_applied_params_name_the_transform_and_are_json(name: str) -> None:
    fired = pipeline(name, 1.0)(RGB, seed=11, index=2, return_params=True)
    assert fired.params is not None
    assert [entry["name"] for entry in fired.params] == [name], fired.params
    text = json.dumps(fired.params)
    assert json.loads(text) == fired.params, f"{name}: params do not round-trip through JSON"
    targets = pipeline(name, 1.0, targets=True)(
        SCENE, mask=MASK, bboxes=[BOX], keypoints=KEYPOINTS, seed=11, return_params=True)
    assert [entry["name"] for entry in targets.params or []] == [name]
    json.dumps(targets.params)

    skipped = pipeline(name, 0.0)(RGB, seed=11, index=2, return_params=True)
    assert skipped.params == [], f"{name} at p=0 reported params {skipped.params}"
    assert np.array_equal(skipped.image, RGB), f"{name} at p=0 changed the image"
    # Params reflect only the last call.
    again = pipeline(name, 1.0)
    again(RGB, seed=1, return_params=True)
    assert again(RGB, seed=11, index=2, return_params=True).params == fired.params
