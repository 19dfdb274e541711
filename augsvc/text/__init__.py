"""Text augmentation: word/character operations over exact spans of the original text."""

from augsvc.text.pipeline import AugmentedText, TextPipeline
from augsvc.text.registry import TEXT_TRANSFORMS, list_text_transforms

__all__ = ["TEXT_TRANSFORMS", "AugmentedText", "TextPipeline", "list_text_transforms"]
