"""Detection runs: box targets in batches, the loss of each task, and mAP by pycocotools.

A dataset whose targets hold boxes (a COCO instances file: ``info.targets`` starts
``("boxes", "labels", ...)``) is a detection task. Its batches are ``(x, y)`` with uint8 images
``(B, C, H, W)`` (the pipeline must resize or crop to one size) and ``y`` a list of per-image
dicts ``{"boxes": float32 (N, 4) pascal_voc pixels, "labels": int64 (N,)}``, the boxes moved with
their images by the same pipeline draws (``augsvc.image.targets.augment_with_targets``). Instance
masks and keypoints are not used. The validation metrics are COCO's: ``val_accuracy`` is mAP at
IoU 0.5 and ``val_map`` the mean over IoU 0.5:0.95, computed by ``pycocotools.cocoeval``.

The trainer asks a :class:`Task` for the loss, how many labels a batch counts and how many the
model got right, so its loop is the same for class labels, class maps and boxes.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.centernet import centernet_loss, decode

__all__ = ["DETECTION_FIELDS", "Boxes", "DetectionTask", "Task", "box_targets", "boxes_of",
           "create_task", "epoch_line", "evaluate_detection", "mean_ap", "streamed_boxes",
           "to_device"]

Boxes = list[dict[str, torch.Tensor]]


def box_targets(targets: Iterable[Any]) -> Boxes:
    """Targets (``Target`` objects or streamed dicts) -> ``{"boxes": float32, "labels": int64}``."""
    out = []
    for t in targets:
        boxes, labels = (t["boxes"], t["labels"]) if isinstance(t, dict) else (t.boxes, t.labels)
        out.append({"boxes": torch.as_tensor(np.asarray(boxes, np.float32)).reshape(-1, 4),
                    "labels": torch.as_tensor(np.asarray(labels, np.int64)).reshape(-1)})
    return out


def _one_size(x: Any) -> None:
    shapes = sorted({tuple(np.shape(s)) for s in x}) if isinstance(x, list) else []
    if len(shapes) > 1:
        raise ValueError(f"a detection batch needs images of one size, got {shapes}; add a resize "
                         "or crop transform to data.augment (and data.eval_augment)")


def boxes_of(samples: Sequence[Any], targets: Iterable[Any]) -> Boxes:
    """The boxes of a batch built here, checking that its images came out of one size."""
    _one_size(list(samples))
    return box_targets(targets)


def streamed_boxes(x: Any, targets: Sequence[dict[str, Any]] | None) -> Boxes:
    """The boxes of a streamed batch (its per-sample target dicts).

    Raises:
        ValueError: no targets came, or the images differ in size.
    """
    _one_size(x)
    if targets is None:
        raise ValueError("the server sent no boxes for a detection dataset")
    return box_targets(targets)


def to_device(y: torch.Tensor | Boxes, device: torch.device) -> Any:
    """Labels (a tensor, or per-image box dicts) on ``device``."""
    if isinstance(y, torch.Tensor):
        return y.to(device, non_blocking=True)
    return [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in y]


class Task:
    """Class labels or class maps: mean cross-entropy, accuracy per label (pixel)."""

    accuracy = True  # whether train_accuracy means something

    def loss(self, logits: torch.Tensor, y: Any) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y)

    def count(self, y: Any) -> int:
        """How many labels the mean loss of ``y`` is over."""
        return int(y.numel())

    def hits(self, logits: torch.Tensor, y: Any) -> torch.Tensor:
        return (logits.argmax(1) == y).sum()



class DetectionTask(Task):
    """Boxes: the CenterNet loss (a mean per image); no training accuracy."""

    accuracy = False

    def loss(self, logits: torch.Tensor, y: Any) -> torch.Tensor:
        return centernet_loss(logits, y)

    def count(self, y: Any) -> int:
        return len(y)

    def hits(self, logits: torch.Tensor, y: Any) -> torch.Tensor:
        return torch.zeros((), dtype=torch.int64, device=logits.device)


def create_task(task: str) -> Task:
    return DetectionTask() if task == "detection" else Task()


DETECTION_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                    "seconds", "samples_per_second", "input_wait", "val_map")


def mean_ap(truths: Sequence[dict[str, Any]], found: Sequence[dict[str, Any]], num_classes: int,
            sizes: Sequence[tuple[int, int]]) -> tuple[float, float]:
    """(mAP@0.5, mAP@[.5:.95]) of detections ``found`` against ``truths`` (per image dicts of
    numpy or tensor ``boxes`` pascal_voc, ``labels``, and ``scores`` for detections), by
    pycocotools' COCOeval over every class; NaN without any ground-truth box."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(box: Sequence[float]) -> list[float]:
        return [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]

    annotations: list[dict[str, Any]] = []
    detections: list[dict[str, Any]] = []
    for i, truth in enumerate(truths):
        for box, label in zip(np.asarray(truth["boxes"]), np.asarray(truth["labels"]), strict=True):
            bbox = xywh(box)
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(label),
                                "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})
    for i, dets in enumerate(found):
        for box, label, score in zip(np.asarray(dets["boxes"]), np.asarray(dets["labels"]),
                                     np.asarray(dets["scores"]), strict=True):
            detections.append({"image_id": i, "category_id": int(label), "bbox": xywh(box),
                               "score": float(score)})
    if not annotations:
        return math.nan, math.nan
    if not detections:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": [{"id": i, "height": h, "width": w} for i, (h, w) in enumerate(sizes)],
                      "annotations": annotations,
                      "categories": [{"id": c, "name": str(c)} for c in range(num_classes)]}
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    return tuple(float(v) if v >= 0 else math.nan for v in (stats[1], stats[0]))  # type: ignore[return-value]


