"""A folder of real, messy photos end to end: StreamEpoch reports what it skips, and augsvc-train
trains on it over the service with an eval transform (tests/messy_data.py makes the folder)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from augsvc.client import AugmentClient
from augsvc.datasets import open_dataset
from augsvc.image.pipeline import ImagePipeline
from augsvc.plan import EpochPlan
from tests.conftest import serving
from tests.messy_data import BROKEN, write_messy_folder
from training.cli import main
from training.config import load_config
from training.local import LocalSource
from training.remote import RemoteSource

SPEC = {"transforms": [{"name": "random_resized_crop", "height": 48, "width": 48,
                        "scale": [0.5, 1.0]}, {"name": "horizontal_flip", "p": 0.5}]}
EVAL = {"transforms": [{"name": "resize", "height": 56, "width": 56},
                       {"name": "center_crop", "height": 48, "width": 48}]}


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_messy_folder(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def address(messy: Path) -> Iterator[str]:
    with serving({"photos": messy}) as address:
        yield address


def _broken(messy: Path) -> set[int]:
    paths = open_dataset(messy).paths  # type: ignore[attr-defined]
    return {paths.index(messy / name) for name in BROKEN}


def test_a_stream_delivers_or_reports_every_planned_sample_once(messy: Path, address: str) -> None:
    local = open_dataset(messy)
    pipeline = ImagePipeline(SPEC)
    delivered: list[int] = []
    skipped: dict[int, str] = {}
    with AugmentClient(address) as client:
        for shard in range(2):
            for batch in client.stream_epoch("photos", SPEC, seed=3, epoch=1, batch_size=4,
                                             shard=shard, num_shards=2):
                delivered += batch.indices.tolist()
                skipped.update(batch.skipped)
                plan = EpochPlan(len(local), 3, 1, 4)
                for index, image in zip(batch.indices.tolist(), batch.samples, strict=True):
                    where = plan.augment_indices([index])[0]
                    # JPEGs this crop shrinks are read smaller (augsvc.image.reduced), as here.
                    read, source = local.read_scaled(  # type: ignore[attr-defined]
                        index, lambda h, w, i=where: pipeline.jpeg_scale(h, w, seed=3, index=i))
                    want = pipeline(read, seed=3, index=where, source_size=source)
                    assert np.array_equal(image, want.image)  # the library's bytes
    assert sorted(delivered + list(skipped)) == list(range(17))  # each index once, one way or other
    assert set(skipped) == _broken(messy)
    for index, reason in skipped.items():
        name = local.paths[index].relative_to(messy).as_posix()  # type: ignore[attr-defined]
        assert name in reason and BROKEN[name] in reason


def test_remote_and_local_sources_see_the_same_batches_and_the_same_skips(tmp_path: Path,
                                                                           messy: Path,
                                                                           address: str) -> None:
    base = {"seed": 1, "device": "cpu", "out_dir": str(tmp_path),
            "data": {"batch_size": 4, "augment": SPEC, "eval_augment": EVAL,
                     "holdout_fraction": 0.25}}
    remote = RemoteSource(load_config(base, {"data.source": "remote", "data.dataset": "photos",
                                             "data.addresses": [address]}).data, seed=1)
    local = LocalSource(load_config(base, {"data.dataset": str(messy)}).data, seed=1)
    try:
        assert remote.info == local.info
        pairs = list(zip(remote.train_batches(2), local.train_batches(2), strict=True))
        assert remote.num_train_batches() == 4
        assert len(pairs) == 3  # the last batch of epoch 2 is one broken file: nothing to train on
        for (xa, ya), (xb, yb) in pairs:
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
            assert xa.shape[1:] == (3, 48, 48)

        def holdout(source: RemoteSource | LocalSource) -> list[tuple[int, bytes]]:
            # the service sends the holdout in its plan's order, the local source in part order
            return sorted((int(y), x.numpy().tobytes()) for xs, ys in source.holdout_batches()
                          for x, y in zip(xs, ys, strict=True))

        assert holdout(remote) == holdout(local)
        assert remote.skipped == local.skipped and set(remote.skipped) == _broken(messy)
    finally:
        remote.close()


def test_augsvc_train_trains_on_the_photo_folder_over_the_service(
        tmp_path: Path, messy: Path, address: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "seed": 0, "epochs": 2, "device": "cpu", "tensorboard": False, "out_dir": str(tmp_path),
        "model": {"name": "cnn", "width": 8, "depth": 2},
        "data": {"dataset": "photos", "source": "remote", "addresses": [address],
                 "augment": SPEC, "eval_augment": EVAL, "batch_size": 4,
                 "holdout_fraction": 0.25},
        "optimizer": {"name": "adamw", "lr": 0.01}}
    (tmp_path / "run.yaml").write_text(json.dumps(config))  # JSON is YAML
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "-q"]) == 0
    out = capsys.readouterr().out
    print(out)  # what the messy-folder run printed, for the record
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert len(rows) == 2 and all(math.isfinite(float(r["val_loss"])) for r in rows)
    assert "skipped: 3 sample(s) could not be read" in out
    for name, word in BROKEN.items():
        line = next(x for x in out.splitlines() if name in x)
        assert word in line


def test_the_server_counts_and_logs_what_it_skips(messy: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from augsvc.service.metrics import Metrics

    metrics = Metrics()
    with serving({"photos": messy}, observers=[metrics]) as address, \
            caplog.at_level("WARNING", logger="augsvc.epochs"), AugmentClient(address) as client:
        batches = list(client.stream_epoch("photos", "eval", seed=0, epoch=0, batch_size=5))
    assert sum(len(b.skipped) for b in batches) == 3
    assert metrics.value("augsvc_skipped_samples_total", grpc_method="StreamEpoch") == 3
    logged = [r.fields for r in caplog.records if r.name == "augsvc.epochs"]  # type: ignore[attr-defined]
    assert sorted(f["index"] for f in logged) == sorted(_broken(messy))
    assert all(f["dataset"] == "photos" and "cannot decode" in f["reason"] for f in logged)
    assert {b.samples[0].shape for b in batches if b.samples} == {(224, 224, 3)}  # the eval preset
