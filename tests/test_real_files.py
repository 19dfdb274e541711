"""Real files as users bring them: EXIF orientation, channel policies, bad files skipped and reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from augsvc.datasets import ImageFolderDataset, open_dataset
from augsvc.errors import InputError
from augsvc.image.io import decode_image_bytes, exif_orientation, read_image, to_channels
from tests.messy_data import BROKEN, ODD_MODES, ORIENTED, write_messy_folder


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_messy_folder(tmp_path_factory.mktemp("photos"))


def _pillow_upright(path: Path) -> np.ndarray:
    """What a viewer shows: Pillow's decode, turned by its own exif_transpose."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


@pytest.mark.parametrize("name", ORIENTED)
def test_every_exif_orientation_reads_upright_like_pillow(messy: Path, name: str) -> None:
    path = messy / name
    orientation = int(name.split("_")[1].split(".")[0])
    assert exif_orientation(path) == orientation
    upright, stored = read_image(path), read_image(path, orient=False)
    want = _pillow_upright(path)
    assert upright.shape == want.shape  # 5 to 8 swap height and width
    assert stored.shape == (80, 120, 3)
    # Two JPEG decoders (OpenCV's, Pillow's) agree to within rounding on the same pixels; a wrong
    # turn or mirror of this photo would differ by tens of levels.
    assert np.abs(upright.astype(int) - want.astype(int)).mean() < 2.0
    assert np.array_equal(decode_image_bytes(path.read_bytes()), upright)  # the wire decodes alike


def test_an_image_without_exif_is_read_as_stored(messy: Path) -> None:
    assert exif_orientation(messy / "dog/rgba.png") == 1
    assert exif_orientation(b"not an image") == 1


def test_the_rgb_policy_makes_every_mode_stack(messy: Path) -> None:
    dataset = open_dataset(messy)  # a folder: channels rgb, on_error skip
    for name in ODD_MODES:
        image, _ = dataset[dataset.paths.index(messy / name)]  # type: ignore[attr-defined]
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
    rgba = dataset[dataset.paths.index(messy / "dog/rgba.png")][0]  # type: ignore[attr-defined]
    with Image.open(messy / "dog/rgba.png") as im:  # alpha dropped, as Pillow's convert("RGB")
        assert np.array_equal(rgba, np.asarray(im.convert("RGB")))
    palette = dataset[dataset.paths.index(messy / "dog/palette.png")][0]  # type: ignore[attr-defined]
    with Image.open(messy / "dog/palette.png") as im:
        assert np.array_equal(palette, np.asarray(im.convert("RGB")))
    gray = dataset[dataset.paths.index(messy / "cat/gray.jpg")][0]  # type: ignore[attr-defined]
    assert np.array_equal(gray[..., 0], gray[..., 2])  # gray repeated into three channels
    deep = dataset[dataset.paths.index(messy / "dog/deep16.png")][0]  # type: ignore[attr-defined]
    with Image.open(messy / "dog/deep16.png") as im:
        levels = np.asarray(im).astype(np.float64)
    assert np.array_equal(deep[..., 0], np.round(levels / 65535 * 255).astype(np.uint8))
    cmyk = dataset[dataset.paths.index(messy / "cat/cmyk.jpg")][0]  # type: ignore[attr-defined]
    with Image.open(messy / "cat/cmyk.jpg") as im:
        assert np.abs(cmyk.astype(int) - np.asarray(im.convert("RGB")).astype(int)).mean() < 3.0


@pytest.mark.parametrize(("policy", "ndims"), [("gray", {2}), ("keep", {2, 3})])
def test_gray_and_keep_policies(messy: Path, policy: str, ndims: set[int]) -> None:
    dataset = ImageFolderDataset(messy, channels=policy)  # type: ignore[arg-type]
    taken = dataset.take(range(len(dataset)))
    assert {x.ndim for x in taken.samples} == ndims  # type: ignore[union-attr]
    if policy == "keep":
        assert {x.shape[2] for x in taken.samples if x.ndim == 3} == {3, 4}  # type: ignore[union-attr]


