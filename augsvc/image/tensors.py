"""Images as torch tensors: CxHxW for one, (B, C, H, W) uint8 for a batch (torch and numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["stack_images", "to_tensor"]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC array -> CxHxW tensor (same dtype, no scaling).

    The tensor is a view of the array's memory, channels-last in memory as torchvision's
    ``pil_to_tensor`` makes; a DataLoader's collate copies it into the batch once. Call
    ``.contiguous()`` for the channels-first layout.
    """
    if image.ndim == 2:
        image = image[..., None]
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)


def stack_images(images: Sequence[np.ndarray]) -> torch.Tensor:
    """Equal-sized HxW or HxWxC uint8 arrays -> a (B, C, H, W) uint8 tensor.

    Raises:
        ValueError: sizes or dtypes differ (add a ``resize`` transform to the pipeline).
    """
    shapes = {np.shape(image) for image in images}
    if len(shapes) != 1:
        sizes = {shape[:2] for shape in shapes}
        advice = "add a resize transform to the pipeline (and data.eval_augment for the holdout)" \
            if len(sizes) > 1 else "they differ in channels: read the dataset with channels='rgb' " \
            "(the image folders' default) or 'gray'"
        raise ValueError(f"a batch needs one or more images of one shape, got {sorted(shapes)}; "
                         f"{advice}")
    batch = np.stack([np.asarray(image) for image in images])
    if batch.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {batch.dtype}")
    batch = batch[:, None] if batch.ndim == 3 else batch.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(batch))
