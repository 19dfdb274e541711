"""A separate validation dataset (train/ + val/ folders), and runs with no holdout at all."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from augsvc.datasets import open_dataset
from augsvc.image.io import write_image
from augsvc.image.pipeline import ImagePipeline
from augsvc.image.tensors import stack_images
from tests.conftest import serving
from training.config import ConfigError, TrainConfig, load_config
from training.data import Batch
from training.local import LocalSource, MemorySource
from training.remote import RemoteSource
from training.trainer import Trainer

EVAL = {"transforms": [{"name": "resize", "height": 14, "width": 14},
                       {"name": "center_crop", "height": 12, "width": 12}]}
AUGMENT = {"transforms": [{"name": "random_resized_crop", "height": 12, "width": 12,
                           "scale": [0.6, 1.0]}, {"name": "horizontal_flip", "p": 0.5}]}


def _write_folder(root: Path, classes: dict[str, int], seed: int) -> Path:
    """``count`` 16x16 RGB PNGs per class; each class has its own mean brightness."""
    rng = np.random.default_rng(seed)
    for k, (name, count) in enumerate(classes.items()):
        for i in range(count):
            image = np.clip(rng.normal(60 + 120 * k, 40, (16, 16, 3)), 0, 255).astype(np.uint8)
            write_image(root / name / f"{i:02d}.png", image)
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("imagenet_style")
    return {"train": _write_folder(base / "train", {"cat": 6, "dog": 6}, seed=1),
            "val": _write_folder(base / "val", {"cat": 4, "dog": 3}, seed=2),
            "odd": _write_folder(base / "odd", {"cat": 2, "fox": 2}, seed=3)}


@pytest.fixture(scope="module")
def address(folders: dict[str, Path]) -> Iterator[str]:
    with serving(folders) as address:
        yield address


def _run(tmp_path: Path, **data: Any) -> TrainConfig:
    return load_config({
        "seed": 0, "epochs": 2, "device": "cpu", "tensorboard": False, "out_dir": str(tmp_path),
        "model": {"name": "mlp", "width": 16, "depth": 1},
        "data": {"augment": AUGMENT, "eval_augment": EVAL, "batch_size": 4,
                 "holdout_fraction": 0, **data},
        "optimizer": {"name": "adamw", "lr": 0.01}})


def _multiset(batches: Iterator[Batch]) -> list[tuple[int, bytes]]:
    return sorted((int(y), x.numpy().tobytes()) for xs, ys in batches
                  for x, y in zip(xs, ys, strict=True))


def _expected_val(folder: Path) -> list[tuple[int, bytes]]:
    """Every sample of ``folder`` through the eval pipeline, as the model should see it."""
    val, pipeline = open_dataset(folder), ImagePipeline(EVAL)
    images = [pipeline(val[i][0], seed=0, index=i).image for i in range(len(val))]
    labels = [val[i][1] for i in range(len(val))]
    return sorted((int(y), x.numpy().tobytes())
                  for x, y in zip(stack_images(images), labels, strict=True))


class _Counting(LocalSource):
    """A local source that counts the validation samples the trainer asks for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.validated: list[list[tuple[int, bytes]]] = []

    def holdout_batches(self) -> Iterator[Batch]:
        seen: list[Batch] = []
        for batch in super().holdout_batches():
            seen.append(batch)
            yield batch
        self.validated.append(_multiset(iter(seen)))


def test_local_run_trains_on_all_of_train_and_validates_on_all_of_val(
        tmp_path: Path, folders: dict[str, Path]) -> None:
    config = _run(tmp_path, dataset=str(folders["train"]), val_dataset=str(folders["val"]))
    source = _Counting(config.data, config.seed)
    assert (source.info.train_size, source.info.holdout_size) == (12, 7)
    assert source.info.class_names == ("cat", "dog")
    trained = sorted(i for e in range(2) for b in source.plan(e).batches() for i in b)
    assert trained == sorted(list(range(12)) * 2)  # every training sample, every epoch
    # in order: the val folder's samples 0..6, eval pipeline applied
    labels = torch.cat([y for _, y in source.holdout_batches()]).tolist()
    assert labels == [0, 0, 0, 0, 1, 1, 1]
    assert source.validated[-1] == _expected_val(folders["val"])
    source.validated.clear()

    result = Trainer(config, source=source, progress=False, report=False).fit()
    assert len(result.history) == 2
    assert len(source.validated) == 2 and all(v == _expected_val(folders["val"])
                                              for v in source.validated)
    for row in result.history:
        assert math.isfinite(row["val_loss"])
        assert row["val_accuracy"] * 7 == pytest.approx(round(row["val_accuracy"] * 7))  # k/7
    assert result.best_epoch is not None and result.best_path is not None


def test_memory_source_takes_the_val_dataset_too(tmp_path: Path, folders: dict[str, Path]) -> None:
    config = _run(tmp_path, dataset=str(folders["train"]), val_dataset=str(folders["val"]),
                  source="memory")
    source = MemorySource(config.data, config.seed)
    assert (source.info.train_size, source.info.holdout_size, len(source.y)) == (12, 7, 12)
    assert _multiset(source.holdout_batches()) == _expected_val(folders["val"])


