"""Image augmentation: registry of transforms, pipelines with per-sample seeding, I/O, gallery.

The names below are loaded on first use (PEP 562), so the light modules of this package
(``augsvc.image.io``, ``augsvc.image.presets``) import without albumentations: the wire codec
and the client need them, and a client must not pay for the transforms it never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from augsvc.image.pipeline import IMAGE_OPTIONS, AugmentedImage, ImagePipeline
    from augsvc.image.registry import IMAGE_TRANSFORMS, list_image_transforms

__all__ = [
    "IMAGE_OPTIONS",
    "IMAGE_TRANSFORMS",
    "AugmentedImage",
    "ImagePipeline",
    "list_image_transforms",
]

_HOMES = {"IMAGE_OPTIONS": "pipeline", "AugmentedImage": "pipeline", "ImagePipeline": "pipeline",
          "IMAGE_TRANSFORMS": "registry", "list_image_transforms": "registry"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
