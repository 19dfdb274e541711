"""Training fed by the service equals training fed locally; the augsvc-train CLI; torchrun DDP."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from augsvc.service.server import build_server
from training.cli import main
from training.config import ConfigError, TrainConfig, load_config
from training.local import LocalSource
from training.remote import RemoteSource
from training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
RUN: dict[str, Any] = {"seed": 0, "epochs": 2, "device": "cpu", "tensorboard": False,
       "model": {"name": "mlp", "width": 32, "depth": 1, "norm": "batch"},
       "data": {"dataset": "digits", "augment": "digits", "batch_size": 128, "train_size": 600},
       "optimizer": {"name": "adamw", "lr": 0.01}}


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    server, port = build_server("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def _config(tmp_path: Path, **data: object) -> TrainConfig:
    return load_config({**RUN, "out_dir": str(tmp_path), "data": {**RUN["data"], **data}})


def test_remote_batches_equal_local_batches(tmp_path: Path, address: str) -> None:
    config = _config(tmp_path, source="remote", addresses=[address])
    remote = RemoteSource(config.data, seed=0)
    local = LocalSource(config.data, seed=0)
    assert remote.info == local.info
    assert remote.num_train_batches() == local.num_train_batches() == 5
    for (xa, ya), (xb, yb) in zip(remote.train_batches(1), local.train_batches(1), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    remote.close()


def test_the_next_epoch_is_opened_ahead_and_dropped_when_not_asked_for(tmp_path: Path,
                                                                       address: str) -> None:
    config = _config(tmp_path, source="remote", addresses=[address])
    remote, local = RemoteSource(config.data, seed=0), LocalSource(config.data, seed=0)
    try:
        assert remote._ahead is None
        first = list(remote.train_batches(0))
        assert remote._ahead is not None and remote._ahead[0] == (1, 0, 0, 1, False)  # epoch 1
        opened = remote._ahead[1]
        second = list(remote.train_batches(1))  # served by the stream opened ahead
        assert opened._done and remote._ahead is not None and remote._ahead[0][0] == 2
        ahead = remote._ahead[1]
        resumed = list(remote.train_batches(4, start_batch=3))  # not epoch 2: a fresh stream
        assert ahead._done and not ahead._thread.is_alive()
        want = [list(local.train_batches(0)), list(local.train_batches(1)),
                list(local.train_batches(4, start_batch=3))]
        for got, expected in zip([first, second, resumed], want, strict=True):
            assert len(got) == len(expected)
            for (xa, ya), (xb, yb) in zip(got, expected, strict=True):
                assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert remote.verified_samples == 600 + 600 + (600 - 3 * 128)
    finally:
        remote.close()
    assert remote._ahead is None


def test_training_over_the_service_matches_local_training(tmp_path: Path, address: str) -> None:
    remote = Trainer(_config(tmp_path / "r", source="remote", addresses=[address]),
                     progress=False).fit().history
    local = Trainer(_config(tmp_path / "l"), progress=False).fit().history
    for r, lo in zip(remote, local, strict=True):
        assert r["train_loss"] == lo["train_loss"] and r["val_accuracy"] == lo["val_accuracy"]
        assert r["val_loss"] == pytest.approx(lo["val_loss"], rel=1e-6)  # holdout order differs


def test_remote_source_errors_name_the_field(tmp_path: Path, address: str) -> None:
    with pytest.raises(ConfigError, match=r"data\.dataset: the server has no dataset 'nope'"):
        RemoteSource(_config(tmp_path, source="remote", addresses=[address],
                             dataset="nope").data, seed=0)
    with pytest.raises(ConfigError, match="no augsvc server answered"):
        RemoteSource(_config(tmp_path, source="remote", addresses=["127.0.0.1:9"]).data,
                     seed=0, wait=0.5)


def _write_config(tmp_path: Path) -> Path:
    path = tmp_path / "run.json"  # JSON is YAML
    path.write_text(json.dumps({**RUN, "out_dir": str(tmp_path / "out")}))
    return path


def test_cli_train_eval_and_lr_find(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write_config(tmp_path)
    assert main(["train", "--config", str(config), "-q", "--set", "epochs=1"]) == 0
    out = tmp_path / "out"
    assert {"metrics.csv", "curves.png", "gallery.png", "last.pt", "config.json"} <= {
        p.name for p in out.iterdir()}
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 1
    capsys.readouterr()
    assert main(["eval", str(out / "last.pt")]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["epoch"] == 1
    assert evaluated["val_accuracy"] == pytest.approx(float(rows[0]["val_accuracy"]))
    assert main(["lr-find", "--config", str(config), "-q", "--steps", "20"]) == 0
    found = json.loads((out / "lr_find.json").read_text())
    assert len(found["lrs"]) <= 20 and 1e-5 <= found["suggestion"] <= 1.0
    assert (out / "lr_find.png").stat().st_size > 10_000


def test_cli_resume_last_continues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write_config(tmp_path)
    assert main(["train", "--config", str(config), "-q", "--set", "epochs=1"]) == 0
    out = tmp_path / "out"
    assert "best: epoch 1  val_loss " in capsys.readouterr().out
    assert torch.load(out / "best.pt", weights_only=False)["epoch"] == 1
    assert main(["train", "--config", str(config), "-q", "--resume-last"]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    # epochs 1 -> 2 doubles the steps: the schedule is re-planned, not left at its end
    assert "schedule: re-planned for 10 steps (was 5), continuing at step 5" in printed
    losses = [float(r["val_loss"]) for r in rows]
    best = 1 + losses.index(min(losses))  # the first of equal values: only a strict gain counts
    assert f"best: epoch {best}  val_loss {min(losses):.4f}  ({out / 'best.pt'})" in printed
    assert torch.load(out / "best.pt", weights_only=False)["epoch"] == best
    assert "best.pt" in printed.splitlines()[-1]


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "optimizer.lr=-1"], "optimizer.lr: out of range (got -1); allowed: number in (0, inf]"),
    (["--set", "epochs"], "--set takes key=value"),
    (["--set", "model.name=vgg"], "unknown model 'vgg'"),
])
def test_cli_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  args: list[str], message: str) -> None:
    assert main(["train", "--config", str(_write_config(tmp_path)), "-q", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "training", "train", "--config", str(config), "-q", "--set", "epochs=3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader((tmp_path / "out" / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]  # written once, by rank 0
    assert float(rows[-1]["val_accuracy"]) > 0.5  # 10 classes: well above chance
    assert result.stdout.count("final: val_accuracy") == result.stdout.count("training mlp") == 1
