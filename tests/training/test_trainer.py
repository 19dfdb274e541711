"""The trainer on real digits: it learns, resumes bit-exactly, logs, and rejects bad configs."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from augsvc.image.tensors import stack_images
from training.config import ConfigError, load_config
from training.data import Vocabulary
from training.local import LocalSource, MemorySource
from training.lr_find import lr_find, suggest_lr
from training.schedules import schedule_factor
from training.trainer import Trainer

TIMING = ("seconds", "samples_per_second", "input_wait")


def _config(tmp_path: Path, **extra: Any) -> Any:
    raw: dict[str, Any] = {
        "seed": 0, "epochs": 3, "device": "cpu", "out_dir": str(tmp_path / "run"),
        "tensorboard": False,
        "model": {"name": "mlp", "width": 64, "depth": 2, "norm": "batch", "dropout": 0.1},
        "data": {"dataset": "digits", "augment": "digits", "batch_size": 64},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "schedule": {"name": "cosine", "warmup_steps": 5},
    }
    for dotted, value in extra.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return load_config(raw)


def _metrics(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


@pytest.mark.slow
def test_mlp_learns_digits(tmp_path: Path) -> None:
    result = Trainer(_config(tmp_path), progress=False).fit()
    history = result.history
    assert len(history) == 3
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    # 10 classes: chance is 0.10; the stated bar for 3 short epochs is 0.90
    assert history[-1]["val_accuracy"] >= 0.90
    rows = list(csv.DictReader((result.out_dir / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(history[-1]["val_accuracy"])
    assert (result.out_dir / "last.pt").exists()


@pytest.mark.slow
def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    whole = Trainer(_config(tmp_path / "a"), progress=False).fit().history
    first = Trainer(_config(tmp_path / "b"), progress=False)
    first.fit(stop_after=1)
    second = Trainer(_config(tmp_path / "b"), progress=False)
    second.load(tmp_path / "b" / "run" / "last.pt")
    assert second.start_epoch == 1
    resumed = second.fit().history
    assert _metrics(resumed) == _metrics(whole)  # bit-exact: equal floats, not approx
    rows = list(csv.DictReader((tmp_path / "b" / "run" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]


def test_memory_and_local_sources_share_the_epoch_plan(tmp_path: Path) -> None:
    config = _config(tmp_path, data__train_size=100, data__batch_size=32)
    local = LocalSource(config.data, seed=0)
    memory = MemorySource(config.data, seed=0)
    assert local.info == memory.info
    assert local.num_train_batches() == memory.num_train_batches() == 4
    # epoch 0: the memory source holds exactly epoch 0's augmented samples, in the same order
    for (xa, ya), (xb, yb) in zip(local.train_batches(0), memory.train_batches(0), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # epoch 1: same labels order (same plan), but the local source draws new augmentations
    (x1, y1), (m1, n1) = next(local.train_batches(1)), next(memory.train_batches(1))
    assert torch.equal(y1, n1) and not torch.equal(x1, m1)


def test_local_source_workers_give_the_same_batches(tmp_path: Path) -> None:
    one = LocalSource(_config(tmp_path, data__train_size=96, data__batch_size=32).data, seed=1)
    two = LocalSource(_config(tmp_path, data__train_size=96, data__batch_size=32,
                              data__workers=2).data, seed=1)
    for (xa, ya), (xb, yb) in zip(one.train_batches(2), two.train_batches(2), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_shards_split_an_epoch_without_overlap(tmp_path: Path) -> None:
    source = LocalSource(_config(tmp_path, data__train_size=100, data__batch_size=16,
                                 data__augment=None).data, seed=0)
    whole = torch.cat([x for x, _ in source.train_batches(0)])
    parts = [torch.cat([x for x, _ in source.train_batches(0, shard=k, num_shards=3)])
             for k in range(3)]
    assert sum(len(p) for p in parts) == len(whole) == 100
    flat = {bytes(x.numpy()) for p in parts for x in p}
    assert flat == {bytes(x.numpy()) for x in whole}


def test_holdout_is_never_augmented_and_disjoint(tmp_path: Path) -> None:
    source = LocalSource(_config(tmp_path).data, seed=0)
    assert source.info.train_size + source.info.holdout_size == 1797
    assert source.info.holdout_size == round(0.2 * 1797)
    assert not set(source.parts.train) & set(source.parts.holdout)
    x, y = next(source.holdout_batches())
    images, labels = source.parts.dataset.samples(source.parts.holdout[: len(y)])
    assert torch.equal(x, stack_images(images)) and y.tolist() == labels.tolist()


def test_channels_and_sizes_come_from_the_augmented_sample(tmp_path: Path) -> None:
    config = _config(tmp_path, data__augment={"transforms": [
        {"name": "resize", "height": 20, "width": 20}]})
    info = LocalSource(config.data, seed=0).info
    assert (info.kind, info.in_channels, info.image_size, info.num_classes) == ("image", 1, 20, 10)


def test_vocabulary_pads_and_maps_unknown_words() -> None:
    vocab = Vocabulary(["the cat sat", "the dog"])
    ids = vocab.encode(["the cat", "a zebra the dog ran cat sat", ""], max_tokens=3)
    assert ids.shape == (3, 3)
    assert ids[0].tolist() == [vocab.ids["the"], vocab.ids["cat"], 0]
    # unknown words are dropped, then the row is cut at max_tokens
    assert ids[1].tolist() == [vocab.ids["the"], vocab.ids["dog"], vocab.ids["cat"]]
    assert ids[2].tolist() == [0, 0, 0]  # nothing known: all padding
    assert vocab.encode([""], max_tokens=3).shape == (1, 1)
    assert vocab.ids["the"] == 2  # the most frequent word gets the first id


@pytest.mark.parametrize(("extra", "message"), [
    ({"model__name": "text_cnn"}, "model.name: text_cnn takes text input but digits is a image"),
    ({"model__name": "vgg"}, "model.name: unknown model 'vgg'"),
    ({"model__norm": "group"}, "model:"),
    ({"optimizer__name": "adamw", "optimizer__momentum": 0.9}, "optimizer: adamw has no hyper-parameter"),
    ({"schedule__name": "cosine", "schedule__gamma": 0.5}, "schedule: cosine has no option"),
    ({"data__train_size": 5000}, "data.train_size: 5000 is more than the 1438 training samples"),
    ({"data__dataset": "no/such/folder"}, "unknown dataset 'no/such/folder'"),
])
def test_config_errors_name_the_section(tmp_path: Path, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Trainer(_config(tmp_path, **extra), progress=False)
    assert message in str(info.value)


def test_lr_find_sweeps_up_and_suggests_inside_the_range(tmp_path: Path) -> None:
    trainer = Trainer(_config(tmp_path, data__augment=None), progress=False)
    result = lr_find(trainer, lo=1e-4, hi=10.0, steps=40)
    assert result.lrs == sorted(result.lrs) and result.lrs[0] == pytest.approx(1e-4)
    # adamw on digits: too small rates barely move the loss, so the suggestion is well inside
    assert 1e-3 <= result.suggestion <= 1.0
    assert all(math.isfinite(v) for v in result.losses[:10])


def test_suggestion_is_a_tenth_of_the_rate_at_the_lowest_loss() -> None:
    lrs = list(np.logspace(-4, 0, 9))
    losses = [2.3, 2.3, 2.2, 1.5, 0.8, 0.7, 0.6, 1.5, float("nan")]  # lowest at lrs[6] = 1e-1
    assert suggest_lr(lrs, losses) == pytest.approx(lrs[6] / 10)
    assert suggest_lr(lrs, [0.1] + [1.0] * 8) == lrs[0]  # never below the sweep
    assert suggest_lr(lrs, [float("inf")] * 9) == lrs[0]


def test_tensorboard_events_and_early_stopping(tmp_path: Path) -> None:
    config = _config(tmp_path, epochs=8, tensorboard=True, early_stopping__patience=0,
                     early_stopping__metric="val_accuracy", early_stopping__min_delta=0.5,
                     data__train_size=200)
    result = Trainer(config, progress=False).fit()
    # min_delta 0.5: no epoch after the first can improve accuracy by half, so patience 0 stops
    # at epoch 2
    assert result.stopped_early and len(result.history) == 2
    events = list((result.out_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 100


def test_gradient_clipping_bounds_the_update(tmp_path: Path) -> None:
    def first_step_change(clip: float | None) -> float:
        config = _config(tmp_path, grad_clip=clip, optimizer__name="sgd", optimizer__lr=1.0,
                         schedule__warmup_steps=0, data__train_size=64, data__augment=None,
                         model__dropout=0.0, epochs=1)
        trainer = Trainer(config, progress=False, report=False)
        before = [p.detach().clone() for p in trainer.model.parameters()]
        trainer.train_epoch(0)
        deltas = [(p.detach() - b).flatten() for p, b in zip(trainer.model.parameters(), before,
                                                               strict=True)]
        return float(torch.cat(deltas).norm())

    # plain SGD with lr 1: the update is the (clipped) gradient itself (one batch of 64)
    assert first_step_change(0.01) == pytest.approx(0.01, rel=1e-3)
    assert first_step_change(None) > 0.05


def _scripted(monkeypatch: pytest.MonkeyPatch, trainer: Trainer, val_losses: list[float]) -> None:
    """Replace training and validation by a fixed val_loss sequence (val_accuracy = 1 - loss):
    the stop rule and the best checkpoint are then a pure function of the sequence."""
    values = iter(val_losses)
    monkeypatch.setattr(trainer, "train_epoch", lambda epoch: {
        "train_loss": 1.0, "train_accuracy": 0.5, "seconds": 1.0, "samples_per_second": 1.0,
        "input_wait": 0.1})

    def evaluate() -> dict[str, float]:
        loss = next(values)
        return {"val_loss": loss, "val_accuracy": 1.0 - loss}

    monkeypatch.setattr(trainer, "evaluate", evaluate)


def _scripted_config(tmp_path: Path, epochs: int = 8, **extra: Any) -> Any:
    return _config(tmp_path, epochs=epochs, data__train_size=64, data__augment=None,
                   schedule__warmup_steps=0, **extra)


LOSSES = [1.0, 0.8, 0.795, 0.81, 0.79, 0.5, 0.4, 0.3]


@pytest.mark.parametrize(("patience", "min_delta", "metric", "epochs_run", "best_epoch"), [
    # 0.795 and 0.79 are not better than 0.8 by 0.01: epochs 3 and 4 are the two without
    # improvement, so patience 2 stops after epoch 4 (not after epoch 5); best.pt follows the
    # lowest loss itself (epoch 3), min_delta only decides when to stop
    (2, 0.01, "val_loss", 4, 3),
    (2, 0.01, "val_accuracy", 4, 3),
    (2, 0.0, "val_loss", 8, 8),  # 0.795 and 0.79 improve; 0.81 alone is one epoch, not two
    (1, 0.0, "val_loss", 4, 3),
    (0, 0.0, "val_loss", 4, 3),  # 0 stops at the first epoch without improvement, as 1 does
    (3, 0.01, "val_loss", 5, 5),
    (None, 0.01, "val_loss", 8, 8),  # no early stopping: all epochs, best still kept
])
def test_early_stopping_stops_after_exactly_patience_epochs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patience: int | None, min_delta: float,
        metric: str, epochs_run: int, best_epoch: int) -> None:
    config = _scripted_config(tmp_path, early_stopping__patience=patience,
                              early_stopping__min_delta=min_delta, early_stopping__metric=metric)
    trainer = Trainer(config, progress=False, report=False)
    _scripted(monkeypatch, trainer, LOSSES)
    result = trainer.fit()
    assert len(result.history) == epochs_run
    assert result.stopped_early == (epochs_run < len(LOSSES))
    assert (result.metric, result.best_epoch) == (metric, best_epoch)
    want = LOSSES[best_epoch - 1] if metric == "val_loss" else 1.0 - LOSSES[best_epoch - 1]
    assert result.best_value == want
    assert result.best_path == result.out_dir / "best.pt"
    best = torch.load(result.best_path, weights_only=False)
    assert best["epoch"] == best_epoch and len(best["history"]) == best_epoch
    assert best["best"] == {"metric": metric, "value": want, "epoch": best_epoch}
    assert torch.load(result.out_dir / "last.pt", weights_only=False)["epoch"] == epochs_run


def test_best_checkpoint_survives_a_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Trainer(_scripted_config(tmp_path, epochs=6), progress=False, report=False)
    _scripted(monkeypatch, first, [1.0, 0.5, 0.7])
    assert first.fit(stop_after=3).best_epoch == 2
    last = tmp_path / "run" / "last.pt"

    # 0.6 and 0.55 are worse than epoch 2's 0.5: a resume that forgot the best would take epoch 4
    second = Trainer(_scripted_config(tmp_path, epochs=5), progress=False, report=False)
    second.load(last)
    _scripted(monkeypatch, second, [0.6, 0.55])
    result = second.fit()
    assert (result.best_epoch, result.best_value) == (2, 0.5)
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=False)["epoch"] == 2

    # a checkpoint without the "best" entry (older runs): the best is read back from the history
    state = torch.load(last, weights_only=False)
    del state["best"]
    torch.save(state, last)
    third = Trainer(_scripted_config(tmp_path, epochs=6), progress=False, report=False)
    third.load(last)
    assert (third.best_epoch, third.best_value) == (2, 0.5)
    _scripted(monkeypatch, third, [0.4])
    result = third.fit()
    assert (result.best_epoch, result.best_value) == (6, 0.4)
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=False)["epoch"] == 6


def test_a_fresh_run_removes_an_older_runs_best_checkpoint(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "run" / "best.pt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from another run")
    trainer = Trainer(_scripted_config(tmp_path, epochs=2), progress=False, report=False)
    _scripted(monkeypatch, trainer, [math.nan, math.nan])  # no finite metric: nothing is best
    result = trainer.fit()
    assert (result.best_epoch, result.best_path) == (None, None) and not stale.exists()


def test_resume_with_more_epochs_replans_the_schedule(tmp_path: Path) -> None:
    def config(epochs: int) -> Any:
        return _config(tmp_path, epochs=epochs, data__train_size=64, data__batch_size=32,
                       data__augment=None, schedule__warmup_steps=0, model__width=16)

    first = Trainer(config(2), progress=False, report=False)
    first.fit()
    assert first.total_steps == 4
    assert first.optimizer.param_groups[0]["lr"] == 0.0  # the 2-epoch cosine has ended
    second = Trainer(config(4), progress=False, report=False)
    second.load(tmp_path / "run" / "last.pt")
    lrs: list[float] = []
    second.optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: lrs.append(opt.param_groups[0]["lr"]))
    history = second.fit().history
    fresh = schedule_factor("cosine", 8)  # what a 4-epoch run would use at the same steps
    assert lrs == pytest.approx([0.01 * fresh(step) for step in range(4, 8)], rel=1e-12, abs=0)
    assert lrs[0] > 0 and all(a > b for a, b in itertools.pairwise(lrs))
    assert [row["lr"] for row in history[2:]] == [lrs[0], lrs[2]]  # the CSV's lr column too


def test_curves_mark_the_best_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import training.plots

    figures: list[Any] = []
    monkeypatch.setattr(training.plots, "_save", lambda fig, path: figures.append(fig) or Path(path))
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": v, "train_accuracy": 0.5,
                "val_accuracy": 1 - v} for e, v in enumerate([0.9, 0.4, 0.6], start=1)]

    def marks(fig: Any) -> list[tuple[str, str, list[float]]]:
        return [(line.get_label(), line.get_linestyle(), list(line.get_xdata()))
                for ax in fig.axes for line in ax.get_lines() if line.get_label().startswith("best")]

    training.plots.plot_curves(history, tmp_path / "c.png", best_epoch=2)
    training.plots.plot_curves(history, tmp_path / "c.png")
    assert marks(figures[0]) == [("best (epoch 2)", "--", [2, 2])] * 2  # loss and accuracy
    assert marks(figures[1]) == []
    legend = [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
    assert "best (epoch 2)" in legend
