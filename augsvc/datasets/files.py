"""Datasets stored in files: image folders, .npz arrays, label<TAB>text lines; a loader per suffix."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from augsvc.datasets.base import ON_ERROR, ArrayDataset, Dataset, DatasetInfo, OnError, TextDataset
from augsvc.errors import InputError, LimitError
from augsvc.image.headers import read_header
from augsvc.image.io import (
    CHANNEL_POLICIES,
    IMAGE_SUFFIXES,
    ChannelPolicy,
    decode_image_bytes,
    imdecode,
    orient_image,
    to_channels,
    to_uint8,
)
from augsvc.image.reduced import DECODE_FLAGS
from augsvc.plan import check_int

__all__ = ["DEFAULT_MAX_FILE_BYTES", "DEFAULT_MAX_PIXELS", "ImageFiles", "ImageFolderDataset", "load_npz",
           "load_text_lines", "read_limited_image"]

DEFAULT_MAX_PIXELS = 64_000_000
"""Largest image (height x width) an image folder will decode; the service's default limit too."""
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
"""Largest image file an image folder will read."""
ScaleFor = Callable[[int, int], int]
"""(height, width) of an upright JPEG -> the scale to decode it at (1, 2, 4 or 8)."""
_MAX_NPZ_BYTES = 16 * 1024**3  # declared uncompressed size of a .npz: a guard against zip bombs
class ImageFiles(Dataset):
    """Images read one file per sample when asked for, under the channel, orientation, size and
    error policies every file-backed image dataset shares (folders, COCO, segmentation)."""

    paths: tuple[Path, ...]
    reads_scaled = True

    def _policies(self, channels: ChannelPolicy, on_error: OnError, orient: bool, max_pixels: int,
                  max_file_bytes: int) -> None:
        self.channels = _choice("channels", channels, CHANNEL_POLICIES)
        self.on_error = _choice("on_error", on_error, ON_ERROR)
        if not isinstance(orient, bool):
            raise InputError(f"orient must be true or false, got {orient!r}")
        self.orient = orient
        self.max_pixels = check_int("max_pixels", max_pixels, 1)
        self.max_file_bytes = check_int("max_file_bytes", max_file_bytes, 1)

    def _get(self, index: int) -> np.ndarray:
        return self.read_scaled(index, None)[0]

    def _read(self, index: int, scale_for: Callable[[int, int, int], int] | None
              ) -> tuple[np.ndarray, tuple[int, int] | None]:
        if scale_for is None or self.info.targets:  # targets move with the full image
            return self._get(index), None
        return self.read_scaled(index, lambda height, width: scale_for(index, height, width))

    def read_scaled(self, index: int, scale_for: ScaleFor | None
                    ) -> tuple[np.ndarray, tuple[int, int] | None]:
        """Sample ``index``'s image, and its full (height, width) when it was decoded smaller.

        ``scale_for(height, width)`` gives the scale an RGB JPEG of that (upright) size may be
        decoded at (``ImagePipeline.jpeg_scale``); without it, or for other files and channel
        policies, every image is decoded whole and the size is None.
        """
        path = self.paths[index]
        image, source = read_limited_image(path, self.max_pixels, self.max_file_bytes,
                                           orient=self.orient,
                                           scale_for=scale_for if self.channels == "rgb" else None)
        try:
            return to_channels(image, self.channels), source
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None


class ImageFolderDataset(ImageFiles):
    """A folder of class subfolders of image files, each file read when its sample is asked for.

    Class names are the sorted subfolder names (hidden ones skipped); files are every image
    (by suffix, any case, in nested folders too) sorted by path. Images come back upright (the
    EXIF orientation applied) as uint8 (16-bit files scaled down), with the channels of
    ``channels``; sizes may differ from file to file.

    Args:
        root: the folder.
        channels: "rgb" (default: HxWx3; gray repeated, alpha dropped, palette and CMYK
            converted), "gray" (HxW) or "keep" (as decoded: HxW, HxWx3 or HxWx4).
        on_error: "skip" (default: a file that cannot be read is left out of its batch and
            reported) or "raise".
        orient: apply the EXIF orientation (default); False reads the pixels as stored.
        max_pixels: largest height x width to decode; checked from the file header before decoding.
        max_file_bytes: largest file to read.

    Raises:
        InputError: the folder has no class subfolders, a class subfolder has no images, or an
            option is not one of its values.
    """

    def __init__(self, root: str | Path, *, channels: ChannelPolicy = "rgb",
                 on_error: OnError = "skip", orient: bool = True,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        root = Path(root)
        self._policies(channels, on_error, orient, max_pixels, max_file_bytes)
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



def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def read_limited_image(path: Path, max_pixels: int, max_file_bytes: int, *,
                       orient: bool = True, scale_for: ScaleFor | None = None
                       ) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Read an image file as uint8, refusing files or images over the limits before decoding.

    With ``scale_for``, a JPEG may be decoded smaller, as RGB (``augsvc.image.reduced``): the
    full upright (height, width) then comes back with it; otherwise None.
    """
    try:
        nbytes = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if nbytes > max_file_bytes:
        raise InputError(f"{path}: {nbytes} bytes is over the limit of {max_file_bytes}")
    try:
        data = path.read_bytes()  # once: the header and the decoder read the same bytes
        header = read_header(data)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except LimitError as exc:  # a bad file here, skipped and reported like the others
        raise InputError(f"{path}: {exc}") from None
    if header is not None and header.width * header.height > max_pixels:
        raise InputError(f"{path}: {header.width}x{header.height} pixels is over the limit of "
                         f"{max_pixels}")
    if scale_for is not None and header is not None and data[:2] == b"\xff\xd8":
        turned = orient and header.orientation >= 5  # EXIF 5-8 swap height and width
        upright = (header.width, header.height) if turned else (header.height, header.width)
        scale = scale_for(*upright)
        # Straight to RGB (libjpeg converts), at 1/scale when the pipeline allows.
        try:
            image = imdecode(data, DECODE_FLAGS[scale])
        except InputError:
            pass  # the decode below says what is wrong
        else:
            image = orient_image(image, header.orientation) if orient else image
            return image, upright if scale > 1 else None
    try:
        image = decode_image_bytes(data, orient=orient,
                                   orientation=header.orientation if header is not None else None)
    except InputError as exc:
        raise InputError(f"cannot decode {path}: {exc}") from None
    if image.shape[0] * image.shape[1] > max_pixels:  # a format the header check did not know
        raise InputError(f"{path}: {image.shape[0]}x{image.shape[1]} pixels is over the limit of "
                         f"{max_pixels}")
    return to_uint8(image), None


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
