"""A torch Dataset that augments another dataset's images, reproducibly across workers and epochs.

Sample ``i`` of epoch ``e`` is augmented as global index ``e * len(dataset) + i``, so with a seed
the result is the same whatever the worker count, and no two (epoch, index) pairs share draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from augsvc.image.pipeline import ImagePipeline

__all__ = ["AugmentedImageDataset", "stack_images", "to_tensor"]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC array -> CxHxW tensor (same dtype, no scaling)."""
    if image.ndim == 2:
        image = image[..., None]
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def stack_images(images: Sequence[np.ndarray]) -> torch.Tensor:
    """Equal-sized HxW or HxWxC uint8 arrays -> a (B, C, H, W) uint8 tensor.

    Raises:
        ValueError: sizes or dtypes differ (add a ``resize`` transform to the pipeline).
    """
    shapes = {np.shape(image) for image in images}
    if len(shapes) != 1:
        raise ValueError(f"a batch needs one or more images of one size, got {sorted(shapes)}; "
                         "add a resize transform to the pipeline")
    batch = np.stack([np.asarray(image) for image in images])
    if batch.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {batch.dtype}")
    batch = batch[:, None] if batch.ndim == 3 else batch.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(batch))


class AugmentedImageDataset(Dataset[Any]):
    """Wrap a sequence of images, or of ``(image, label)`` pairs, with an augmentation pipeline.

    Args:
        base: anything indexable with ``len``: items are HxW(xC) arrays or ``(image, label)``.
        pipeline: an :class:`ImagePipeline` or a spec to build one.
        seed: the run's seed; None gives fresh randomness on every access.
        epoch: the starting epoch; call :meth:`set_epoch` before each epoch (in the main
            process, before the DataLoader iterator is created).

    Items are ``(CxHxW tensor, label)`` for labelled data, the bare tensor otherwise.
    """

    def __init__(self, base: Sequence[Any], pipeline: ImagePipeline | Any, *,
                 seed: int | None = None, epoch: int = 0) -> None:
        self.base = base
        self.pipeline = pipeline if isinstance(pipeline, ImagePipeline) else ImagePipeline(pipeline)
        self.seed = seed
        self.epoch = epoch

    def set_epoch(self, epoch: int) -> None:
        """Use the draws of ``epoch`` from now on."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def global_index(self, index: int) -> int:
        """The pipeline index sample ``index`` is augmented as in the current epoch."""
        return self.epoch * len(self) + index

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        item = self.base[index]
        labelled = isinstance(item, tuple)
        image = item[0] if labelled else item
        out = self.pipeline(np.asarray(image), seed=self.seed, index=self.global_index(index))
        return (to_tensor(out.image), item[1]) if labelled else to_tensor(out.image)
