"""Server-side datasets: built-in demo sets, image folders, .npz files and text lines.

A :class:`Dataset` hands out ``(sample, label)`` pairs: images as HxW or HxWxC uint8 arrays, texts
as ``str``. :func:`open_dataset` opens one by built-in name or by path. The epoch plan lives in
``augsvc.plan`` and is re-exported here (:func:`epoch_order`, :func:`epoch_batches`, ...).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from augsvc.errors import InputError, LimitError
from augsvc.image.io import IMAGE_SUFFIXES, header_size, read_image, to_uint8
from augsvc.plan import (
    Part,
    augment_index,
    check_int,
    epoch_batches,
    epoch_order,
    num_batches,
    part_indices,
    seeded_permutation,
)
from augsvc.seeding import MAX_SEED

__all__ = [
    "BUILTIN_DATASETS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_PIXELS",
    "WORDNET_LEXNAMES",
    "ArrayDataset",
    "BuiltinInfo",
    "Dataset",
    "DatasetInfo",
    "ImageFolderDataset",
    "Part",
    "Sample",
    "TextDataset",
    "augment_index",
    "epoch_batches",
    "epoch_order",
    "list_datasets",
    "load_npz",
    "load_text_lines",
    "num_batches",
    "open_dataset",
    "part_indices",
    "read_limited_image",
]

Sample = np.ndarray | str

DEFAULT_MAX_PIXELS = 64_000_000
"""Largest image (height x width) an image folder will decode; the service's default limit too."""
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
"""Largest image file an image folder will read."""
_MAX_NPZ_BYTES = 16 * 1024**3  # declared uncompressed size of a .npz: a guard against zip bombs
_TEXT_SUFFIXES = frozenset({".txt", ".tsv"})

WORDNET_LEXNAMES = ("noun.animal", "noun.artifact", "noun.body", "noun.food", "noun.location",
                    "noun.person", "noun.plant")
"""Default classes of ``wordnet_glosses``: concrete noun files with little overlap in topic, each
with more than 2,000 synsets in WordNet 3.0 (noun.body, the smallest, has 2,016), so the default
``max_per_class=2000`` gives exactly balanced classes (14,000 glosses)."""


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


class Dataset:
    """Indexable samples with integer labels; subclasses implement :meth:`_get`.

    Attributes:
        info: the :class:`DatasetInfo`.
        labels: int64 array of shape (N,), the label of every sample (known without loading it).
    """

    info: DatasetInfo
    labels: np.ndarray

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


class ImageFolderDataset(Dataset):
    """A folder of class subfolders of image files, each file read when its sample is asked for.

    Class names are the sorted subfolder names (hidden ones skipped); files are every image
    (by suffix, any case, in nested folders too) sorted by path. Images come back as uint8
    (16-bit files scaled down) HxW, HxWx3 RGB or HxWx4 RGBA; sizes may differ from file to file.

    Args:
        root: the folder.
        max_pixels: largest height x width to decode; checked from the file header before decoding.
        max_file_bytes: largest file to read.

    Raises:
        InputError: the folder has no class subfolders, or a class subfolder has no images.
    """

    def __init__(self, root: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        root = Path(root)
        self.max_pixels = check_int("max_pixels", max_pixels, 1)
        self.max_file_bytes = check_int("max_file_bytes", max_file_bytes, 1)
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            raise InputError(f"image folder {root} has no class subfolders (expected {root}/<class>/<image>)")
        paths: list[Path] = []
        labels: list[int] = []
        for label, name in enumerate(classes):
            files = sorted(p for p in (root / name).rglob("*")
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(root).parts))
            if not files:
                raise InputError(f"class folder {root / name} has no image files "
                                 f"(suffixes {', '.join(sorted(IMAGE_SUFFIXES))})")
            paths += files
            labels += [label] * len(files)
        self.root = root
        self.paths = tuple(paths)
        self.labels = np.asarray(labels, np.int64)
        self.labels.flags.writeable = False
        self.info = DatasetInfo(str(root), "image", len(paths), tuple(classes),
                                f"image folder {root}: {len(paths)} images in {len(classes)} classes")

    def _get(self, index: int) -> np.ndarray:
        return read_limited_image(self.paths[index], self.max_pixels, self.max_file_bytes)


