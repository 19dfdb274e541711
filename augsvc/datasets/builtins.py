"""The built-in datasets: scikit-learn digits, scikit-image photos and faces, WordNet glosses."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from augsvc.datasets.base import ArrayDataset, Dataset, TextDataset
from augsvc.errors import InputError
from augsvc.image.io import to_uint8
from augsvc.plan import check_int, seeded_permutation
from augsvc.seeding import MAX_SEED

__all__ = ["BUILTIN_DATASETS", "WORDNET_LEXNAMES", "BuiltinInfo", "list_datasets"]

WORDNET_LEXNAMES = ("noun.animal", "noun.artifact", "noun.body", "noun.food", "noun.location",
                    "noun.person", "noun.plant")
"""Default classes of ``wordnet_glosses``: concrete noun files with little overlap in topic, each
with more than 2,000 synsets in WordNet 3.0 (noun.body, the smallest, has 2,016), so the default
``max_per_class=2000`` gives exactly balanced classes (14,000 glosses)."""


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
