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
from augsvc.image.targets import Target, augment_with_targets
from augsvc.image.tensors import to_tensor
from augsvc.plan import augment_index

__all__ = ["AugmentedImageDataset"]


class AugmentedImageDataset(Dataset[Any]):
    """Wrap a sequence of images, or of ``(image, label)`` pairs, with an augmentation pipeline.

    Args:
        base: anything indexable with ``len``: items are HxW(xC) arrays, ``(image, label)``, or
            ``(image, Target)`` for detection and segmentation (boxes and masks move with the
            image; ``augsvc.image.targets``).
        pipeline: an :class:`ImagePipeline` or a spec to build one.
        seed: the run's seed; None gives fresh randomness on every access.
        epoch: the starting epoch; call :meth:`set_epoch` before each epoch (in the main
            process, before the DataLoader iterator is created). Workers kept with
            ``persistent_workers=True`` keep the epoch they started with.
        reduced_decode: over an image folder, decode a JPEG at 1/2, 1/4 or 1/8 of its size
            when the pipeline's first step (resize, random_resized_crop) would shrink it that
            much anyway (``augsvc.image.reduced`` says exactly when, and how the result
            differs from a full decode). False decodes every file whole.

    Items are ``(CxHxW tensor, label)`` for labelled data, ``(CxHxW tensor, target dict)`` for
    targets (``boxes``, ``labels``, ``masks`` (N, H, W) or ``mask`` as tensors: what torchvision's
    detection models take), the bare tensor otherwise.
    """

    def __init__(self, base: Sequence[Any], pipeline: ImagePipeline | Any, *,
                 seed: int | None = None, epoch: int = 0, reduced_decode: bool = True) -> None:
        self.base = base
        self.reduced_decode = reduced_decode
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
        return augment_index(self.epoch, index, len(self))

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        base: Any = self.base
        read_scaled = getattr(base, "read_scaled", None)
        if read_scaled is not None and self.reduced_decode and not base.info.targets:
            # An image file dataset: a JPEG may be decoded smaller (augsvc.image.reduced).
            where = self.global_index(index)
            image, source = read_scaled(index, lambda h, w: self.pipeline.jpeg_scale(
                h, w, seed=self.seed, index=where))
            out = self.pipeline(image, seed=self.seed, index=where, source_size=source)
            return to_tensor(out.image), int(base.labels[index])
        item = self.base[index]
        labelled = isinstance(item, tuple)
        image = np.asarray(item[0] if labelled else item)
        if labelled and isinstance(item[1], Target):
            images, targets = augment_with_targets(self.pipeline, [image], [item[1]], seed=self.seed,
                                                   indices=[self.global_index(index)])
            return to_tensor(images[0]), {name: torch.from_numpy(value)
                                          for name, value in targets[0].as_dict().items()}
        out = self.pipeline(image, seed=self.seed, index=self.global_index(index))
        return (to_tensor(out.image), item[1]) if labelled else to_tensor(out.image)
