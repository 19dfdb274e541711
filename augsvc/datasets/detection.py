"""Datasets whose samples carry targets: COCO instances (boxes, classes, instance masks) and
segmentation folders (``images/`` + ``masks/``). Images are read like an image folder's, one file
per sample when it is asked for, under the same channel, orientation, size and error policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from augsvc.datasets.base import DatasetInfo, OnError
from augsvc.datasets.files import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, ImageFiles
from augsvc.errors import InputError
from augsvc.image.io import IMAGE_SUFFIXES, ChannelPolicy, read_image
from augsvc.image.targets import Target

__all__ = ["CocoDataset", "SegmentationFolderDataset", "is_segmentation_folder"]


class CocoDataset(ImageFiles):
    """A COCO instances file (``instances_*.json``) and its images, read with pycocotools.

    Each image is a sample; its target has the boxes of its annotations (COCO's ``[x, y, w, h]``
    as pascal_voc ``[x_min, y_min, x_max, y_max]``), their classes (indices into
    ``class_names``, the categories sorted by id; ``category_ids`` maps back), and, with
    ``masks``, one instance mask per box from the polygons or RLE, and for keypoint annotations
    (person_keypoints files) the labelled points as rows ``x, y, visibility, instance`` (the
    instance is the box's position in the target). Crowd annotations
    (``iscrowd: 1``) are left out, as torchvision's detection references do. The sample label
    is 0: the classes are in the target.

    Args:
        annotations: the JSON file.
        images: the folder of the images' ``file_name``s (default: the JSON's folder).
        masks: decode instance masks (default True when every annotation has a segmentation).
        orient: False by default: COCO boxes are in the stored pixels' frame, as
            pycocotools and torchvision read them.
        channels, on_error, max_pixels, max_file_bytes: as for an image folder.

    Raises:
        InputError: the file is not COCO instances JSON, or an annotation is malformed.
    """

    def __init__(self, annotations: str | Path, *, images: str | Path | None = None,
                 masks: bool | None = None, channels: ChannelPolicy = "rgb",
                 on_error: OnError = "skip", orient: bool = False,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        path = Path(annotations)
        self._policies(channels, on_error, orient, max_pixels, max_file_bytes)
        coco = _read_json(path)
        root = Path(images) if images is not None else path.parent
        categories = sorted(coco["categories"], key=lambda c: c["id"])
        self.category_ids = tuple(int(c["id"]) for c in categories)
        index_of = {cid: k for k, cid in enumerate(self.category_ids)}
        entries = sorted(coco["images"], key=lambda im: im["id"])
        by_image: dict[int, list[dict[str, Any]]] = {int(im["id"]): [] for im in entries}
        for ann in coco["annotations"]:
            if not ann.get("iscrowd", 0):
                by_image.setdefault(int(ann["image_id"]), []).append(ann)
        self._annotations = [by_image[int(im["id"])] for im in entries]
        self._sizes = [(int(im["height"]), int(im["width"])) for im in entries]
        self._index_of = index_of
        self.paths = tuple(root / im["file_name"] for im in entries)
        self.masks = all("segmentation" in a for anns in self._annotations for a in anns) \
            if masks is None else masks
        self.keypoints = any("keypoints" in a for anns in self._annotations for a in anns)
        self.labels = np.zeros(len(entries), np.int64)
        self.labels.flags.writeable = False
        self.info = DatasetInfo(str(path), "image", len(entries),
                                tuple(str(c["name"]) for c in categories),
                                f"COCO {path}: {len(entries)} images, "
                                f"{sum(map(len, self._annotations))} boxes in "
                                f"{len(categories)} categories",
                                targets=("boxes", "labels", *(("masks",) if self.masks else ()),
                                         *(("keypoints",) if self.keypoints else ())))

    def target(self, index: int) -> Target:
        anns = self._annotations[index]
        xywh = np.asarray([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
        boxes = np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])
        labels = np.asarray([self._index_of[int(a["category_id"])] for a in anns], np.int64)
        mask = None
        if self.masks:
            height, width = self._sizes[index]
            mask = np.zeros((height, width, len(anns)), np.uint8)
            for k, ann in enumerate(anns):
                mask[..., k] = _decode_segmentation(ann["segmentation"], height, width)
        keypoints = None
        if self.keypoints:
            rows = [(x, y, v, k) for k, ann in enumerate(anns)
                    for x, y, v in np.asarray(ann.get("keypoints", []), np.float64).reshape(-1, 3)
                    if v > 0]  # v = 0: not labelled, no position
            keypoints = np.asarray(rows, np.float64).reshape(-1, 4)
        return Target(boxes, labels, mask, keypoints)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as COCO JSON: {exc}") from None
    missing = [k for k in ("images", "annotations", "categories") if k not in coco]
    if not isinstance(coco, dict) or missing:
        raise InputError(f"{path} is not COCO instances JSON: it has no {', '.join(missing)}")
    return coco


def _decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """One annotation's polygons or RLE as an HxW uint8 mask (pycocotools' annToMask)."""
    if isinstance(segmentation, list):  # polygons: one or more [x1, y1, x2, y2, ...]
        rles = coco_mask.frPyObjects(segmentation, height, width)
        rle = coco_mask.merge(rles)
    elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
        rle = coco_mask.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return np.asarray(coco_mask.decode(rle), np.uint8)


def is_segmentation_folder(root: Path) -> bool:
    """Whether ``root`` holds exactly ``images/`` and ``masks/`` (a segmentation folder)."""
    names = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return names == {"images", "masks"}


class SegmentationFolderDataset(ImageFiles):
    """``root/images/<name>.<ext>`` with ``root/masks/<name>.png``: a class map per image.

    A mask is an 8-bit image of class indices (read as stored: its first channel if it has
    several); image and mask are turned upright by the image's orientation policy alike. The
    target is ``Target(mask=...)``; the sample label is 0.

    Args:
        root: the folder.
        classes: the class names, index 0 first (default: "0" to the largest index in the masks,
            which reads every mask once).
        channels, on_error, orient, max_pixels, max_file_bytes: as for an image folder.

    Raises:
        InputError: an image without a mask (or a mask without an image), or no images.
    """

    def __init__(self, root: str | Path, *, classes: str | list[str] | None = None,
                 channels: ChannelPolicy = "rgb", on_error: OnError = "skip", orient: bool = True,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        root = Path(root)
        self._policies(channels, on_error, orient, max_pixels, max_file_bytes)
        images = {p.stem: p for p in sorted((root / "images").iterdir())
                  if p.suffix.lower() in IMAGE_SUFFIXES}
        masks = {p.stem: p for p in sorted((root / "masks").iterdir())
                 if p.suffix.lower() in IMAGE_SUFFIXES}
        unmatched = sorted(set(images) ^ set(masks))
        if unmatched:
            raise InputError(f"{root}: images and masks must pair by name; unpaired: "
                             f"{', '.join(unmatched[:10])}")
        if not images:
            raise InputError(f"{root}/images has no image files")
        stems = sorted(images)
        self.paths = tuple(images[s] for s in stems)
        self.mask_paths = tuple(masks[s] for s in stems)
        names = classes.split(",") if isinstance(classes, str) else classes
        if names is None:
            top = max(int(self._mask(i).max()) for i in range(len(stems)))
            names = [str(k) for k in range(top + 1)]
        self.labels = np.zeros(len(stems), np.int64)
        self.labels.flags.writeable = False
        self.info = DatasetInfo(str(root), "image", len(stems), tuple(names),
                                f"segmentation folder {root}: {len(stems)} images, "
                                f"{len(names)} classes", targets=("mask",))

    def _mask(self, index: int) -> np.ndarray:
        mask = read_image(self.mask_paths[index], orient=self.orient)
        return np.ascontiguousarray(mask[..., 0] if mask.ndim == 3 else mask).astype(np.uint8)

    def target(self, index: int) -> Target:
        return Target(mask=self._mask(index))