def test_remote_validation_batches_equal_local_ones(tmp_path: Path, folders: dict[str, Path],
                                                    address: str) -> None:
    local = LocalSource(_run(tmp_path, dataset=str(folders["train"]),
                             val_dataset=str(folders["val"])).data, seed=0)
    remote = RemoteSource(_run(tmp_path, source="remote", addresses=[address], dataset="train",
                               val_dataset="val").data, seed=0)
    try:
        assert remote.info == local.info
        assert remote.info.holdout_size == 7
        assert _multiset(remote.holdout_batches()) == _multiset(local.holdout_batches()) \
            == _expected_val(folders["val"])
        for (xa, ya), (xb, yb) in zip(remote.train_batches(1), local.train_batches(1),
                                      strict=True):  # the whole train folder, same plan
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    finally:
        remote.close()


def test_class_names_must_match(tmp_path: Path, folders: dict[str, Path], address: str) -> None:
    message = r"data\.val_dataset: the class names of .*odd \['cat', 'fox'\] differ from " \
              r"those of data\.dataset .*train \['cat', 'dog'\]"
    with pytest.raises(ConfigError, match=message):
        LocalSource(_run(tmp_path, dataset=str(folders["train"]),
                         val_dataset=str(folders["odd"])).data, seed=0)
    with pytest.raises(ConfigError, match=r"odd \['cat', 'fox'\] differ from .*\['cat', 'dog'\]"):
        RemoteSource(_run(tmp_path, source="remote", addresses=[address], dataset="train",
                          val_dataset="odd").data, seed=0)
    with pytest.raises(ConfigError, match=r"data\.val_dataset: the server has no dataset 'nope'"):
        RemoteSource(_run(tmp_path, source="remote", addresses=[address], dataset="train",
                          val_dataset="nope").data, seed=0)
    with pytest.raises(ConfigError, match=r"data\.val_dataset: .*missing"):
        LocalSource(_run(tmp_path, dataset=str(folders["train"]),
                         val_dataset=str(tmp_path / "missing")).data, seed=0)
    texts = tmp_path / "texts.txt"
    texts.write_text("cat\ta small cat\ndog\ta big dog\n")
    with pytest.raises(ConfigError, match=r"holds text samples but data\.dataset .* holds image"):
        LocalSource(_run(tmp_path, dataset=str(folders["train"]),
                         val_dataset=str(texts)).data, seed=0)


def test_an_unreadable_val_file_is_reported_apart_from_training_skips(
        tmp_path: Path, folders: dict[str, Path]) -> None:
    val = _write_folder(tmp_path / "val", {"cat": 4, "dog": 3}, seed=2)
    (val / "dog" / "zz_empty.png").write_bytes(b"")
    config = _run(tmp_path / "out", dataset=str(folders["train"]), val_dataset=str(val))
    source = LocalSource(config.data, config.seed)
    assert source.info.holdout_size == 8
    assert _multiset(source.holdout_batches()) == _expected_val(folders["val"])
    assert source.skipped == {} and list(source.val_skipped) == [7]
    assert "zz_empty.png" in source.val_skipped[7]
    result = Trainer(config, source=source, progress=False, report=False).fit()
    assert result.skipped == {} and list(result.val_skipped) == [7]


def test_holdout_fraction_zero_without_val_gives_nan_metrics(tmp_path: Path) -> None:
    config = _run(tmp_path, dataset="digits", augment="digits", eval_augment=None,
                  train_size=200)
    trainer = Trainer(config, progress=False, report=False)
    assert (trainer.info.train_size, trainer.info.holdout_size) == (200, 0)
    assert list(trainer.source.holdout_batches()) == []
    result = trainer.fit()
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert all(math.isnan(row["val_loss"]) and math.isnan(row["val_accuracy"])
               for row in result.history)
    assert all(math.isfinite(row["train_loss"]) for row in result.history)
    assert result.best_epoch is None and result.best_path is None and not result.stopped_early
    assert (tmp_path / "last.pt").exists() and not (tmp_path / "best.pt").exists()


def test_holdout_fraction_zero_over_the_service(tmp_path: Path, address: str) -> None:
    config = _run(tmp_path, source="remote", addresses=[address], dataset="digits",
                  augment="digits", eval_augment=None, train_size=200)
    remote, local = RemoteSource(config.data, seed=0), LocalSource(config.data, seed=0)
    try:
        assert remote.info == local.info and remote.info.holdout_size == 0
        assert list(remote.holdout_batches()) == []
        for (xa, ya), (xb, yb) in zip(remote.train_batches(0), local.train_batches(0),
                                      strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    finally:
        remote.close()


@pytest.mark.parametrize(("raw", "message"), [
    ({"data": {"val_dataset": "val"}},
     "data.holdout_fraction: 0.2 with data.val_dataset 'val': validation comes from val_dataset "
     "and all of 'digits' is trained on, so holdout_fraction must be 0"),
    ({"data": {"holdout_fraction": 0}, "early_stopping": {"patience": 2}},
     "early_stopping.patience: early stopping needs validation data; set data.val_dataset or a "
     "data.holdout_fraction above 0"),
    ({"data": {"holdout_fraction": -0.1}},
     "data.holdout_fraction: out of range (got -0.1); allowed: number in [0, 1)"),
    ({"data": {"holdout_fraction": 1}},
     "data.holdout_fraction: out of range (got 1); allowed: number in [0, 1)"),
    ({"data": {"val_dataset": 3}}, "data.val_dataset: must be a non-empty string (got 3)"),
])
def test_config_errors(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert message in str(info.value)


def test_configs_that_are_allowed() -> None:
    assert load_config({"data": {"holdout_fraction": 0}}).data.holdout_fraction == 0
    config = load_config({"data": {"val_dataset": "val", "holdout_fraction": 0.0},
                          "early_stopping": {"patience": 2}})
    assert config.data.val_dataset == "val" and config.early_stopping.patience == 2
    assert load_config().data.val_dataset is None
