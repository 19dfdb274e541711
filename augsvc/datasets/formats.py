"""Which loader opens a dataset path: a loader per file suffix, and the kinds of folders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from augsvc.datasets.base import Dataset
from augsvc.datasets.detection import CocoDataset
from augsvc.datasets.files import load_npz, load_text_lines

__all__ = ["FILE_FORMATS", "FOLDER_OPTIONS", "SEGMENTATION_OPTIONS", "FileFormat"]

_IMAGE_POLICIES = ("channels", "on_error", "orient", "max_pixels", "max_file_bytes")


@dataclass(frozen=True)
class FileFormat:
    """A dataset file format: the loader for its suffixes and the options the loader takes."""

    description: str
    loader: Callable[..., Dataset]
    options: tuple[str, ...] = ()


FILE_FORMATS: Mapping[str, FileFormat] = {
    ".npz": FileFormat("a .npz file of images and labels", load_npz),
    ".txt": FileFormat("a .txt file of 'label<TAB>text' lines", load_text_lines),
    ".tsv": FileFormat("a .tsv file of 'label<TAB>text' lines", load_text_lines),
    ".json": FileFormat("a COCO instances .json (boxes, classes, instance masks)", CocoDataset,
                        ("images", "masks", *_IMAGE_POLICIES)),
}
"""Dataset files by suffix (lower case)."""

FOLDER_OPTIONS = _IMAGE_POLICIES
"""The options an image folder (class folders) takes."""

SEGMENTATION_OPTIONS = ("classes", *_IMAGE_POLICIES)
"""The options a segmentation folder (images/ + masks/) takes."""
