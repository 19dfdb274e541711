"""augsvc: data augmentation library and gRPC service."""

import os

# albumentations checks PyPI for a newer version on import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from augsvc.errors import AugsvcError, InputError, SpecError, TransformError

__version__ = "0.1.0"

__all__ = ["AugsvcError", "InputError", "SpecError", "TransformError", "__version__"]
