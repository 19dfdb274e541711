"""Lookup of image transforms by name."""

from __future__ import annotations

from augsvc.image.info import ImageTransformInfo
from augsvc.image.transforms import ENTRIES

__all__ = ["IMAGE_TRANSFORMS", "list_image_transforms"]

IMAGE_TRANSFORMS: dict[str, ImageTransformInfo] = {e.name: e for e in ENTRIES}
if len(IMAGE_TRANSFORMS) != len(ENTRIES):
    raise RuntimeError("duplicate image transform names in augsvc.image.transforms.ENTRIES")


def list_image_transforms() -> list[str]:
    """Names of all registered image transforms, sorted."""
    return sorted(IMAGE_TRANSFORMS)
