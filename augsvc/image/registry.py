"""Lookup of image transforms by name."""

from __future__ import annotations

from augsvc.errors import SpecError
from augsvc.image.info import ImageTransformInfo
from augsvc.image.transforms import ENTRIES
from augsvc.spec import did_you_mean

__all__ = ["IMAGE_TRANSFORMS", "get_image_transform", "list_image_transforms"]

IMAGE_TRANSFORMS: dict[str, ImageTransformInfo] = {e.name: e for e in ENTRIES}
if len(IMAGE_TRANSFORMS) != len(ENTRIES):
    raise RuntimeError("duplicate image transform names in augsvc.image.transforms.ENTRIES")


def list_image_transforms() -> list[str]:
    """Names of all registered image transforms, sorted."""
    return sorted(IMAGE_TRANSFORMS)


def get_image_transform(name: str) -> ImageTransformInfo:
    """The registry entry for ``name``; raises :class:`SpecError` with a suggestion if unknown."""
    try:
        return IMAGE_TRANSFORMS[name]
    except KeyError:
        raise SpecError(f"unknown image transform {name!r}"
                        f"{did_you_mean(name, list_image_transforms())}") from None
