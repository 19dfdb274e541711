"""Segmentation runs: which task a dataset asks for, its batches' class maps, and mean IoU.

A dataset whose targets are one class map per image (``info.targets == ("mask",)``, a
segmentation folder) is a segmentation task: its batches are ``(x, y)`` with uint8 images
``(B, C, H, W)`` and int64 class maps ``(B, H, W)``, the masks moved with their images by the
same pipeline draws (``augsvc.image.targets.augment_with_targets``: the library's, the service's
and the local source's are one function). Every other dataset without targets is a
classification task; one with boxes (a COCO instances file) a detection task (see
``training.detection``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from training.config import ConfigError
from training.models import MODELS

__all__ = ["TASKS", "MeanIoU", "check_metric", "check_task", "dataset_task",
           "stack_masks", "streamed_masks"]

TASKS = ("classification", "segmentation", "detection")


def dataset_task(targets: Sequence[str], dataset: str) -> str:
    """The task of a dataset with targets ``targets`` (its ``info.targets``, or the keys of a
    streamed sample's target dict: ``"mask"`` for a class map).

    Raises:
        ConfigError: targets that are neither a class map nor boxes (keypoints alone).
    """
    if not targets:
        return "classification"
    if tuple(targets) == ("mask",):
        return "segmentation"
    if "boxes" in targets:
        return "detection"  # instance masks and keypoints ride along unused
    raise ConfigError(f"data.dataset: {dataset} holds targets ({', '.join(targets)}) without "
                      "boxes; augsvc-train trains classification, segmentation and detection")


def check_task(model: str, model_task: str, data_task: str, dataset: str) -> None:
    """Refuse a model whose output does not fit the dataset's labels.

    Raises:
        ConfigError: naming the model, both tasks and the models that fit.
    """
    if model_task != data_task:
        fits = sorted(name for name, info in MODELS.items() if info.task == data_task)
        raise ConfigError(f"model.name: {model} is a {model_task} model but {dataset} is a "
                          f"{data_task} dataset; {data_task} models: {', '.join(fits)}")


def check_metric(metric: str, task: str) -> None:
    """Refuse to follow ``val_miou`` or ``val_map`` (early stopping, best.pt) in a run that does
    not report it.

    Raises:
        ConfigError: ``val_miou`` but for a segmentation dataset, ``val_map`` but for detection.
    """
    if metric == "val_map" and task != "detection":
        raise ConfigError(f"early_stopping.metric: val_map is reported for detection datasets "
                          f"only; this is a {task} dataset (use val_loss or val_accuracy)")
    if metric == "val_miou" and task != "segmentation":
        raise ConfigError(f"early_stopping.metric: val_miou is reported for segmentation datasets "
                          f"only; this is a {task} dataset (use val_loss or val_accuracy)")


def stack_masks(masks: Sequence[Any]) -> torch.Tensor:
    """HxW class maps (arrays or tensors) -> an int64 ``(B, H, W)`` tensor.

    Raises:
        ValueError: the maps differ in size (the pipeline must resize or crop to one size).
    """
    if not masks:
        return torch.zeros((0, 0, 0), dtype=torch.int64)
    shapes = sorted({tuple(np.shape(m)) for m in masks})
    if len(shapes) != 1 or len(shapes[0]) != 2:
        raise ValueError(f"a segmentation batch needs class maps of one size, got {shapes}; add a "
                         "resize or crop transform to data.augment (and data.eval_augment)")
    return torch.stack([torch.as_tensor(np.asarray(m)) for m in masks]).to(torch.int64)


def streamed_masks(x: Any, targets: Sequence[dict[str, Any]] | None) -> torch.Tensor:
    """The class maps of a streamed batch (its per-sample target dicts), checking that its images
    came as one ``(B, C, H, W)`` tensor.

    Raises:
        ValueError: no targets came, or the images differ in size.
    """
    if isinstance(x, list):
        raise ValueError("a segmentation batch needs images of one size, got "
                         f"{sorted({tuple(t.shape) for t in x})}; add a resize or crop transform "
                         "to data.augment (and data.eval_augment)")
    if targets is None:
        raise ValueError("the server sent no class maps for a segmentation dataset")
    return stack_masks([t["mask"] for t in targets])


class MeanIoU:
    """Intersection over union per class, from a confusion matrix summed over batches; the mean
    is over the classes that occur in the labels or the predictions (others have no union)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.confusion = torch.zeros((num_classes, num_classes), dtype=torch.int64)

    def update(self, predicted: torch.Tensor, labels: torch.Tensor) -> None:
        """Count predicted ``(B, H, W)`` class indices against the labels ``(B, H, W)``."""
        n = self.num_classes
        pairs = labels.reshape(-1).to(torch.int64) * n + predicted.reshape(-1).to(torch.int64)
        self.confusion += torch.bincount(pairs, minlength=n * n).reshape(n, n).cpu()

    def per_class(self) -> torch.Tensor:
        """IoU of each class (NaN for a class neither labelled nor predicted)."""
        hits = self.confusion.diag().double()
        union = self.confusion.sum(0).double() + self.confusion.sum(1).double() - hits
        return torch.where(union > 0, hits / union.clamp(min=1), torch.full_like(hits, np.nan))

    def value(self) -> float:
        """The mean IoU over the classes present; NaN when nothing was counted."""
        ious = self.per_class()
        present = ious[~ious.isnan()]
        return float(present.mean()) if len(present) else float("nan")
