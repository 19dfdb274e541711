"""Image augmentation: registry of transforms, pipelines with per-sample seeding, I/O, gallery."""

from augsvc.image.pipeline import IMAGE_OPTIONS, AugmentedImage, ImagePipeline
from augsvc.image.registry import IMAGE_TRANSFORMS, get_image_transform, list_image_transforms

__all__ = [
    "IMAGE_OPTIONS",
    "IMAGE_TRANSFORMS",
    "AugmentedImage",
    "ImagePipeline",
    "get_image_transform",
    "list_image_transforms",
]