def evaluate_detection(forward: Callable[[torch.Tensor], torch.Tensor],
                       batches: Iterable[tuple[torch.Tensor, Any]], num_classes: int,
                       device: torch.device) -> dict[str, float]:
    """val_loss (the CenterNet loss of each image alone, averaged: the same however the images
    are batched), val_accuracy (mAP@0.5) and val_map (mAP@[.5:.95])."""
    total, count = 0.0, 0
    images: list[tuple[bytes, dict[str, Any], dict[str, Any], tuple[int, int]]] = []
    for x, y in batches:
        y = to_device(y, device)
        output = forward(x)
        total += sum(float(centernet_loss(output[k:k + 1], y[k:k + 1])) for k in range(len(y)))
        count += len(y)
        for image, truth, dets in zip(x, y, decode(output), strict=True):
            images.append((image.cpu().numpy().tobytes(), {k: v.cpu().numpy() for k, v in truth.items()},
                           {k: v.cpu().numpy() for k, v in dets.items()}, tuple(image.shape[-2:])))
    if count == 0:
        return {"val_loss": math.nan, "val_accuracy": math.nan, "val_map": math.nan}
    images.sort(key=lambda item: item[0])  # one order however the batches came (ties in scores)
    map50, map_all = mean_ap([i[1] for i in images], [i[2] for i in images], num_classes,
                             [i[3] for i in images])
    return {"val_loss": total / count, "val_accuracy": map50, "val_map": map_all}


def epoch_line(row: dict[str, float], epochs: int) -> str:
    """The trainer's one line per epoch."""
    extra = "".join(f"{key} {row[key]:.3f}  " for key in ("val_miou", "val_map") if key in row)
    return (f"epoch {int(row['epoch'])}/{epochs}  loss {row['train_loss']:.4f}  "
            f"acc {row['train_accuracy']:.3f}  val_loss {row['val_loss']:.4f}  "
            f"val_acc {row['val_accuracy']:.3f}  {extra}{row['samples_per_second']:.0f} "
            f"samples/s  input wait {row['input_wait']:.0%}")
