"""Datasets the server streams and the trainer reads: built-ins, image folders, .npz, text files.

A :class:`Dataset` hands out ``(sample, label)`` pairs: images as HxW or HxWxC uint8 arrays, texts
as ``str``. :func:`open_dataset` opens one by built-in name or by path. Which samples an epoch
visits, in what order, is the epoch plan's business (``augsvc.plan``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from augsvc.datasets.base import (
    ON_ERROR,
    ArrayDataset,
    Dataset,
    DatasetInfo,
    OnError,
    Sample,
    Skipped,
    Taken,
    TextDataset,
)
from augsvc.datasets.builtins import BUILTIN_DATASETS, WORDNET_LEXNAMES, BuiltinInfo, list_datasets
from augsvc.datasets.detection import CocoDataset, SegmentationFolderDataset, is_segmentation_folder
from augsvc.datasets.files import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageFolderDataset,
    load_npz,
    load_text_lines,
    read_limited_image,
)
from augsvc.datasets.formats import FILE_FORMATS, FOLDER_OPTIONS, SEGMENTATION_OPTIONS, FileFormat
from augsvc.datasets.tables import load_text_table
from augsvc.errors import InputError
from augsvc.image.targets import Target

__all__ = ["BUILTIN_DATASETS", "DEFAULT_MAX_FILE_BYTES", "DEFAULT_MAX_PIXELS", "FILE_FORMATS",
           "ON_ERROR", "WORDNET_LEXNAMES", "ArrayDataset", "BuiltinInfo", "CocoDataset", "Dataset",
           "DatasetInfo", "FileFormat", "ImageFolderDataset", "OnError", "Sample",
           "SegmentationFolderDataset", "Skipped", "Taken", "Target", "TextDataset",
           "list_datasets", "load_npz", "load_text_lines", "load_text_table", "open_dataset",
           "read_limited_image"]


@lru_cache(maxsize=16)
def _open_builtin(name: str, options: tuple[tuple[str, Any], ...]) -> Dataset:
    return BUILTIN_DATASETS[name].loader(**dict(options))


def open_dataset(source: str | Path, **options: Any) -> Dataset:
    """Open a built-in dataset by name, or a dataset stored at a path.

    Built-ins are built on first use and cached in the process (per name and options); the
    arrays they hold are read-only, samples are handed out as copies. Paths are read every call:

    - a folder of class subfolders of images (:class:`ImageFolderDataset`; options
      ``channels``, ``on_error``, ``orient``, ``max_pixels``, ``max_file_bytes``), read lazily;
    - a folder of exactly ``images/`` and ``masks/`` (:class:`SegmentationFolderDataset`;
      ``classes`` and the same options);
    - a file whose suffix ``FILE_FORMATS`` knows: ``.npz`` (:func:`load_npz`), ``.txt`` / ``.tsv``
      of ``label<TAB>text`` lines (:func:`load_text_lines`), a COCO instances ``.json``
      (:class:`CocoDataset`; ``images``, ``masks`` and the image options);
    - a text table (:func:`load_text_table`; options ``text_column``, default "text", and
      ``label_column``, default "label"): ``.csv`` with a header row, ``.jsonl``, ``.parquet``,
      and ``.tsv`` with a header row when one of those options is given.

    A built-in name wins over a relative path of the same name; write ``./digits`` for the folder.

    Args:
        source: a name from :func:`list_datasets`, or a path.
        options: the built-in's options (see ``BUILTIN_DATASETS[name].options``), or the folder's.

    Returns:
        The dataset.

    Raises:
        InputError: unknown name or missing path, unknown option, or content that cannot be read.
        ResourceError: a built-in's data is not installed (WordNet for ``wordnet_glosses``).
    """
    name = str(source)
    if name in BUILTIN_DATASETS:
        info = BUILTIN_DATASETS[name]
        _check_options(name, options, tuple(info.options))
        merged = {**info.options, **options}
        frozen = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(merged.items()))
        return _open_builtin(name, frozen)
    path = Path(name).expanduser()
    if path.is_dir():
        if is_segmentation_folder(path):
            _check_options(name, options, SEGMENTATION_OPTIONS)
            return SegmentationFolderDataset(path, **options)
        _check_options(name, options, FOLDER_OPTIONS)
        return ImageFolderDataset(path, **options)
    if not path.is_file():
        raise InputError(f"unknown dataset {name!r}: not a built-in ({', '.join(list_datasets())}) "
                         "and no such file or folder")
    suffix = path.suffix.lower()
    found = FILE_FORMATS.get(suffix)
    if found is None:
        kinds = "; ".join(f"{s}: {f.description}" for s, f in sorted(FILE_FORMATS.items()))
        raise InputError(f"{path}: unsupported dataset file {suffix or '(no suffix)'}; expected a "
                         f"folder of class subfolders, or one of {kinds}")
    _check_options(name, options, found.options)
    return found.loader(path, **options)


def _check_options(source: str, options: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(f"dataset {source!r}: unknown option(s) {unknown}; allowed: "
                         f"{', '.join(allowed) if allowed else 'none'}")