def test_to_channels_refuses_what_it_cannot_convert() -> None:
    with pytest.raises(ValueError, match="channels must be one of rgb, gray, keep"):
        to_channels(np.zeros((2, 2, 3), np.uint8), "bgr")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="an image of 2 channels has no rgb form"):
        to_channels(np.zeros((2, 2, 2), np.uint8), "rgb")


def test_bad_files_are_skipped_and_reported_every_index_accounted_for(messy: Path) -> None:
    dataset = open_dataset(messy)
    assert len(dataset) == 17
    taken = dataset.take(np.arange(len(dataset))[::-1])  # any order
    reported = {dataset.paths[s.index].relative_to(messy).as_posix(): s.reason  # type: ignore[attr-defined]
                for s in taken.skipped}
    assert set(reported) == set(BROKEN)
    for name, word in BROKEN.items():
        assert name in reported[name] and word in reported[name]
    assert sorted([*taken.indices.tolist(), *(s.index for s in taken.skipped)]) == list(range(17))
    assert len(taken.samples) == len(taken.labels) == 14
    assert taken.labels.tolist() == dataset.labels[taken.indices].tolist()


def test_on_error_raise_stops_at_the_first_bad_file(messy: Path) -> None:
    dataset = open_dataset(messy, on_error="raise")
    broken = dataset.paths.index(messy / "dog/empty.jpg")  # type: ignore[attr-defined]
    with pytest.raises(InputError, match=r"empty\.jpg: the file is empty"):
        dataset.take([0, broken])
    with pytest.raises(InputError, match="on_error must be one of skip, raise, got 'ignore'"):
        open_dataset(messy, on_error="ignore")
    with pytest.raises(InputError, match="unknown option"):
        open_dataset(messy, colour="rgb")


def test_orient_false_reads_as_stored(messy: Path) -> None:
    dataset = open_dataset(messy, orient=False, channels="keep")
    shapes = {dataset[dataset.paths.index(messy / n)][0].shape for n in ORIENTED}  # type: ignore[attr-defined]
    assert shapes == {(80, 120, 3)}


def test_check_reads_everything_and_lists_the_bad_and_the_odd(messy: Path, capsys) -> None:
    import json

    from augsvc.cli import main
    from augsvc.datasets.check import check_dataset

    report = check_dataset(ImageFolderDataset(messy, max_pixels=100 * 100), progress=False)
    names = {i: p.relative_to(messy).as_posix() for i, p in enumerate(open_dataset(messy).paths)}  # type: ignore[attr-defined]
    # the truncated copy of large.jpg keeps its 160x200 header: refused as too large before decoding
    assert {names[i] for i in report.oversized} == {"dog/large.jpg", "dog/truncated.jpg"}
    assert {names[i] for i in report.unreadable} == {"dog/empty.jpg", "dog/notes.png"}
    assert not report.ok
    assert report.odd["turned upright by their EXIF orientation"] == list(ORIENTED[1:])
    assert {what for what in report.odd} >= {"gray (L)", "CMYK (CMYK)", "RGBA (RGBA)",
                                             "palette (P)", "16-bit (I;16)"}
    assert main(["datasets", "check", str(messy), "--json"]) == 1  # unreadable files: exit 1
    found = json.loads(capsys.readouterr().out)
    assert found["size"] == 17 and len(found["unreadable"]) == 3 and found["oversized"] == {}
    assert main(["datasets", "check", "digits"]) == 0
    assert "digits: 1797 samples, 1797 readable, 0 unreadable" in capsys.readouterr().out


def test_a_batch_that_cannot_stack_says_why() -> None:
    from augsvc.image.tensors import stack_images

    with pytest.raises(ValueError, match="they differ in channels: read the dataset with channels='rgb'"):
        stack_images([np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(ValueError, match="add a resize transform to the pipeline"):
        stack_images([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])
    assert stack_images([np.zeros((4, 5, 3), np.uint8)] * 2).shape == (2, 3, 4, 5)
