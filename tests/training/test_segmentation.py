"""Segmentation from the library, through StreamEpoch, into augsvc-train: class maps that move
with their images, locally and over the service, the fcn model, pixel accuracy and mean IoU."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from augsvc.datasets import open_dataset
from augsvc.image.pipeline import ImagePipeline
from augsvc.image.targets import augment_with_targets
from augsvc.image.tensors import stack_images
from augsvc.plan import augment_indices
from tests.conftest import serving
from tests.messy_data import write_coco, write_segmentation_folder
from tests.training.cli_runs import train_cli
from training.cli import main
from training.config import ConfigError, load_config
from training.data import BatchSource
from training.local import LocalSource
from training.models import create_model
from training.remote import RemoteSource
from training.segmentation import MeanIoU
from training.trainer import Trainer

SIZE = 32
RESIZE = {"name": "resize", "height": SIZE, "width": SIZE}
AUGMENT = {"transforms": [{"name": "resize", "height": 36, "width": 36},
                          {"name": "random_crop", "height": SIZE, "width": SIZE},
                          {"name": "horizontal_flip", "p": 0.5}]}
EVAL = {"transforms": [RESIZE]}
COLORS = {1: (220, 40, 40), 2: (40, 60, 220)}  # class -> colour; the rest is grey, class 0


def write_colour_folder(root: Path, count: int = 24, seed: int = 0) -> Path:
    """An easy segmentation set: grey noise with red (class 1) and blue (class 2) rectangles, so
    a pixel's class is a function of its colour. Lossless PNGs of 36x44."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(count):
        image = rng.integers(90, 160, (36, 44, 1), dtype=np.uint8).repeat(3, axis=2)
        mask = np.zeros((36, 44), np.uint8)
        for cls in (1, 2):
            y, x = rng.integers(0, 18), rng.integers(0, 24)
            h, w = rng.integers(10, 19), rng.integers(12, 21)
            mask[y:y + h, x:x + w] = cls
        for cls, colour in COLORS.items():
            image[mask == cls] = colour
        Image.fromarray(image).save(root / f"images/c{k:02d}.png")
        Image.fromarray(mask).save(root / f"masks/c{k:02d}.png")
    return root


@pytest.fixture(scope="module")
def seg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_segmentation_folder(tmp_path_factory.mktemp("seg"))


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colour_folder(tmp_path_factory.mktemp("colours") / "set")


@pytest.fixture(scope="module")
def address(seg: Path, colours: Path) -> Iterator[str]:
    with serving({"seg": seg, "colours": colours}, workers=1) as address:
        yield address


RUN: dict[str, Any] = {
    "seed": 3, "epochs": 2, "device": "cpu", "tensorboard": False,
    "model": {"name": "fcn", "width": 8, "depth": 2, "norm": "batch"},
    "data": {"augment": AUGMENT, "eval_augment": EVAL, "batch_size": 2, "holdout_fraction": 0.25},
    "optimizer": {"name": "adamw", "lr": 0.01}, "schedule": {"name": "constant"}}


def _config(dataset: str, out: Path | None = None, **data: Any) -> Any:
    return load_config({**RUN, "out_dir": str(out or "unused"),
                        "data": {**RUN["data"], "dataset": dataset, **data}})


