"""Which loader opens a dataset path: a loader per file suffix, and the kinds of folders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augsvc.datasets.base import Dataset, TextDataset
from augsvc.datasets.detection import CocoDataset
from augsvc.datasets.files import load_npz, load_text_lines
from augsvc.datasets.tables import load_text_table

__all__ = ["FILE_FORMATS", "FOLDER_OPTIONS", "SEGMENTATION_OPTIONS", "FileFormat"]

_IMAGE_POLICIES = ("channels", "on_error", "orient", "max_pixels", "max_file_bytes")
_TEXT_COLUMNS = ("text_column", "label_column")


@dataclass(frozen=True)
class FileFormat:
    """A dataset file format: the loader for its suffixes and the options the loader takes."""

    description: str
    loader: Callable[..., Dataset]
    options: tuple[str, ...] = ()


def _load_tsv(path: str | Path, **columns: Any) -> TextDataset:
    """``label<TAB>text`` lines, or a table with a header row when a column option is given."""
    return load_text_table(path, **columns) if columns else load_text_lines(path)


FILE_FORMATS: Mapping[str, FileFormat] = {
    ".npz": FileFormat("a .npz file of images and labels", load_npz),
    ".txt": FileFormat("a .txt file of 'label<TAB>text' lines", load_text_lines),
    ".tsv": FileFormat("a .tsv file of 'label<TAB>text' lines (with text_column/label_column: a "
                       "header row and those columns)", _load_tsv, _TEXT_COLUMNS),
    ".csv": FileFormat("a .csv file with a header row (columns text, label)", load_text_table,
                       _TEXT_COLUMNS),
    ".jsonl": FileFormat("a .jsonl file of JSON objects (keys text, label)", load_text_table,
                         _TEXT_COLUMNS),
    ".parquet": FileFormat("a .parquet table (columns text, label)", load_text_table, _TEXT_COLUMNS),
    ".json": FileFormat("a COCO instances .json (boxes, classes, instance masks)", CocoDataset,
                        ("images", "masks", *_IMAGE_POLICIES)),
}
"""Dataset files by suffix (lower case)."""


FOLDER_OPTIONS = _IMAGE_POLICIES
"""The options an image folder (class folders) takes."""

SEGMENTATION_OPTIONS = ("classes", *_IMAGE_POLICIES)
"""The options a segmentation folder (images/ + masks/) takes."""