def read_limited_image(path: Path, max_pixels: int, max_file_bytes: int) -> np.ndarray:
    """Read an image file as uint8, refusing files or images over the limits before decoding."""
    try:
        nbytes = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if nbytes > max_file_bytes:
        raise InputError(f"{path}: {nbytes} bytes is over the limit of {max_file_bytes}")
    try:
        dims = header_size(path)
    except LimitError as exc:  # a bad file here, skipped and reported like the others
        raise InputError(f"{path}: {exc}") from None
    if dims is not None and dims[0] * dims[1] > max_pixels:
        raise InputError(f"{path}: {dims[0]}x{dims[1]} pixels is over the limit of {max_pixels}")
    image = read_image(path)
    if image.shape[0] * image.shape[1] > max_pixels:  # a format the header check did not know
        raise InputError(f"{path}: {image.shape[0]}x{image.shape[1]} pixels is over the limit of "
                         f"{max_pixels}")
    return to_uint8(image)


# --------------------------------------------------------------------------- .npz and text lines

def load_npz(path: str | Path) -> ArrayDataset:
    """An image dataset from a .npz file.

    Images are array ``x`` or ``images`` of shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4:
    uint8, or floating point in [0, 1] (scaled by 255 and rounded). Labels are ``y`` or
    ``labels``: N non-negative integers. ``class_names`` (optional, strings) names label ``i``;
    without it the names are "0", "1", ... up to the largest label.

    Raises:
        InputError: the file cannot be read, or an array is missing or malformed.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
        if declared > _MAX_NPZ_BYTES:
            raise InputError(f"{path}: {declared} bytes uncompressed is over the limit of {_MAX_NPZ_BYTES}")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read {path} as .npz: {exc}") from None
    images = _pick(arrays, path, ("x", "images"))
    labels = _pick(arrays, path, ("y", "labels"))
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3, 4)) \
            or images.shape[0] == 0:
        raise InputError(f"{path}: images must have shape (N, H, W) or (N, H, W, C) with N >= 1 and "
                         f"C in 1, 3, 4; got {images.shape}")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating):
            raise InputError(f"{path}: images must be uint8, or float in [0, 1]; got {images.dtype}")
        if not np.isfinite(images).all() or images.min() < 0.0 or images.max() > 1.0:
            raise InputError(f"{path}: float images must lie in [0, 1]; got values in "
                             f"[{np.nanmin(images)}, {np.nanmax(images)}]")
        images = np.round(images * 255.0).astype(np.uint8)
    if labels.ndim != 1 or len(labels) != len(images):
        raise InputError(f"{path}: labels must have shape ({len(images)},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_:
        raise InputError(f"{path}: labels must be integers, got {labels.dtype}")
    if labels.min() < 0:
        raise InputError(f"{path}: labels must be >= 0, got {labels.min()}")
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise InputError(f"{path}: class_names must be a 1-D array of strings, got {names.dtype} "
                             f"of shape {names.shape}")
        class_names = tuple(str(n.decode() if isinstance(n, bytes) else n) for n in names)
        if labels.max() >= len(class_names):
            raise InputError(f"{path}: label {labels.max()} has no class name ({len(class_names)} given)")
    else:
        class_names = tuple(str(i) for i in range(int(labels.max()) + 1))
    return ArrayDataset(images, labels, class_names, name=str(path),
                        description=f".npz file {path}: {len(images)} images of {images.shape[1:]}")


def _pick(arrays: Mapping[str, np.ndarray], path: Path, keys: tuple[str, str]) -> np.ndarray:
    found = [k for k in keys if k in arrays]
    if len(found) != 1:
        what = "has both" if found else "has neither"
        raise InputError(f"{path} {what} of the arrays {keys[0]!r} / {keys[1]!r} (it has {sorted(arrays)})")
    return arrays[found[0]]


def load_text_lines(path: str | Path) -> TextDataset:
    """A text dataset from a file of ``label<TAB>text`` lines (UTF-8; a leading BOM is allowed).

    Blank lines are skipped; the text is everything after the first tab, trailing newline and
    carriage return removed. Class names are the sorted distinct labels.

    Raises:
        InputError: the file cannot be read, is not UTF-8, or a line has no tab, an empty label or
            an empty text (the message gives the line number).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    raw_labels: list[str] = []
    texts: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}, line {number}: not valid UTF-8 ({exc.reason} at byte {exc.start})") \
                from None
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        if not tab:
            raise InputError(f"{path}, line {number}: no tab; expected 'label<TAB>text'")
        if not label.strip() or not text.strip():
            raise InputError(f"{path}, line {number}: empty {'label' if not label.strip() else 'text'}")
        raw_labels.append(label)
        texts.append(text)
    if not texts:
        raise InputError(f"{path} has no 'label<TAB>text' lines")
    class_names = sorted(set(raw_labels))
    index = {name: i for i, name in enumerate(class_names)}
    return TextDataset(texts, [index[label] for label in raw_labels], class_names, name=str(path),
                       description=f"text lines {path}: {len(texts)} texts in {len(class_names)} classes")