def _want(pipeline: ImagePipeline, dataset: Any, indices: np.ndarray, seed: int,
          epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What the library makes of these samples: images and class maps moved together."""
    taken = dataset.take(indices)
    images, targets = augment_with_targets(pipeline, taken.samples, taken.targets, seed=seed,
                                           indices=augment_indices(epoch, len(dataset), indices))
    return stack_images(images), torch.from_numpy(np.stack([t.mask for t in targets])).long()


def test_local_batches_are_the_librarys_images_and_masks_moved_together(seg: Path) -> None:
    source = LocalSource(_config(str(seg)).data, seed=3)
    assert source.info.task == "segmentation" and source.info.class_names == ("0", "1", "2")
    assert (source.info.train_size, source.info.holdout_size, source.info.image_size) == (3, 1, SIZE)
    dataset = open_dataset(seg)
    epochs = []
    for epoch in (0, 1):
        got = list(source.train_batches(epoch))
        planned = list(source.plan(epoch).batches())
        assert len(got) == len(planned) == 2
        for (x, y), indices in zip(got, planned, strict=True):
            want_x, want_y = _want(ImagePipeline(AUGMENT), dataset, indices, 3, epoch)
            assert x.dtype == torch.uint8 and y.dtype == torch.int64
            assert x.shape[1:] == (3, SIZE, SIZE) and y.shape == (len(indices), SIZE, SIZE)
            assert torch.equal(x, want_x) and torch.equal(y, want_y)
            assert set(y.unique().tolist()) == {0, 1, 2}  # the classes survive the resize
        epochs.append(torch.cat([y for _, y in got]))
    assert not torch.equal(epochs[0], epochs[1])  # new draws (and order) per epoch
    (hx, hy), = list(source.holdout_batches())
    want_x, want_y = _want(ImagePipeline(EVAL), dataset, source.parts.holdout, 3, 0)
    assert torch.equal(hx, want_x) and torch.equal(hy, want_y)


def _batches(source: BatchSource, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(source.train_batches(epoch))


def test_remote_batches_equal_local_batches(seg: Path, address: str) -> None:
    remote = RemoteSource(_config("seg", source="remote", addresses=[address]).data, seed=3)
    local = LocalSource(_config(str(seg)).data, seed=3)
    try:
        assert remote.info == local.info
        for epoch in (0, 1, 2):
            got, want = _batches(remote, epoch), _batches(local, epoch)
            assert len(got) == len(want) == 2
            for (xa, ya), (xb, yb) in zip(got, want, strict=True):
                assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert remote.verified_samples == 3 * 3  # every planned sample once, each epoch
        for (xa, ya), (xb, yb) in zip(remote.holdout_batches(), local.holdout_batches(), strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    finally:
        remote.close()


def test_images_of_two_sizes_ask_for_a_resize(seg: Path, address: str) -> None:
    flip = {"transforms": [{"name": "horizontal_flip", "p": 0.5}]}
    local = LocalSource(_config(str(seg), augment=flip, batch_size=4, holdout_fraction=0).data,
                        seed=3)
    with pytest.raises(ValueError, match=r"of one size.*add a resize or crop transform"):
        list(local.train_batches(0))
    remote = RemoteSource(_config("seg", source="remote", addresses=[address], augment=flip,
                                  batch_size=4, holdout_fraction=0).data, seed=3)
    try:
        with pytest.raises(ValueError, match=r"of one size.*add a resize or crop transform"):
            list(remote.train_batches(0))
    finally:
        remote.close()


def _cli(tmp_path: Path, name: str, dataset: str, *extra: str, **data: Any) -> list[dict[str, str]]:
    return train_cli(tmp_path, RUN, name, dataset, *extra, **data)


def test_cli_trains_fcn_locally_and_over_the_service_alike(tmp_path: Path, seg: Path, address: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    local = _cli(tmp_path, "local", str(seg))
    remote = _cli(tmp_path, "remote", "seg", source="remote", addresses=[address])
    printed = capsys.readouterr().out
    assert printed.count("final: val_accuracy") == 2 and printed.count("val_miou") >= 4
    assert {"gallery.png", "curves.png", "last.pt"} <= {p.name for p in (tmp_path / "local").iterdir()}
    assert list(local[0]) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                              "lr", "seconds", "samples_per_second", "input_wait", "val_miou"]
    assert len(local) == len(remote) == 2
    for lo, re in zip(local, remote, strict=True):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_miou"):
            assert math.isfinite(float(lo[key])), key
            assert float(re[key]) == pytest.approx(float(lo[key]), rel=1e-6), key
        assert 0 <= float(lo["val_accuracy"]) <= 1 and 0 <= float(lo["val_miou"]) <= 1


@pytest.mark.parametrize("source", ["local", "remote"])
def test_fcn_learns_an_easy_set_beyond_the_majority_class(tmp_path: Path, colours: Path,
                                                          address: str, source: str) -> None:
    remote = {"source": "remote", "addresses": [address]} if source == "remote" else {}
    rows = _cli(tmp_path, source, "colours" if remote else str(colours), "--set", "epochs=10",
                batch_size=6, **remote)
    val = LocalSource(_config(str(colours), batch_size=6).data, seed=3)
    labels = torch.cat([y for _, y in val.holdout_batches()])
    majority = float(labels.eq(0).float().mean())  # grey: what predicting class 0 everywhere scores
    assert val.info.holdout_size == 6 and 0.4 < majority < 0.9
    last = rows[-1]
    assert float(last["val_accuracy"]) > majority + 0.6 * (1 - majority), (majority, rows)
    assert float(last["val_miou"]) > 0.75, rows


def test_a_model_must_fit_the_task(tmp_path: Path, seg: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match=r"model\.name: cnn is a classification model but .* is "
                                          r"a segmentation dataset; segmentation models: fcn"):
        Trainer(load_config({**RUN, "model": {"name": "cnn"},
                             "data": {**RUN["data"], "dataset": str(seg)}}), progress=False)
    with pytest.raises(ConfigError, match=r"model\.name: fcn is a segmentation model but digits "
                                          r"is a classification dataset; classification models: "):
        Trainer(load_config({**RUN, "data": {"dataset": "digits", "train_size": 64}}), progress=False)
    with pytest.raises(ConfigError, match=r"early_stopping\.metric: val_miou is reported for "
                                          r"segmentation datasets only"):
        Trainer(load_config({**RUN, "model": {"name": "mlp"}, "early_stopping": {"metric": "val_miou"},
                             "data": {"dataset": "digits", "train_size": 64}}), progress=False)
    with pytest.raises(ConfigError, match=r"a classification dataset but data\.dataset .* is a "
                                          r"segmentation dataset"):
        LocalSource(_config(str(seg), val_dataset="digits", holdout_fraction=0).data, seed=3)
    assert LocalSource(_config(str(write_coco(tmp_path / "coco"))).data, seed=3).info.task == \
        "detection"  # boxes: a detection set, for centernet
    config = tmp_path / "cnn.json"
    config.write_text(json.dumps({**RUN, "model": {"name": "cnn"},
                                  "data": {**RUN["data"], "dataset": str(seg)}}))
    assert main(["train", "--config", str(config), "-q"]) == 2
    assert "cnn is a classification model" in capsys.readouterr().err


def test_val_miou_can_pick_the_best_checkpoint(tmp_path: Path, seg: Path) -> None:
    config = load_config({**RUN, "out_dir": str(tmp_path), "early_stopping": {"metric": "val_miou"},
                          "data": {**RUN["data"], "dataset": str(seg)}})
    result = Trainer(config, progress=False, report=False).fit()
    values = [row["val_miou"] for row in result.history]
    assert result.metric == "val_miou" and result.best_value == max(values)
    assert result.best_epoch == 1 + values.index(max(values))


def test_mean_iou_counts_per_class_over_batches() -> None:
    iou = MeanIoU(4)
    labels = torch.tensor([[[0, 0, 1, 1], [2, 2, 2, 2]]])
    predicted = torch.tensor([[[0, 1, 1, 1], [2, 2, 0, 2]]])
    iou.update(predicted[:, :1], labels[:, :1])  # two batches: the counts add up
    iou.update(predicted[:, 1:], labels[:, 1:])
    # class 0: 1 hit, union 3; class 1: 2 hits, union 3; class 2: 3 hits, union 4; class 3 absent
    assert torch.allclose(iou.per_class()[:3], torch.tensor([1 / 3, 2 / 3, 3 / 4], dtype=torch.float64))
    assert math.isnan(float(iou.per_class()[3]))
    assert iou.value() == pytest.approx((1 / 3 + 2 / 3 + 3 / 4) / 3)
    assert math.isnan(MeanIoU(2).value())


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_fcn_scores_every_pixel_of_any_size(norm: str) -> None:
    model = create_model("fcn", in_channels=1, num_classes=4, width=4, depth=3, norm=norm,
                         seed=1).eval()
    for height, width in ((32, 32), (37, 45), (5, 3)):
        x = torch.randn(2, 1, height, width, generator=torch.Generator().manual_seed(height))
        with torch.no_grad():
            out = model(x)
            assert out.shape == (2, 4, height, width) and torch.isfinite(out).all()
            channels_last = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            got = channels_last(x.contiguous(memory_format=torch.channels_last))
        assert torch.allclose(got, out, atol=1e-5)
