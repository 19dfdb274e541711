"""Datasets (built-ins, image folders, .npz, text lines) and the epoch plan's exactly-once guarantees."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from augsvc.datasets import (
    BUILTIN_DATASETS,
    WORDNET_LEXNAMES,
    ArrayDataset,
    Dataset,
    ImageFolderDataset,
    list_datasets,
    open_dataset,
)
from augsvc.errors import InputError
from augsvc.image.io import write_image
from augsvc.resources import find_wordnet

# name -> (kind, size, shape of every image, class names); None where it varies or is long.
EXPECTED: dict[str, tuple[str, int, tuple[int, ...] | None, tuple[str, ...] | None]] = {
    "digits": ("image", 1797, (32, 32), tuple("0123456789")),
    "lfw_subset": ("image", 200, (25, 25), ("face", "non_face")),
    "skimage": ("image", 6, (256, 256, 3), ("astronaut", "chelsea", "coffee", "hubble_deep_field",
                                             "immunohistochemistry", "rocket")),
    "wordnet_glosses": ("text", 7 * 2000, None, WORDNET_LEXNAMES),
}


def test_every_builtin_has_a_test_row() -> None:
    assert sorted(EXPECTED) == list_datasets() == sorted(BUILTIN_DATASETS)


@pytest.mark.parametrize("name", list_datasets())
def test_builtin_matches_its_documented_shape(name: str) -> None:
    kind, size, shape, classes = EXPECTED[name]
    ds = open_dataset(name)
    assert (ds.info.name, ds.info.kind, ds.info.size) == (name, kind, size)
    assert len(ds) == len(ds.labels) == size
    assert BUILTIN_DATASETS[name].kind == kind
    if classes is not None:
        assert ds.info.class_names == classes
    assert ds.labels.dtype == np.int64
    assert ds.labels.min() >= 0 and ds.labels.max() == len(ds.info.class_names) - 1
    picks = [0, size // 2, size - 1]
    items, labels = ds.samples(picks)
    assert labels.tolist() == [ds.sample(i)[1] for i in picks]
    for item, i in zip(items, picks, strict=True):
        single = ds.sample(i)[0]
        if kind == "image":
            assert isinstance(item, np.ndarray) and isinstance(single, np.ndarray)
            assert item.dtype == np.uint8 and item.shape == shape == ds.info.shape
            assert ds.info.dtype == "uint8"
            assert np.array_equal(item, single)
        else:
            assert isinstance(item, str) and item == single and item.strip()
            assert ds.info.shape is None and ds.info.dtype is None
    assert open_dataset(name) is ds  # built once per process


def test_builtin_samples_are_copies_of_read_only_storage() -> None:
    ds = open_dataset("lfw_subset")
    image, _ = ds.sample(3)
    assert isinstance(image, np.ndarray)
    before = image.copy()
    image[...] = 7
    assert np.array_equal(ds.sample(3)[0], before)
    assert isinstance(ds, ArrayDataset) and not ds.images.flags.writeable


def test_digits_are_sklearn_digits_scaled_and_upsampled() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    ds = open_dataset("digits", size=16)
    assert ds.info.shape == (16, 16) and open_dataset("digits") is not ds
    assert np.array_equal(ds.labels, digits.target)
    image, label = ds.sample(5)
    assert isinstance(image, np.ndarray) and label == digits.target[5]
    # Oracle: torch's bilinear resize (half-pixel centres, like OpenCV) of the 0..255 image.
    scaled = torch.from_numpy(np.round(digits.images[5] * 255 / 16))[None, None]
    expected = F.interpolate(scaled, size=(16, 16), mode="bilinear", align_corners=False)[0, 0].numpy()
    assert np.abs(image.astype(float) - expected).max() <= 1.0
    assert image.max() > 200 and image.min() == 0


def test_lfw_subset_faces_first() -> None:
    import skimage.data

    raw = skimage.data.lfw_subset()
    ds = open_dataset("lfw_subset")
    assert ds.labels.tolist() == [0] * 100 + [1] * 100
    assert isinstance(ds, ArrayDataset)
    assert np.array_equal(ds.images, np.round(raw * 255).astype(np.uint8))


def test_skimage_photos_are_centre_crops_of_the_named_photos() -> None:
    import skimage.data

    ds = open_dataset("skimage")
    assert ds.labels.tolist() == list(range(6))
    for i, name in enumerate(ds.info.class_names):
        photo = getattr(skimage.data, name)().astype(float)
        h, w = photo.shape[:2]
        side = min(h, w)
        crop = photo[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
        image, label = ds.sample(i)
        assert label == i and isinstance(image, np.ndarray)
        assert np.abs(image.astype(float).mean(axis=(0, 1)) - crop.mean(axis=(0, 1))).max() < 2.0


_LEXFILE_NUMBERS = {"noun.animal": 5, "noun.artifact": 6, "noun.body": 8, "noun.food": 13,
                    "noun.location": 15, "noun.person": 18, "noun.plant": 20}  # lexnames(5WN)


def test_wordnet_glosses_labels_match_the_dictionary_files() -> None:
    ds = open_dataset("wordnet_glosses")
    keys = ds.keys  # type: ignore[attr-defined]
    assert len(keys) == len(set(keys)) == len(ds)
    assert np.bincount(ds.labels).tolist() == [2000] * 7
    data_noun = find_wordnet() / "data.noun"
    with data_noun.open("rb") as handle:
        for i in [0, 1999, 2000, 5555, 9001, 13999]:
            text, label = ds.sample(i)
            pos, offset = keys[i].split(":")
            handle.seek(int(offset))  # a synset offset is its byte offset in data.noun
            line = handle.readline().decode("latin-1")
            head, _, gloss = line.partition(" | ")
            assert pos == "n" and int(head.split()[0]) == int(offset)
            assert int(head.split()[1]) == _LEXFILE_NUMBERS[ds.info.class_names[label]]
            assert text == gloss.strip()


def test_wordnet_glosses_selection_is_deterministic_and_configurable() -> None:
    small = open_dataset("wordnet_glosses", lexnames=["noun.food", "noun.body"], max_per_class=30)
    again = open_dataset("wordnet_glosses", lexnames=("noun.food", "noun.body"), max_per_class=30)
    other = open_dataset("wordnet_glosses", lexnames="noun.food,noun.body", max_per_class=30,
                         selection_seed=1)
    assert again is small
    assert small.info.class_names == other.info.class_names == ("noun.body", "noun.food")
    assert len(small) == len(other) == 60 and np.bincount(small.labels).tolist() == [30, 30]
    keys = small.keys  # type: ignore[attr-defined]
    assert list(keys[:30]) == sorted(keys[:30]) and list(keys[30:]) == sorted(keys[30:])
    assert keys != other.keys  # type: ignore[attr-defined]
    # A fresh build (bypassing the cache) picks the same synsets.
    rebuilt = BUILTIN_DATASETS["wordnet_glosses"].loader(lexnames=("noun.food", "noun.body"),
                                                         max_per_class=30, selection_seed=0)
    assert rebuilt.keys == keys and rebuilt.texts == small.texts  # type: ignore[attr-defined]
    everything = open_dataset("wordnet_glosses", lexnames=["noun.body"], max_per_class=None)
    assert len(everything) == 2016  # all of noun.body in WordNet 3.0


@pytest.mark.parametrize(("source", "options", "match"), [
    ("wordnet_glosses", {"lexnames": ["noun.animal", "noun.nope"]}, r"unknown lexnames \['noun.nope'\]"),
    ("wordnet_glosses", {"max_per_class": 0}, "max_per_class must be >= 1"),
    ("digits", {"size": 4}, r"size must be in \[8, 1024\]"),
    ("digits", {"colour": True}, r"unknown option\(s\) \['colour'\]; allowed: size"),
    ("lfw_subset", {"size": 32}, "allowed: none"),
    ("no_such_set", {}, "not a built-in .*digits.*no such file"),
])
def test_bad_builtin_requests(source: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        open_dataset(source, **options)


# --------------------------------------------------------------------------- image folders

def _png(path: Path, image: np.ndarray) -> np.ndarray:
    write_image(path, image)
    return image


def test_image_folder_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    expected = {
        "cat/b.png": _png(tmp_path / "cat/b.png", rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)),
        "cat/a.PNG": _png(tmp_path / "cat/a.PNG", rng.integers(0, 256, (5, 4), dtype=np.uint8)),
        "cat/sub/c.png": _png(tmp_path / "cat/sub/c.png", rng.integers(0, 256, (3, 3, 4), dtype=np.uint8)),
        "bird/z.bmp": _png(tmp_path / "bird/z.bmp", rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)),
    }
    deep = rng.integers(0, 65536, (4, 5), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "bird/deep.png"), deep)
    (tmp_path / "cat/notes.txt").write_text("not an image")
    _png(tmp_path / ".hidden/x.png", np.zeros((2, 2), np.uint8))
    _png(tmp_path / "cat/.cache/x.png", np.zeros((2, 2), np.uint8))

    ds = open_dataset(str(tmp_path), channels="keep")  # as decoded: the files' own channels
    assert isinstance(ds, ImageFolderDataset)
    assert ds.info.class_names == ("bird", "cat") and ds.info.kind == "image" and ds.info.shape is None
    names = [p.relative_to(tmp_path).as_posix() for p in ds.paths]
    assert names == ["bird/deep.png", "bird/z.bmp", "cat/a.PNG", "cat/b.png", "cat/sub/c.png"]
    assert ds.labels.tolist() == [0, 0, 1, 1, 1]
    items, labels = ds.samples(range(len(ds)))
    assert labels.tolist() == [0, 0, 1, 1, 1]
    for name, item in zip(names[1:], items[1:], strict=True):
        assert isinstance(item, np.ndarray) and item.dtype == np.uint8
        assert np.array_equal(item, expected[name]), name
    assert isinstance(items[0], np.ndarray) and items[0].dtype == np.uint8
    assert np.array_equal(items[0], np.round(deep / 65535.0 * 255).astype(np.uint8))


def test_image_folder_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"{tmp_path} has no class subfolders"):
        open_dataset(str(tmp_path))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/readme.md").write_text("x")
    with pytest.raises(InputError, match=f"class folder {tmp_path / 'empty'} has no image files"):
        open_dataset(str(tmp_path))
    (tmp_path / "empty/readme.md").unlink()
    (tmp_path / "empty").rmdir()
    _png(tmp_path / "a/ok.png", np.full((20, 20), 9, np.uint8))
    (tmp_path / "a/broken.png").write_bytes(b"\x89PNG not really")
    ds = open_dataset(str(tmp_path), channels="gray")
    assert ds.sample(1)[0].tolist() == np.full((20, 20), 9).tolist()  # type: ignore[union-attr]
    with pytest.raises(InputError, match=r"cannot decode .*broken\.png"):
        ds.sample(0)
    with pytest.raises(InputError, match=r"ok.png: 20x20 pixels is over the limit of 399"):
        open_dataset(str(tmp_path), max_pixels=399).sample(1)
    with pytest.raises(InputError, match=r"ok.png: \d+ bytes is over the limit of 10"):
        open_dataset(str(tmp_path), max_file_bytes=10).sample(1)
    with pytest.raises(InputError, match=r"unknown option\(s\) \['size'\]"):
        open_dataset(str(tmp_path), size=3)
    with pytest.raises(IndexError, match="out of range for 2 samples"):
        ds.sample(2)
    with pytest.raises(IndexError, match="sample index -1"):
        ds.samples([0, -1])


def test_image_folder_refuses_a_decompression_bomb_from_its_header(tmp_path: Path) -> None:
    """A PNG whose header claims 9000x9000 pixels is refused before anything is decoded."""
    ok, encoded = cv2.imencode(".png", np.zeros((2, 2), np.uint8))
    assert ok
    data = bytearray(encoded.tobytes())
    ihdr = struct.pack(">II", 9000, 9000) + bytes(data[24:29])  # width, height, then the rest of IHDR
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    (tmp_path / "c").mkdir()
    (tmp_path / "c/bomb.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bomb.png: 9000x9000 pixels is over the limit of 64000000"):
        open_dataset(str(tmp_path)).sample(0)


# --------------------------------------------------------------------------- .npz

def test_npz_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (5, 4, 3, 3), dtype=np.uint8)
    y = np.array([2, 0, 1, 2, 2])
    np.savez(tmp_path / "set.npz", x=x, y=y, class_names=np.array(["ant", "bee", "cow"]))
    ds = open_dataset(str(tmp_path / "set.npz"))
    assert ds.info.class_names == ("ant", "bee", "cow") and ds.info.shape == (4, 3, 3)
    items, labels = ds.samples([4, 0, 4])
    assert labels.tolist() == [2, 2, 2]
    assert all(np.array_equal(a, b) for a, b in zip(items, [x[4], x[0], x[4]], strict=True))
    assert all(np.array_equal(ds.sample(i)[0], x[i]) and ds.sample(i)[1] == y[i] for i in range(5))

    floats = rng.random((3, 2, 2)).astype(np.float32)
    np.savez_compressed(tmp_path / "f.npz", images=floats, labels=np.array([0, 3, 1], np.int32))
    ds = open_dataset(str(tmp_path / "f.npz"))
    assert ds.info.class_names == ("0", "1", "2", "3") and ds.info.dtype == "uint8"
    assert isinstance(ds, ArrayDataset)
    assert np.array_equal(ds.images, np.round(floats * 255).astype(np.uint8))


@pytest.mark.parametrize(("arrays", "match"), [
    ({"y": np.zeros(2, int)}, r"neither of the arrays 'x' / 'images' \(it has \['y'\]\)"),
    ({"x": np.zeros((2, 3, 3), np.uint8), "images": np.zeros((2, 3, 3), np.uint8), "y": np.zeros(2, int)},
     "has both"),
    ({"x": np.zeros((2, 3), np.uint8), "y": np.zeros(2, int)}, r"shape \(N, H, W\).*got \(2, 3\)"),
    ({"x": np.zeros((2, 3, 3, 2), np.uint8), "y": np.zeros(2, int)}, "C in 1, 3, 4"),
    ({"x": np.zeros((2, 3, 3), np.int16), "y": np.zeros(2, int)}, "uint8, or float in .0, 1.; got int16"),
    ({"x": np.full((2, 3, 3), 2.0), "y": np.zeros(2, int)}, r"must lie in \[0, 1\]"),
    ({"x": np.zeros((2, 3, 3), np.uint8), "y": np.zeros(3, int)}, r"labels must have shape \(2,\)"),
    ({"x": np.zeros((2, 3, 3), np.uint8), "y": np.zeros(2)}, "labels must be integers, got float64"),
    ({"x": np.zeros((2, 3, 3), np.uint8), "y": np.array([0, -1])}, "labels must be >= 0"),
    ({"x": np.zeros((2, 3, 3), np.uint8), "y": np.array([0, 2]), "class_names": np.array(["a", "b"])},
     "label 2 has no class name"),
])
def test_npz_errors(tmp_path: Path, arrays: dict[str, np.ndarray], match: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=match) as info:
        open_dataset(str(path))
    assert str(path) in str(info.value)


def test_npz_that_is_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"hello")
    with pytest.raises(InputError, match=r"cannot read .*junk.npz as .npz"):
        open_dataset(str(tmp_path / "junk.npz"))


# --------------------------------------------------------------------------- text lines

def test_text_lines_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "reviews.tsv"
    content = "\ufeffpos\tgreat film\r\n\nneg\tdull\tand long\n   \nneutral\tçà va 👍\npos\tyes"
    path.write_bytes(content.encode())
    ds = open_dataset(str(path))
    assert ds.info.kind == "text" and ds.info.class_names == ("neg", "neutral", "pos")
    texts, labels = ds.samples(range(len(ds)))
    assert texts == ["great film", "dull\tand long", "çà va 👍", "yes"]
    assert labels.tolist() == [2, 0, 1, 2]
    (tmp_path / "same.txt").write_text("b\tx\na\ty\n", encoding="utf-8")
    assert open_dataset(str(tmp_path / "same.txt")).samples([0, 1]) [0] == ["x", "y"]


@pytest.mark.parametrize(("content", "match"), [
    (b"a\tok\n\nno tab here\n", "line 3: no tab"),
    (b"a\tok\nb\t\xff\xfe\n", r"line 2: not valid UTF-8"),
    (b"a\tok\n\tlabel missing\n", "line 2: empty label"),
    (b"a\t  \n", "line 1: empty text"),
    (b"\n\n", "has no 'label<TAB>text' lines"),
])
def test_text_lines_errors(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match) as info:
        open_dataset(str(path))
    assert str(path) in str(info.value)


def test_unsupported_file_kind(tmp_path: Path) -> None:
    (tmp_path / "data.xlsx").write_text("a,b")
    with pytest.raises(InputError, match=r"unsupported dataset file \.xlsx"):
        open_dataset(str(tmp_path / "data.xlsx"))


def test_dataset_is_a_sequence_of_pairs() -> None:
    ds: Dataset = open_dataset("lfw_subset")
    first = ds[0]
    assert isinstance(first, tuple) and first[1] == 0
    with pytest.raises(IndexError):
        ds[200]