# --------------------------------------------------------------------------- built-in datasets

def _digits(size: int) -> ArrayDataset:
    from sklearn.datasets import load_digits

    size = check_int("size", size, 8, 1024)
    digits = load_digits()
    small = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in small])
    return ArrayDataset(images, digits.target, [str(d) for d in range(10)], name="digits",
                        description=f"scikit-learn handwritten digits, 8x8 upsampled to {size}x{size} "
                                    "(bilinear), grayscale")


def _lfw_subset() -> ArrayDataset:
    import skimage.data

    images = to_uint8(skimage.data.lfw_subset())  # float64 in [0, 1] -> 0..255
    labels = np.repeat([0, 1], 100)  # skimage: "100 first images are faces and subsequent 100 are non-faces"
    return ArrayDataset(images, labels, ("face", "non_face"), name="lfw_subset",
                        description="scikit-image LFW subset: 100 faces, 100 non-faces, 25x25 grayscale")


_SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "rocket")


def _skimage_photos(size: int) -> ArrayDataset:
    import skimage.data

    size = check_int("size", size, 8, 4096)
    images = []
    for name in _SKIMAGE_PHOTOS:
        photo = getattr(skimage.data, name)()
        h, w = photo.shape[:2]
        side = min(h, w)  # centre square crop keeps the aspect ratio
        top, left = (h - side) // 2, (w - side) // 2
        square = np.ascontiguousarray(photo[top:top + side, left:left + side])
        interpolation = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
        images.append(cv2.resize(square, (size, size), interpolation=interpolation))
    return ArrayDataset(np.stack(images), np.arange(len(images)), _SKIMAGE_PHOTOS, name="skimage",
                        description=f"{len(images)} scikit-image colour photos, centre-cropped and resized "
                                    f"to {size}x{size} RGB; label = photo")


def _wordnet_glosses(lexnames: str | Sequence[str], max_per_class: int | None,
                     selection_seed: int) -> TextDataset:
    from augsvc.text.wordnet import load_wordnet

    names = [n.strip() for n in lexnames.split(",")] if isinstance(lexnames, str) else list(lexnames)
    if not names or len(set(names)) != len(names):
        raise InputError(f"lexnames must be distinct lexicographer file names, got {names}")
    if max_per_class is not None:
        check_int("max_per_class", max_per_class, 1)
    check_int("selection_seed", selection_seed, 0, MAX_SEED)
    wn = load_wordnet()
    keys_by_name: dict[str, list[str]] = {n: [] for n in sorted(names)}
    for key, lexname in wn.lexnames.items():
        if lexname in keys_by_name:
            keys_by_name[lexname].append(key)
    empty = [n for n, keys in keys_by_name.items() if not keys]
    if empty:
        known = sorted(set(wn.lexnames.values()))
        raise InputError(f"unknown lexnames {empty}; known: {', '.join(known)}")
    texts: list[str] = []
    labels: list[int] = []
    chosen: list[str] = []
    for label, keys in enumerate(keys_by_name.values()):
        keys.sort()
        if max_per_class is not None and len(keys) > max_per_class:
            keep = np.sort(seeded_permutation("wordnet", len(keys), selection_seed, label)[:max_per_class])
            keys = [keys[i] for i in keep]
        chosen += keys
        texts += [wn.glosses[k][0] for k in keys]
        labels += [label] * len(keys)
    return TextDataset(texts, labels, tuple(keys_by_name), name="wordnet_glosses", keys=chosen,
                       description=f"WordNet 3.0 glosses labelled by lexicographer file "
                                   f"({', '.join(keys_by_name)}), {len(texts)} texts")


