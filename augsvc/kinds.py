"""The two kinds of samples, image and text: their presets, pipelines and outputs in one place.

Datasets, the server and the trainer say ``kind`` ("image" or "text") and ask here rather than
branching on it themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from augsvc.errors import InputError
from augsvc.image.pipeline import AugmentedImage, ImagePipeline
from augsvc.image.presets import IMAGE_PRESETS
from augsvc.image.targets import Target, augment_with_targets
from augsvc.text.pipeline import AugmentedText, TextPipeline
from augsvc.text.presets import TEXT_PRESETS

__all__ = ["KINDS", "PRESETS", "augment_batch", "jpeg_scales", "make_pipeline", "outputs"]

KINDS = ("image", "text")
PRESETS: Mapping[str, Mapping[str, Any]] = {"image": IMAGE_PRESETS, "text": TEXT_PRESETS}
"""The presets of each kind, by name."""


def make_pipeline(kind: str, spec: Any) -> ImagePipeline | TextPipeline:
    """The ``kind`` pipeline of ``spec`` (a spec, JSON/YAML text, a file or a preset name).

    Raises:
        InputError: ``kind`` is neither "image" nor "text".
        SpecError: the spec is invalid.
    """
    if kind == "image":
        return ImagePipeline(spec)
    if kind == "text":
        return TextPipeline(spec)
    raise InputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def outputs(results: Sequence[AugmentedImage | AugmentedText]) -> list[Any]:
    """The augmented samples of a pipeline's results: images or texts."""
    return [r.image if isinstance(r, AugmentedImage) else r.text for r in results]


def jpeg_scales(pipeline: ImagePipeline | TextPipeline | None, seed: int | None,
                augment_index: Callable[[int], int]) -> Callable[[int, int, int], int] | None:
    """What ``Dataset.take(scale_for=...)`` asks: the scale each JPEG of sample ``index`` may be
    decoded at for ``pipeline`` (``augsvc.image.reduced``), the sample augmented as
    ``augment_index(index)``. None for no pipeline or a text one."""
    if not isinstance(pipeline, ImagePipeline):
        return None
    return lambda index, height, width: pipeline.jpeg_scale(height, width, seed=seed,
                                                            index=augment_index(index))


def augment_batch(pipeline: ImagePipeline | TextPipeline | None, samples: Sequence[Any],
                  targets: Sequence[Target] | None, *, seed: int | None,
                  indices: Sequence[int], sources: Sequence[tuple[int, int] | None] | None = None
                  ) -> tuple[list[Any], list[Target] | None]:
    """A batch's samples, and their targets when the dataset has them, through ``pipeline`` with
    the draws of ``indices``: how the server's batch workers and the trainer's local source both
    augment. No pipeline, or no sample: the batch as it is. ``sources`` gives the full size of
    images read as smaller JPEG decodes (``Dataset.take(scale_for=...)``)."""
    if pipeline is None or not samples:
        return list(samples), None if targets is None else list(targets)
    if targets is not None:  # boxes, masks and keypoints move with their images
        return augment_with_targets(pipeline, samples, targets, seed=seed, indices=indices)
    if isinstance(pipeline, ImagePipeline):
        return outputs(pipeline.batch(samples, seed=seed, indices=indices, source_sizes=sources)), None
    return outputs(pipeline.batch(samples, seed=seed, indices=indices)), None
