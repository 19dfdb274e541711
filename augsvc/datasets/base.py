"""What every dataset is: indexable (sample, label) pairs with a DatasetInfo; in-memory kinds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from augsvc.errors import InputError
from augsvc.image.targets import Target

__all__ = ["ON_ERROR", "ArrayDataset", "Dataset", "DatasetInfo", "OnError", "Sample", "Skipped",
           "Taken", "TextDataset"]

Sample = np.ndarray | str
OnError = Literal["skip", "raise"]
ON_ERROR: tuple[OnError, ...] = ("skip", "raise")
"""What a dataset does with a sample it cannot read: skip it and report it, or raise."""


@dataclass(frozen=True)
class Skipped:
    """A sample that could not be read, and why (the file, and what was wrong with it)."""

    index: int
    reason: str


@dataclass(frozen=True)
class Taken:
    """The samples of a batch that could be read, and the ones skipped: ``indices`` and the
    indices of ``skipped`` together are exactly the indices asked for."""

    samples: list[Sample]
    labels: np.ndarray
    indices: np.ndarray
    skipped: tuple[Skipped, ...] = field(default=())
    targets: list[Target] | None = None  # one per sample, for datasets with targets
    # The full (height, width) of images read as smaller JPEG decodes (None: read whole), when
    # take() was given scale_for.
    sources: list[tuple[int, int] | None] | None = None

@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset holds.

    Attributes:
        name: the built-in name, or the path it was opened from.
        kind: "image" or "text".
        size: number of samples.
        class_names: label ``i`` means ``class_names[i]``.
        description: one line for people.
        shape: the shape every image has, when they all share one (None for text and folders).
        dtype: the dtype of every image ("uint8"); None for text.
    """

    name: str
    kind: str
    size: int
    class_names: tuple[str, ...]
    description: str
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    targets: tuple[str, ...] = ()  # detection/segmentation: the Target fields it has ("boxes", ...)


class Dataset:
    """Indexable samples with integer labels; subclasses implement :meth:`_get`.

    Attributes:
        info: the :class:`DatasetInfo`.
        labels: int64 array of shape (N,), the label of every sample (known without loading it).
    """

    info: DatasetInfo
    labels: np.ndarray
    on_error: OnError = "raise"  # in-memory datasets have nothing that can fail to read
    reads_scaled = False  # whether take(scale_for=...) can decode its JPEGs smaller

    def __len__(self) -> int:
        return self.info.size

    def __getitem__(self, index: int) -> tuple[Sample, int]:
        return self.sample(index)

    def sample(self, index: int) -> tuple[Sample, int]:
        """Sample ``index`` and its label.

        Raises:
            IndexError: ``index`` is not in ``range(len(self))``.
            InputError: the stored sample cannot be read (image folders).
        """
        if isinstance(index, bool) or not isinstance(index, int | np.integer) \
                or not 0 <= index < self.info.size:
            raise IndexError(f"sample index {index!r} is out of range for {self.info.size} samples")
        return self._get(int(index)), int(self.labels[index])

    def samples(self, indices: Sequence[int] | np.ndarray) -> tuple[list[Sample], np.ndarray]:
        """Several samples at once: ``(samples, labels)`` with labels an int64 array.

        Raises:
            IndexError: an index is not in ``range(len(self))``.
            InputError: a stored sample cannot be read (image folders).
        """
        idx = _check_indices(indices, self.info.size)
        return self._get_many(idx), self.labels[idx]

    def take(self, indices: Sequence[int] | np.ndarray,
             scale_for: Callable[[int, int, int], int] | None = None) -> Taken:
        """Several samples under the dataset's ``on_error`` policy: with "skip", a sample that
        cannot be read is left out and reported in ``Taken.skipped``; with "raise" it raises.

        ``scale_for(index, height, width)``, for image files, gives the scale sample ``index``'s
        JPEG may be decoded at (``ImagePipeline.jpeg_scale``); ``Taken.sources`` then has the
        full size of every image read smaller.

        Raises:
            IndexError: an index is not in ``range(len(self))``.
            InputError: a stored sample cannot be read, and the policy is "raise".
        """
        idx = _check_indices(indices, self.info.size)
        skipped: list[Skipped] = []
        sources: list[tuple[int, int] | None] | None = None
        if not self.reads_scaled:
            scale_for = None
        if self.on_error == "raise" and scale_for is None:
            kept_idx, samples = idx, self._get_many(idx)
        else:
            samples, kept, sources = [], [], []
            for index in idx.tolist():
                try:
                    sample, source = self._read(index, scale_for)
                except InputError as exc:
                    if self.on_error == "raise":
                        raise
                    skipped.append(Skipped(index, str(exc)))
                    continue
                samples.append(sample)
                sources.append(source)
                kept.append(index)
            kept_idx = np.asarray(kept, np.int64)
            if not any(sources):
                sources = None
        targets = [self.target(int(i)) for i in kept_idx] if self.info.targets else None
        return Taken(samples, self.labels[kept_idx], kept_idx, tuple(skipped), targets, sources)

    def _read(self, index: int, scale_for: Callable[[int, int, int], int] | None
              ) -> tuple[Sample, tuple[int, int] | None]:
        """Sample ``index``, and its full size when it was read smaller (image files only)."""
        return self._get(index), None

    def target(self, index: int) -> Target:
        """The target of sample ``index`` (datasets whose ``info.targets`` is not empty)."""
        raise NotImplementedError(f"{self.info.name} has no targets")

    def _get(self, index: int) -> Sample:
        raise NotImplementedError

    def _get_many(self, idx: np.ndarray) -> list[Sample]:
        return [self._get(int(i)) for i in idx]


