"""JPEGs decoded smaller when the pipeline's first step shrinks them anyway (augsvc.image.reduced)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from augsvc.datasets import ImageFolderDataset
from augsvc.image import ImagePipeline
from augsvc.image.dataset import AugmentedImageDataset

RRC = {"transforms": [{"name": "random_resized_crop", "height": 96, "width": 96,
                       "scale": [0.08, 1.0]},
                      {"name": "horizontal_flip", "p": 0.5},
                      {"name": "brightness_contrast", "p": 0.5}]}
HEIGHT, WIDTH = 960, 1280


def big_photo(seed: int) -> np.ndarray:
    """A 960x1280 photo (the astronaut, upscaled, with a little noise): big enough to shrink."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(skimage.data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for name in ("a", "b"):
        (root / name).mkdir()
    for k in range(3):
        Image.fromarray(big_photo(k)).save(root / "a" / f"p{k}.jpg", quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: the upright image is 1280 x 960
    Image.fromarray(big_photo(9)).save(root / "b" / "turned.jpg", quality=92, exif=exif.tobytes())
    Image.fromarray(big_photo(10)).save(root / "b" / "lossless.png")
    return root


def crop_of(pipeline: ImagePipeline, image: np.ndarray, index: int) -> tuple[int, int]:
    """(height, width) of the crop the full decode's first step takes."""
    params = pipeline(image, seed=0, index=index, return_params=True).params
    assert params is not None and params[0]["name"] == "random_resized_crop"
    x1, y1, x2, y2 = params[0]["params"]["crop_coords"]
    return y2 - y1, x2 - x1


def test_the_scale_is_the_largest_that_keeps_the_outputs_resolution() -> None:
    pipeline = ImagePipeline(RRC)
    image = big_photo(0)
    seen = set()
    for index in range(40):
        height, width = crop_of(pipeline, image, index)
        want = next((s for s in (8, 4, 2) if height // s >= 96 and width // s >= 96), 1)
        assert pipeline.jpeg_scale(HEIGHT, WIDTH, seed=0, index=index) == want, index
        seen.add(want)
    assert seen == {2, 4, 8}  # crops of every size occur (scale >= 0.08 keeps them over 192 px)


def test_a_reduced_decode_gives_the_same_sample_up_to_resampling(folder: Path) -> None:
    files = ImageFolderDataset(folder)
    reduced = AugmentedImageDataset(files, RRC, seed=3)
    whole = AugmentedImageDataset(files, RRC, seed=3, reduced_decode=False)
    pipeline = ImagePipeline(RRC)
    scales = []
    for index in range(len(files)):
        for epoch in range(6):
            reduced.set_epoch(epoch)
            whole.set_epoch(epoch)
            (small, label), (full, full_label) = reduced[index], whole[index]
            assert label == full_label and small.shape == full.shape == (3, 96, 96)
            diff = np.abs(small.numpy().astype(int) - full.numpy().astype(int))
            # Resampling differs: bilinear from up to 8x the output's pixels aliases, libjpeg's
            # scaled decode averages (mean differences of 2 to 11 on these photos). A different
            # draw would differ far more: a mirrored output differs by 48 to 100.
            assert diff.mean() < 20, (index, epoch, diff.mean())
            assert torch_equal(small, reduced[index][0])  # deterministic
            image = files[index][0]
            scales.append(pipeline.jpeg_scale(*image.shape[:2], seed=3,
                                              index=reduced.global_index(index)))
    assert max(scales) > 1  # the reduced path ran


def torch_equal(a: object, b: object) -> bool:
    import torch

    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    return bool(torch.equal(a, b))


def test_the_exif_orientation_applies_to_a_reduced_decode(folder: Path) -> None:
    files = ImageFolderDataset(folder)
    turned = next(k for k, p in enumerate(files.paths) if p.name == "turned.jpg")
    assert files[turned][0].shape == (WIDTH, HEIGHT, 3)
    resize = {"transforms": [{"name": "resize", "height": 160, "width": 120}]}
    small = AugmentedImageDataset(files, resize, seed=0)[turned][0].numpy()
    full = AugmentedImageDataset(files, resize, seed=0, reduced_decode=False)[turned][0].numpy()
    assert ImagePipeline(resize).jpeg_scale(WIDTH, HEIGHT, seed=0, index=0) == 8
    assert np.abs(small.astype(int) - full.astype(int)).mean() < 20


@pytest.mark.parametrize("spec", [
    {"transforms": [{"name": "random_crop", "height": 96, "width": 96}]},  # keeps full resolution
    {"transforms": [{"name": "random_resized_crop", "height": 96, "width": 96, "p": 0.5}]},
    {"transforms": [{"name": "horizontal_flip"}, {"name": "resize", "height": 96, "width": 96}]},
])
def test_other_pipelines_decode_whole_and_equal_the_plain_path(folder: Path, spec: dict) -> None:
    files = ImageFolderDataset(folder)
    pipeline = ImagePipeline(spec)
    assert all(pipeline.jpeg_scale(HEIGHT, WIDTH, seed=0, index=i) == 1 for i in range(20))
    reduced = AugmentedImageDataset(files, spec, seed=1)
    for index in range(len(files)):
        out = pipeline(files[index][0], seed=1, index=reduced.global_index(index)).image
        assert np.array_equal(reduced[index][0].numpy(), out.transpose(2, 0, 1))


def test_unseeded_gray_and_png_samples_decode_whole(folder: Path) -> None:
    assert ImagePipeline(RRC).jpeg_scale(HEIGHT, WIDTH, seed=None, index=0) == 1
    gray = ImageFolderDataset(folder, channels="gray")
    calls: list[tuple[int, int]] = []

    def scale_for(height: int, width: int) -> int:
        calls.append((height, width))
        return 8

    image, source = gray.read_scaled(0, scale_for)
    assert source is None and image.shape == (HEIGHT, WIDTH) and calls == []
    rgb = ImageFolderDataset(folder)
    png = next(k for k, p in enumerate(rgb.paths) if p.suffix == ".png")
    image, source = rgb.read_scaled(png, scale_for)
    assert source is None and image.shape == (HEIGHT, WIDTH, 3)
    image, source = rgb.read_scaled(0, scale_for)
    assert source == (HEIGHT, WIDTH) and image.shape == (HEIGHT // 8, WIDTH // 8, 3)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_server_streams_the_same_reduced_samples_as_the_dataset(folder: Path, workers: int
                                                                  ) -> None:
    from augsvc.client import AugmentClient
    from augsvc.service.epochs import EpochStreamer
    from augsvc.service.server import build_server
    from augsvc.wire.tensors import Limits

    (folder / "b" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")  # skipped and reported
    try:
        epochs = EpochStreamer({"photos": str(folder)}, limits=Limits(), workers=workers)
        server, port = build_server("127.0.0.1:0", limits=Limits(), epochs=epochs)
        server.start()
        try:
            with AugmentClient(f"127.0.0.1:{port}", timeout=60) as client:
                batches = list(client.stream_epoch("photos", RRC, seed=5, epoch=2, batch_size=3))
        finally:
            server.stop(0)
            epochs.close()
        files = ImageFolderDataset(folder)
        local = AugmentedImageDataset(files, RRC, seed=5, epoch=2)
        got = 0
        for batch in batches:
            for sample, index in zip(batch.samples, batch.indices.tolist(), strict=True):
                assert np.array_equal(sample.transpose(2, 0, 1), local[index][0].numpy())
                got += 1
        skipped = [reason for batch in batches for _, reason in batch.skipped]
        assert got == len(files) - 1 and len(skipped) == 1 and "broken.jpg" in skipped[0]
    finally:
        (folder / "b" / "broken.jpg").unlink()


def test_jpegs_read_straight_to_rgb_equal_the_plain_reader(tmp_path: Path) -> None:
    """Gray, CMYK and turned phone JPEGs: the RGB decode the scaled reader uses at scale 1 gives
    the bytes of the plain reader (decode as stored, then convert and turn)."""
    from tests.messy_data import BROKEN, write_messy_folder

    root = write_messy_folder(tmp_path / "messy")
    files = ImageFolderDataset(root)
    read = 0
    for index, path in enumerate(files.paths):
        if path.relative_to(root).as_posix() in BROKEN or path.suffix != ".jpg":
            continue
        image, source = files.read_scaled(index, lambda height, width: 1)
        assert source is None and np.array_equal(image, files[index][0]), path.name
        read += 1
    assert read == 11  # 8 orientations, gray, CMYK and a plain photo


def test_a_decoder_error_in_the_scaled_reader_is_a_skipped_file(folder: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """OpenCV raises (rather than returning None) on some malformed files; the scaled reader
    reports them like the plain one does, and take() skips the file instead of failing."""
    real = cv2.imdecode

    def refuse_rgb(buffer: np.ndarray, flags: int) -> np.ndarray | None:
        if flags >= 0 and flags & cv2.IMREAD_COLOR_RGB:  # not IMREAD_UNCHANGED (-1)
            raise cv2.error("OpenCV(5.0.0) loadsave.cpp:1: error: (-215) decoder refused")
        return real(buffer, flags)

    monkeypatch.setattr(cv2, "imdecode", refuse_rgb)
    files = ImageFolderDataset(folder)
    jpeg = next(k for k, p in enumerate(files.paths) if p.suffix == ".jpg")
    image, source = files.read_scaled(jpeg, lambda height, width: 8)
    assert source is None and np.array_equal(image, files[jpeg][0])  # the plain decode, whole

    def refuse_all(buffer: np.ndarray, flags: int) -> None:
        raise cv2.error("OpenCV(5.0.0) loadsave.cpp:1: error: (-215) decoder refused")

    monkeypatch.setattr(cv2, "imdecode", refuse_all)
    taken = files.take([jpeg], lambda index, height, width: 8)
    assert len(taken.samples) == 0 and len(taken.skipped) == 1
    assert "decoder refused" in taken.skipped[0].reason
