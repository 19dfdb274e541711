"""Per-sample targets of detection and segmentation datasets, and how a pipeline moves them.

A :class:`Target` holds what an image is labelled with: boxes (pascal_voc ``x_min, y_min, x_max,
y_max`` in pixels) with a class per box, a mask: one HxW class map (segmentation), or HxWxN
instance masks, one channel per box (detection with masks), and keypoints (``x, y`` and any
columns that ride along, such as visibility and which instance a point belongs to). The pipeline
moves them with the image: a box that a crop drops leaves with its class and its instance mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from augsvc.errors import InputError

__all__ = ["Target", "augment_with_targets"]


@dataclass(frozen=True, eq=False)
class Target:
    """What one image is labelled with; fields a dataset does not have are None.

    Attributes:
        boxes: (N, 4) float64 pascal_voc boxes.
        labels: (N,) int64 class indices of the boxes (into the dataset's ``class_names``).
        mask: (H, W) uint8 class map, or (H, W, N) uint8 instance masks (one per box).
        keypoints: (M, 2 + extra) float64 ``x, y`` points; the pipeline drops those that leave
            the image (``remove_invisible``), extra columns with them.
    """

    boxes: np.ndarray | None = None
    labels: np.ndarray | None = None
    mask: np.ndarray | None = None
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.boxes is None) != (self.labels is None):
            raise InputError("a target has boxes and labels together, or neither")
        if self.boxes is not None and self.labels is not None and \
                (self.boxes.ndim != 2 or self.boxes.shape[1] != 4 or len(self.labels) != len(self.boxes)):
            raise InputError(f"a target needs (N, 4) boxes and N labels, got {self.boxes.shape} "
                             f"and {self.labels.shape}")

    @property
    def instance_masks(self) -> bool:
        """Whether ``mask`` holds one channel per box (rather than one class map)."""
        return self.mask is not None and self.mask.ndim == 3 and self.boxes is not None

    def as_dict(self) -> dict[str, np.ndarray]:
        """The fields that are set, by name (the targets torchvision's detection models take,
        with instance masks as (N, H, W))."""
        out: dict[str, np.ndarray] = {}
        if self.boxes is not None and self.labels is not None:
            out["boxes"], out["labels"] = self.boxes, self.labels
        if self.mask is not None:
            out["masks" if self.instance_masks else "mask"] = \
                np.ascontiguousarray(self.mask.transpose(2, 0, 1)) if self.instance_masks else self.mask
        if self.keypoints is not None:
            out["keypoints"] = self.keypoints
        return out


def augment_with_targets(pipeline: Any, images: Sequence[np.ndarray], targets: Sequence[Target],
                         *, seed: int | None, indices: Sequence[int]
                         ) -> tuple[list[np.ndarray], list[Target]]:
    """``pipeline.batch`` over images and their targets: the same draws as the images alone,
    with boxes (their class riding along as a column) and masks moved alike.

    Raises:
        InputError: the pipeline reads boxes in another format than pascal_voc.
    """
    options = pipeline.spec.options if getattr(pipeline, "spec", None) is not None else {}
    if options.get("bbox_format", "pascal_voc") != "pascal_voc":
        raise InputError("dataset targets hold pascal_voc boxes: leave the pipeline's "
                         f"bbox_format at pascal_voc (it is {options['bbox_format']!r})")
    if options.get("keypoint_format", "xy") != "xy":
        raise InputError("dataset targets hold xy keypoints: leave the pipeline's "
                         f"keypoint_format at xy (it is {options['keypoint_format']!r})")
    points = [t.keypoints for t in targets]
    # each box carries its class and its own number: a box the pipeline drops takes both along,
    # and the numbers of the boxes kept pick their instance masks
    boxed = [None if t.boxes is None or t.labels is None else
             np.column_stack([t.boxes, t.labels.astype(np.float64), np.arange(len(t.boxes))])
             for t in targets]
    # an image with no instances has an HxWx0 mask, which no transform can take: it goes
    # without, and gets an empty mask of the output's size back
    masks = [None if t.mask is None or t.mask.size == 0 else t.mask for t in targets]
    results = pipeline.batch(images, masks=masks,
                             bboxes=boxed if any(b is not None for b in boxed) else None,
                             keypoints=points if any(p is not None for p in points) else None,
                             seed=seed, indices=indices)
    out: list[Target] = []
    for target, result in zip(targets, results, strict=True):
        boxes = labels = None
        mask = result.mask
        if mask is None and target.mask is not None:  # the empty instance masks
            mask = np.zeros((*result.image.shape[:2], 0), np.uint8)
        if target.boxes is not None:
            kept = np.asarray(result.bboxes, np.float64).reshape(-1, 6)
            boxes, labels = kept[:, :4], kept[:, 4].round().astype(np.int64)
            if target.instance_masks and mask is not None:
                mask = _surviving_masks(mask, target, kept)
        keypoints = None
        if target.keypoints is not None:
            width = target.keypoints.shape[1] if target.keypoints.ndim == 2 else 2
            keypoints = np.asarray(result.keypoints, np.float64).reshape(-1, width)
        out.append(Target(boxes, labels, mask, keypoints))
    return [r.image for r in results], out


def _surviving_masks(mask: np.ndarray, target: Target, kept: np.ndarray) -> np.ndarray:
    """The instance masks of the boxes the pipeline kept, in the kept boxes' order."""
    channel = kept[:, 5].round().astype(int)
    return np.ascontiguousarray(mask[..., channel])