@dataclass(frozen=True)
class BuiltinInfo:
    """A built-in dataset: what it is and how to load it.

    Attributes:
        name: the name :func:`open_dataset` takes.
        kind: "image" or "text".
        description: one line for people.
        loader: builds the dataset from the options (all given, as keywords).
        options: option name -> default value.
    """

    name: str
    kind: str
    description: str
    loader: Callable[..., Dataset]
    options: Mapping[str, Any] = field(default_factory=dict)


BUILTIN_DATASETS: dict[str, BuiltinInfo] = {
    info.name: info for info in (
        BuiltinInfo("digits", "image", "scikit-learn digits: 1797 grayscale images of 0-9, 8x8 bilinearly "
                    "upsampled to size x size (default 32) uint8", _digits, {"size": 32}),
        BuiltinInfo("lfw_subset", "image", "scikit-image LFW subset: 200 grayscale 25x25 uint8 images, "
                    "100 faces then 100 non-faces", _lfw_subset),
        BuiltinInfo("skimage", "image", f"{len(_SKIMAGE_PHOTOS)} scikit-image colour photos, centre-cropped "
                    "to a square and resized to size x size (default 256) RGB uint8; one class per photo",
                    _skimage_photos, {"size": 256}),
        BuiltinInfo("wordnet_glosses", "text", "WordNet 3.0 glosses labelled by lexicographer file "
                    f"(default {', '.join(WORDNET_LEXNAMES)}), up to max_per_class each (default 2000, "
                    "a seeded subsample of the synsets sorted by key)", _wordnet_glosses,
                    {"lexnames": WORDNET_LEXNAMES, "max_per_class": 2000, "selection_seed": 0}),
    )
}


def list_datasets() -> list[str]:
    """Names of the built-in datasets, sorted (nothing is loaded)."""
    return sorted(BUILTIN_DATASETS)


@lru_cache(maxsize=16)
def _open_builtin(name: str, options: tuple[tuple[str, Any], ...]) -> Dataset:
    return BUILTIN_DATASETS[name].loader(**dict(options))


_PATH_OPTIONS = {"folder": ("max_pixels", "max_file_bytes"), "npz": (), "text": ()}


def open_dataset(source: str | Path, **options: Any) -> Dataset:
    """Open a built-in dataset by name, or a dataset stored at a path.

    Built-ins are built on first use and cached in the process (per name and options); the
    arrays they hold are read-only, samples are handed out as copies. Paths are read every call:

    - a folder of class subfolders of images (:class:`ImageFolderDataset`; options
      ``max_pixels``, ``max_file_bytes``), read lazily per sample;
    - a ``.npz`` file (:func:`load_npz`);
    - a ``.txt`` / ``.tsv`` file of ``label<TAB>text`` lines (:func:`load_text_lines`).

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
        _check_options(name, options, _PATH_OPTIONS["folder"])
        return ImageFolderDataset(path, **options)
    if not path.is_file():
        raise InputError(f"unknown dataset {name!r}: not a built-in ({', '.join(list_datasets())}) "
                         "and no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        _check_options(name, options, _PATH_OPTIONS["npz"])
        return load_npz(path)
    if suffix in _TEXT_SUFFIXES:
        _check_options(name, options, _PATH_OPTIONS["text"])
        return load_text_lines(path)
    raise InputError(f"{path}: unsupported dataset file {suffix or '(no suffix)'}; expected a folder of "
                     "class subfolders, a .npz file, or a .txt/.tsv file of 'label<TAB>text' lines")


def _check_options(source: str, options: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(f"dataset {source!r}: unknown option(s) {unknown}; allowed: "
                         f"{', '.join(allowed) if allowed else 'none'}")
