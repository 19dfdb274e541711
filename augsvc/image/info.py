"""What an image registry entry is: a validated schema plus how to build the albumentations transform."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import albumentations as A
import cv2
import numpy as np

from augsvc.params import Param
from augsvc.spec import TransformInfo

__all__ = ["BORDER_MODES", "INTERPOLATIONS", "ImageTransformInfo", "border_params", "size_params"]

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
BORDER_MODES = {
    "constant": cv2.BORDER_CONSTANT,
    "replicate": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT,
    "wrap": cv2.BORDER_WRAP,
    "reflect_101": cv2.BORDER_REFLECT_101,
}
_TARGET_NAMES = {"Image": "image", "Mask": "mask", "BBoxes": "bboxes", "Keypoints": "keypoints"}


def interpolation_param(default: str = "linear") -> Param:
    return Param("interpolation", "choice", default, "resampling for the image",
                 choices=tuple(INTERPOLATIONS))


def border_params() -> tuple[Param, ...]:
    """The border handling fields shared by geometric transforms."""
    return (
        Param("border_mode", "choice", "constant", "how pixels outside the image are filled",
              choices=tuple(BORDER_MODES)),
        Param("fill", "floats", 0.0, "image fill for border_mode=constant, in the image's units "
              "(0-255 for uint8, 0-1 for float32)", low=0, high=255),
        Param("fill_mask", "floats", 0.0, "mask fill value for border_mode=constant",
              low=0, high=255),
    )


def size_params() -> tuple[Param, ...]:
    """Required output ``height`` and ``width`` in pixels."""
    return (
        Param("height", "int", doc="output height in pixels", low=1, high=65536),
        Param("width", "int", doc="output width in pixels", low=1, high=65536),
    )


def _cv2_choices(params: Mapping[str, Any]) -> dict[str, Any]:
    """Pass fields through, turning our names for interpolation and border mode into cv2 flags."""
    out = dict(params)
    if "interpolation" in out:
        out["interpolation"] = INTERPOLATIONS[out["interpolation"]]
    if "border_mode" in out:
        out["border_mode"] = BORDER_MODES[out["border_mode"]]
    return out


def _is_rgba(image: Any) -> bool:
    return isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[-1] == 4


@cache
def _keep_alpha(cls: type[A.ImageOnlyTransform]) -> type[A.ImageOnlyTransform]:
    """Subclass a colour transform so RGBA images are transformed on RGB with alpha kept as is.

    Parameters that depend on the image (its mean, a noise map) are drawn from the RGB channels
    too, so the RGB result never depends on alpha.
    """

    class KeepAlpha(cls):  # type: ignore[valid-type,misc]
        def update_transform_params(self, params: dict[str, Any], data: dict[str, Any]
                                    ) -> dict[str, Any]:
            params = super().update_transform_params(params, data)
            if _is_rgba(data.get("image")):
                params["shape"] = (*data["image"].shape[:2], 3)
            return params

        def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]
                                         ) -> dict[str, Any]:
            if _is_rgba(data.get("image")):
                data = {**data, "image": np.ascontiguousarray(data["image"][..., :3])}
            return super().get_params_dependent_on_data(params, data)  # type: ignore[no-any-return]

        def apply(self, img: np.ndarray, *args: Any, **params: Any) -> np.ndarray:
            if _is_rgba(img):
                rgb = super().apply(np.ascontiguousarray(img[..., :3]), *args, **params)
                if rgb.ndim == 2:
                    rgb = rgb[..., None]
                return np.concatenate([rgb, img[..., 3:]], axis=-1)
            return super().apply(img, *args, **params)  # type: ignore[no-any-return]

    KeepAlpha.__name__ = KeepAlpha.__qualname__ = cls.__name__
    return KeepAlpha


@dataclass(frozen=True)
class ImageTransformInfo(TransformInfo):
    """An image transform: schema, the albumentations class it wraps and how to map fields.

    Attributes:
        albu: the albumentations class this entry wraps (the test oracle).
        impl: a subclass of ``albu`` built instead, where augsvc tightens its behaviour.
        to_albu: validated fields -> keyword arguments of ``albu``.
        keep_alpha: transform RGBA images on their RGB channels and keep alpha unchanged.
    """

    albu: type[A.BasicTransform] = A.NoOp
    impl: type[A.BasicTransform] | None = None
    to_albu: Callable[[Mapping[str, Any]], dict[str, Any]] = _cv2_choices
    keep_alpha: bool = False

    @property
    def targets(self) -> tuple[str, ...]:
        """Which of image/mask/bboxes/keypoints this transform changes."""
        names = (getattr(t, "value", str(t)) for t in self.albu._targets)  # type: ignore[attr-defined]
        return tuple(_TARGET_NAMES[n] for n in names if n in _TARGET_NAMES)

    def build(self, params: Mapping[str, Any], p: float, *, rgba: bool = False
              ) -> A.BasicTransform:
        """Build the albumentations transform for validated ``params``.

        ``rgba=True`` builds the variant for RGBA images: colour transforms work on RGB and keep
        alpha. It draws the same random numbers as the plain one.
        """
        cls = self.impl or self.albu
        if rgba and self.keep_alpha:
            cls = _keep_alpha(cls)  # type: ignore[arg-type]
        return cls(**self.to_albu(params), p=p)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "targets": list(self.targets),
                "albumentations": self.albu.__name__}