def _check_indices(indices: Sequence[int] | np.ndarray, size: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.size == 0:
        return np.zeros(0, np.int64)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise IndexError(f"indices must be a 1-D sequence of integers, got {idx.dtype} of shape {idx.shape}")
    bad = (idx < 0) | (idx >= size)
    if bad.any():
        raise IndexError(f"sample index {idx[bad][0]} is out of range for {size} samples")
    return idx.astype(np.int64, copy=False)


class ArrayDataset(Dataset):
    """Images held in one uint8 array of shape (N, H, W) or (N, H, W, C); read-only.

    Args:
        images: uint8 array (N, H, W) or (N, H, W, C).
        labels: integer labels of shape (N,), in ``range(len(class_names))``.
        class_names: names of the classes.
        name: the dataset's name.
        description: one line for people.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *,
                 name: str, description: str = "") -> None:
        self.images = np.ascontiguousarray(images)
        self.images.flags.writeable = False  # shared by every caller of a cached built-in
        self.labels = np.asarray(labels, np.int64)
        self.labels.flags.writeable = False
        self.info = DatasetInfo(name, "image", len(self.images), tuple(class_names), description,
                                shape=tuple(self.images.shape[1:]), dtype=str(self.images.dtype))

    def _get(self, index: int) -> np.ndarray:
        return self.images[index].copy()

    def _get_many(self, idx: np.ndarray) -> list[Sample]:
        return list(self.images[idx])  # one gather; the rows are views of a fresh, writable array


class TextDataset(Dataset):
    """Texts held in memory.

    Args:
        texts: the samples.
        labels: integer labels, one per text, in ``range(len(class_names))``.
        class_names: names of the classes.
        name: the dataset's name.
        description: one line for people.
        keys: an identifier per text, where the source has one (WordNet synset keys "n:01234567").
    """

    def __init__(self, texts: Sequence[str], labels: np.ndarray | Sequence[int], class_names: Sequence[str],
                 *, name: str, description: str = "", keys: Sequence[str] | None = None) -> None:
        self.texts = tuple(texts)
        self.labels = np.asarray(labels, np.int64)
        self.labels.flags.writeable = False
        self.keys = tuple(keys) if keys is not None else None
        self.info = DatasetInfo(name, "text", len(self.texts), tuple(class_names), description)

    def _get(self, index: int) -> str:
        return self.texts[index]
