"""Detection from the library, through StreamEpoch, into augsvc-train: a COCO set's boxes move with
their images, locally and over the service, the centernet model learns an easy set, and mAP comes
from pycocotools."""

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
from tests.messy_data import write_coco
from tests.training.cli_runs import train_cli
from training.centernet import centernet_loss, decode
from training.config import ConfigError, load_config
from training.detection import mean_ap
from training.local import LocalSource
from training.models import create_model
from training.remote import RemoteSource
from training.trainer import Trainer

SIZE = 64
AUGMENT = {"transforms": [{"name": "resize", "height": SIZE, "width": SIZE},
                          {"name": "horizontal_flip", "p": 0.5}]}
EVAL = {"transforms": [{"name": "resize", "height": SIZE, "width": SIZE}]}
COLOURS = ((220, 40, 40), (40, 60, 220))  # category 1 red, category 2 blue


def write_rectangles(root: Path, count: int = 60, seed: int = 0) -> Path:
    """An easy COCO set: grey noise with one or two solid red or blue rectangles per image (the
    colour is the class); sizes 64x64 and 72x80, so the pipeline must resize."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    images, annotations = [], []
    for k in range(count):
        height, width = (64, 64) if k % 2 else (72, 80)
        image = rng.integers(90, 160, (height, width, 1), dtype=np.uint8).repeat(3, axis=2)
        for _ in range(int(rng.integers(1, 3))):
            cls = int(rng.integers(0, 2))
            h, w = int(rng.integers(12, 28)), int(rng.integers(12, 28))
            y, x = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
            image[y:y + h, x:x + w] = COLOURS[cls]
            annotations.append({"id": len(annotations) + 1, "image_id": k + 1, "category_id": cls + 1,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
        Image.fromarray(image).save(root / f"r{k:02d}.png")
        images.append({"id": k + 1, "file_name": f"r{k:02d}.png", "height": height, "width": width})
    categories = [{"id": 1, "name": "red"}, {"id": 2, "name": "blue"}]
    (root / "instances.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}))
    return root / "instances.json"


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rectangles(tmp_path_factory.mktemp("coco") / "set")


@pytest.fixture(scope="module")
def address(coco: Path) -> Iterator[str]:
    with serving({"coco": coco}, workers=1) as address:
        yield address


RUN: dict[str, Any] = {
    "seed": 3, "epochs": 2, "device": "cpu", "tensorboard": False,
    "model": {"name": "centernet", "width": 8, "depth": 3},
    "data": {"augment": AUGMENT, "eval_augment": EVAL, "batch_size": 8, "holdout_fraction": 0.2},
    "optimizer": {"name": "adamw", "lr": 0.005}, "schedule": {"name": "constant"}}


def _config(dataset: str, out: Path | None = None, **data: Any) -> Any:
    return load_config({**RUN, "out_dir": str(out or "unused"),
                        "data": {**RUN["data"], "dataset": dataset, **data}})


def test_local_batches_are_the_librarys_images_and_boxes_moved_together(coco: Path) -> None:
    source = LocalSource(_config(str(coco)).data, seed=3)
    assert source.info.task == "detection" and source.info.class_names == ("red", "blue")
    assert (source.info.train_size, source.info.holdout_size, source.info.image_size) == (48, 12, SIZE)
    dataset = open_dataset(coco)
    for epoch in (0, 1):
        got = list(source.train_batches(epoch))
        planned = list(source.plan(epoch).batches())
        assert len(got) == len(planned) == 6
        for (x, y), indices in zip(got, planned, strict=True):
            taken = dataset.take(indices)
            images, targets = augment_with_targets(
                ImagePipeline(AUGMENT), taken.samples, taken.targets, seed=3,
                indices=augment_indices(epoch, len(dataset), indices))
            assert x.dtype == torch.uint8 and torch.equal(x, stack_images(images))
            assert len(y) == len(targets) == len(indices)
            for box, want in zip(y, targets, strict=True):
                assert box["boxes"].dtype == torch.float32 and box["labels"].dtype == torch.int64
                assert np.allclose(box["boxes"].numpy(), want.boxes, atol=1e-4)
                assert np.array_equal(box["labels"].numpy(), want.labels)
    val = list(source.holdout_batches())
    assert sum(len(y) for _, y in val) == 12 and all(x.shape[-2:] == (SIZE, SIZE) for x, _ in val)


def _by_image(batches: Any) -> dict[bytes, tuple[np.ndarray, np.ndarray]]:
    found = {x[k].numpy().tobytes(): (t["boxes"].numpy(), t["labels"].numpy())
             for x, y in batches for k, t in enumerate(y)}
    return dict(sorted(found.items()))


def test_a_messy_coco_file_gives_boxes_only(tmp_path: Path) -> None:
    """Instance masks, keypoints, a crowd annotation, an empty image, category ids 3 and 7."""
    coco = write_coco(tmp_path / "messy")
    source = LocalSource(_config(str(coco), holdout_fraction=0, batch_size=3).data, seed=3)
    assert source.info.task == "detection" and source.info.class_names == ("cat", "dog")
    (x, y), = source.train_batches(0)
    assert x.shape == (3, 3, SIZE, SIZE) and all(set(t) == {"boxes", "labels"} for t in y)
    assert sorted(len(t["labels"]) for t in y) == [0, 1, 2]  # the crowd box left out
    assert all(bool(((t["labels"] >= 0) & (t["labels"] < 2)).all()) for t in y)
    model = create_model("centernet", in_channels=3, num_classes=2, width=4, depth=2, seed=0)
    assert math.isfinite(float(centernet_loss(model(x.float() / 255), y).detach()))  # no box too


def test_remote_batches_equal_local_batches(coco: Path, address: str) -> None:
    remote = RemoteSource(_config("coco", source="remote", addresses=[address]).data, seed=3)
    local = LocalSource(_config(str(coco)).data, seed=3)
    try:
        assert remote.info == local.info
        for (rx, ry), (lx, ly) in zip(remote.train_batches(1), local.train_batches(1), strict=True):
            assert torch.equal(rx, lx)
            for r, lo in zip(ry, ly, strict=True):
                assert torch.allclose(r["boxes"], lo["boxes"]) and torch.equal(r["labels"], lo["labels"])
        # the server streams the holdout part in its own order: the same images and boxes
        got, want = _by_image(remote.holdout_batches()), _by_image(local.holdout_batches())
        assert list(got) == list(want) and len(got) == 12
        for key, (boxes, labels) in got.items():
            assert np.allclose(boxes, want[key][0]) and np.array_equal(labels, want[key][1])
    finally:
        remote.close()


def test_the_loss_falls_and_decoding_finds_the_boxes(coco: Path) -> None:
    source = LocalSource(_config(str(coco)).data, seed=3)
    x, y = next(source.train_batches(0))
    model = create_model("centernet", in_channels=3, num_classes=2, width=8, depth=3, seed=0)
    assert model(x.float() / 255).shape == (8, 2 + 4, SIZE // 4, SIZE // 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.005)
    losses = []
    for _ in range(30):
        loss = centernet_loss(model(x.float() / 255), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.5 * losses[0], losses
    found = decode(model.eval()(x.float() / 255), k=10)
    assert found[0]["boxes"].shape == (10, 4) and found[0]["scores"].shape == (10,)
    assert bool((found[0]["scores"][:-1] >= found[0]["scores"][1:]).all())


def test_mean_ap_of_perfect_and_of_missing_detections() -> None:
    truth = [{"boxes": np.array([[4.0, 4, 20, 30], [30, 30, 60, 50]]), "labels": np.array([0, 1])}]
    perfect = [{**truth[0], "scores": np.array([0.9, 0.8])}]
    assert mean_ap(truth, perfect, 2, [(64, 64)]) == pytest.approx((1.0, 1.0))
    wrong = [{"boxes": truth[0]["boxes"], "labels": np.array([1, 0]), "scores": np.array([0.9, 0.8])}]
    assert mean_ap(truth, wrong, 2, [(64, 64)]) == (0.0, 0.0)
    none: list[dict[str, Any]] = [{"boxes": np.zeros((0, 4)), "labels": np.zeros(0), "scores": np.zeros(0)}]
    assert mean_ap(truth, none, 2, [(64, 64)]) == (0.0, 0.0)
    assert all(math.isnan(v) for v in mean_ap([{"boxes": np.zeros((0, 4)), "labels": np.zeros(0)}],
                                              perfect, 2, [(64, 64)]))


def _cli(tmp_path: Path, name: str, dataset: str, *extra: str, **data: Any) -> list[dict[str, str]]:
    return train_cli(tmp_path, RUN, name, dataset, *extra, **data)


def test_cli_trains_centernet_locally_and_over_the_service_alike(
        tmp_path: Path, coco: Path, address: str, capsys: pytest.CaptureFixture[str]) -> None:
    local = _cli(tmp_path, "local", str(coco))
    remote = _cli(tmp_path, "remote", "coco", source="remote", addresses=[address])
    printed = capsys.readouterr().out
    assert printed.count("final: val_accuracy") == 2 and printed.count("val_map") >= 4
    assert list(local[0]) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                              "lr", "seconds", "samples_per_second", "input_wait", "val_map"]
    assert len(local) == len(remote) == 2
    for lo, re in zip(local, remote, strict=True):
        assert math.isnan(float(lo["train_accuracy"]))  # no accuracy for boxes
        for key in ("train_loss", "val_loss", "val_accuracy", "val_map"):
            assert math.isfinite(float(lo[key])), key
            assert float(re[key]) == pytest.approx(float(lo[key]), rel=1e-5, abs=1e-6), key


def test_centernet_learns_the_easy_set(tmp_path: Path, coco: Path) -> None:
    config = load_config({**RUN, "epochs": 20, "out_dir": str(tmp_path),
                          "model": {"name": "centernet", "width": 16, "depth": 3, "norm": "batch"},
                          "optimizer": {"name": "adamw", "lr": 0.003}, "schedule": {"name": "cosine"},
                          "early_stopping": {"metric": "val_map"},
                          "data": {**RUN["data"], "dataset": str(coco), "batch_size": 4}})
    result = Trainer(config, progress=False, report=False).fit()  # about 7 s on 2 CPU cores
    final = result.final  # seeds 1, 2, 3: mAP@0.5 0.88-0.95, mAP@[.5:.95] 0.46-0.58
    assert final["val_accuracy"] > 0.7 and final["val_map"] > 0.3, result.history
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    assert result.best_path is not None and result.metric == "val_map"


def test_a_model_must_fit_the_task(tmp_path: Path, coco: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.name: centernet is a detection model but digits "
                                          r"is a classification dataset; classification models: "):
        Trainer(load_config({**RUN, "data": {"dataset": "digits", "train_size": 64}}), progress=False)
    with pytest.raises(ConfigError, match=r"model\.name: fcn is a segmentation model but .* is a "
                                          r"detection dataset; detection models: centernet"):
        Trainer(load_config({**RUN, "model": {"name": "fcn"},
                             "data": {**RUN["data"], "dataset": str(coco)}}), progress=False)
    with pytest.raises(ConfigError, match=r"early_stopping\.metric: val_map is reported for "
                                          r"detection datasets only"):
        Trainer(load_config({**RUN, "model": {"name": "mlp"}, "early_stopping": {"metric": "val_map"},
                             "data": {"dataset": "digits", "train_size": 64}}), progress=False)
    with pytest.raises(ConfigError, match=r"data\.source: memory"):
        Trainer(load_config({**RUN, "data": {**RUN["data"], "dataset": str(coco), "source": "memory"}}),
                progress=False)
    with pytest.raises(ValueError, match="images of one size"):
        list(LocalSource(_config(str(coco), augment={"transforms": [{"name": "horizontal_flip"}]}).data,
                         seed=3).train_batches(0))


def test_the_heatmap_prior_survives_the_registry_init() -> None:
    from training.models import create_model

    for init in (None, "kaiming", "xavier"):
        model = create_model("centernet", init=init, in_channels=3, num_classes=2, width=4,
                             depth=2)
        bias = model.heatmap[-1].bias  # type: ignore[index, union-attr]
        assert torch.allclose(bias, torch.full_like(bias, -math.log(9.0))), init  # p = 0.1
