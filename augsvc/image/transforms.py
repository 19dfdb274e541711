"""The image transforms: one registry entry each, wrapping an albumentations class.

Adding a transform is one entry here and one row in ``tests/image/test_transforms.py``.
Defaults follow albumentations so a user moving over sees the same behaviour.
Colour transforms (keep_alpha) change the RGB channels of an RGBA image and keep its alpha.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import albumentations as A
import cv2
import numpy as np

from augsvc.errors import InputError
from augsvc.image.info import (
    BORDER_MODES,
    INTERPOLATIONS,
    ImageTransformInfo,
    border_params,
    interpolation_param,
    size_params,
)
from augsvc.params import Param

__all__ = ["ENTRIES"]


def _channels(img: np.ndarray) -> int:
    return 1 if img.ndim == 2 else int(img.shape[-1])


class _HueSaturationValue(A.HueSaturationValue):
    """Gray images get the value shift only, silently (albumentations warns on every sample)."""

    def apply(self, img: np.ndarray, hue_shift: int, sat_shift: int, val_shift: int,
              **params: Any) -> np.ndarray:
        if _channels(img) == 1:
            hue_shift = sat_shift = 0
        return super().apply(img, hue_shift, sat_shift, val_shift, **params)


class _ToGray(A.ToGray):
    """Gray images stay as they are, silently (albumentations warns on every sample)."""

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return img if _channels(img) == 1 else super().apply(img, **params)


class _Normalize(A.Normalize):
    """Refuses a per-channel mean/std whose length differs from the image's channels.

    albumentations would silently use the first value for every channel.
    """

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        for name in ("mean", "std"):
            value = getattr(self, name)
            if isinstance(value, tuple | list) and len(value) not in (1, _channels(img)):
                raise InputError(f"normalize has {len(value)} {name} values for an image with "
                                 f"{_channels(img)} channels; give one value or one per channel")
        return super().apply(img, **params)


def _crop_args(params: Mapping[str, Any]) -> dict[str, Any]:
    return {**params, "border_mode": BORDER_MODES[params["border_mode"]]}


def _resized_crop_args(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"size": (params["height"], params["width"]), "scale": params["scale"],
            "ratio": params["ratio"], "interpolation": INTERPOLATIONS[params["interpolation"]]}


def _shift_scale_rotate_args(params: Mapping[str, Any]) -> dict[str, Any]:
    # The same mapping albumentations' deprecated ShiftScaleRotate makes onto Affine.
    lo, hi = params["scale_limit"]
    return {
        "scale": (1.0 + lo, 1.0 + hi),
        "translate_percent": {"x": params["shift_limit"], "y": params["shift_limit"]},
        "rotate": params["rotate_limit"],
        "shear": (0.0, 0.0),
        "interpolation": INTERPOLATIONS[params["interpolation"]],
        "mask_interpolation": cv2.INTER_NEAREST,
        "border_mode": BORDER_MODES[params["border_mode"]],
        "fill": params["fill"],
        "fill_mask": params["fill_mask"],
        "fit_output": False,
        "keep_ratio": True,  # one scale factor for both axes, as the name promises
        "rotate_method": "largest_box",
    }


def _crop_entry(name: str, albu: type[A.BasicTransform], doc: str) -> ImageTransformInfo:
    return ImageTransformInfo(
        name=name, doc=doc, albu=albu, default_p=1.0, to_albu=_crop_args,
        params=(*size_params(),
                Param("pad_if_needed", "bool", False, "pad images smaller than the crop"),
                *border_params()),
    )


ENTRIES: tuple[ImageTransformInfo, ...] = (
    ImageTransformInfo(
        name="horizontal_flip", doc="Mirror left-right.", albu=A.HorizontalFlip,
        default_p=0.5, params=()),
    ImageTransformInfo(
        name="vertical_flip", doc="Mirror top-bottom.", albu=A.VerticalFlip,
        default_p=0.5, params=()),
    _crop_entry("random_crop", A.RandomCrop, "Crop a height x width window at a random place."),
    _crop_entry("center_crop", A.CenterCrop, "Crop a height x width window at the centre."),
    ImageTransformInfo(
        name="random_resized_crop", albu=A.RandomResizedCrop, default_p=1.0,
        doc="Crop a random area and aspect ratio, then resize to height x width (Inception style).",
        to_albu=_resized_crop_args,
        params=(*size_params(),
                Param("scale", "range", (0.08, 1.0), "crop area as a fraction of the image",
                      low=0.0001, high=1.0),
                Param("ratio", "range", (0.75, 4 / 3), "crop aspect ratio (width / height)",
                      low=0.01, high=100.0),
                interpolation_param())),
    ImageTransformInfo(
        name="brightness_contrast", albu=A.RandomBrightnessContrast, default_p=0.5, keep_alpha=True,
        doc="Random brightness and contrast change.",
        params=(Param("brightness_limit", "range", (-0.2, 0.2), "brightness change factor",
                      low=-1.0, high=1.0, scalar="symmetric"),
                Param("contrast_limit", "range", (-0.2, 0.2), "contrast change factor",
                      low=-1.0, high=1.0, scalar="symmetric"),
                Param("brightness_by_max", "bool", True,
                      "scale brightness by the dtype's maximum (true) or the image mean")),
    ),
    ImageTransformInfo(
        name="hue_saturation_value", albu=A.HueSaturationValue, impl=_HueSaturationValue,
        default_p=0.5, keep_alpha=True,
        doc="Random shift of hue, saturation and value (RGB; gray gets only the value shift).",
        params=(Param("hue_shift_limit", "range", (-20.0, 20.0), "hue shift in degrees",
                      low=-180, high=180, scalar="symmetric"),
                Param("sat_shift_limit", "range", (-30.0, 30.0), "saturation shift",
                      low=-255, high=255, scalar="symmetric"),
                Param("val_shift_limit", "range", (-20.0, 20.0), "value shift",
                      low=-255, high=255, scalar="symmetric")),
    ),
    ImageTransformInfo(
        name="median_blur", albu=A.MedianBlur, default_p=0.5, doc="Median filter, random odd kernel.",
        params=(Param("blur_limit", "range", (3, 7), "kernel size range", low=3, high=99,
                      integer=True, odd=True, scalar="point"),)),
    ImageTransformInfo(
        name="gamma", albu=A.RandomGamma, default_p=0.5, keep_alpha=True,
        doc="Random gamma curve; gamma_limit is in percent (100 = unchanged).",
        params=(Param("gamma_limit", "range", (80.0, 120.0), "gamma x 100", low=1, high=1000,
                      scalar="point"),)),
    ImageTransformInfo(
        name="shift_scale_rotate", albu=A.Affine, default_p=0.5, to_albu=_shift_scale_rotate_args,
        doc="Random shift, scale and rotation in one affine warp (albumentations Affine).",
        params=(Param("shift_limit", "range", (-0.0625, 0.0625), "shift as a fraction of size",
                      low=-1.0, high=1.0, scalar="symmetric"),
                Param("scale_limit", "range", (-0.1, 0.1), "scale change; 0.1 means x1.1",
                      low=-0.99, high=10.0, scalar="symmetric"),
                Param("rotate_limit", "range", (-45.0, 45.0), "rotation in degrees",
                      low=-360, high=360, scalar="symmetric"),
                interpolation_param(), *border_params())),
    ImageTransformInfo(
        name="rotate", albu=A.Rotate, default_p=0.5, doc="Random rotation about the centre.",
        params=(Param("limit", "range", (-90.0, 90.0), "rotation in degrees", low=-360, high=360,
                      scalar="symmetric"),
                interpolation_param(), *border_params(),
                Param("crop_border", "bool", False, "crop to the largest rectangle without border"))),
    ImageTransformInfo(
        name="gaussian_blur", albu=A.GaussianBlur, default_p=0.5,
        doc="Gaussian blur with a random odd kernel and sigma.",
        params=(Param("blur_limit", "range", (3, 7), "kernel size range", low=3, high=99,
                      integer=True, odd=True, scalar="point"),
                Param("sigma_limit", "range", (0.5, 3.0), "sigma range (0 = from kernel size)",
                      low=0.0, high=100.0, scalar="point"))),
    ImageTransformInfo(
        name="gaussian_noise", albu=A.GaussNoise, default_p=0.5, keep_alpha=True,
        doc="Additive Gaussian noise; std and mean are fractions of the dtype's maximum.",
        params=(Param("std_range", "range", (0.2, 0.44), "noise std range", low=0.0, high=1.0),
                Param("mean_range", "range", (0.0, 0.0), "noise mean range", low=-1.0, high=1.0),
                Param("per_channel", "bool", True, "independent noise per channel"))),
    ImageTransformInfo(
        name="normalize", albu=A.Normalize, impl=_Normalize, default_p=1.0,
        doc="(img / max_pixel_value - mean) / std, per channel; output is float32.",
        params=(Param("mean", "floats", (0.485, 0.456, 0.406), "per-channel mean",
                      low=-1e6, high=1e6),
                Param("std", "floats", (0.229, 0.224, 0.225), "per-channel std",
                      low=1e-12, high=1e6),
                Param("max_pixel_value", "float", 255.0, "value that maps to 1.0",
                      low=1e-12, high=1e12))),
    ImageTransformInfo(
        name="resize", albu=A.Resize, default_p=1.0, doc="Resize to height x width.",
        params=(*size_params(), interpolation_param())),
    ImageTransformInfo(
        name="to_gray", albu=A.ToGray, impl=_ToGray, default_p=0.5, keep_alpha=True,
        doc="Convert RGB to gray (kept as num_output_channels channels).",
        params=(Param("num_output_channels", "int", 3, "channels of the gray output", low=1,
                      high=3),
                Param("method", "choice", "weighted_average", "gray conversion",
                      choices=("weighted_average", "from_lab", "desaturation", "average", "max",
                               "pca")))),
    ImageTransformInfo(
        name="clahe", albu=A.CLAHE, default_p=0.5,
        doc="Contrast-limited adaptive histogram equalisation (on the L channel for RGB).",
        keep_alpha=True,
        params=(Param("clip_limit", "range", (1.0, 4.0), "contrast clip limit", low=1.0,
                      high=100.0, scalar="point"),
                Param("tile_grid_size", "pair", (8, 8), "tiles (rows, cols)", low=1, high=256,
                      integer=True))),
    ImageTransformInfo(
        name="coarse_dropout", albu=A.CoarseDropout, default_p=0.5,
        doc="Erase random rectangles (cutout); sizes are fractions of the image side.",
        params=(Param("num_holes_range", "range", (1, 2), "number of holes", low=1, high=1000,
                      integer=True, scalar="point"),
                Param("hole_height_range", "range", (0.1, 0.2), "hole height / image height",
                      low=0.001, high=1.0),
                Param("hole_width_range", "range", (0.1, 0.2), "hole width / image width",
                      low=0.001, high=1.0),
                Param("fill", "floats", 0.0, "image fill value, in the image's units",
                      low=0, high=255),
                Param("fill_mask", "floats", None, "mask fill value (null: mask unchanged)",
                      low=0, high=255, nullable=True))),
)
