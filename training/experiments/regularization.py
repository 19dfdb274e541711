"""Experiment 2: the generalisation gap on a small digits subset, and what each regularizer does to it.

Five arms trained with the same model, optimizer, schedule and number of steps: baseline,
+augmentation (the ``digits`` image preset, new draws every epoch), +dropout, +L2 penalty, and
all three together. Every epoch records accuracy on the clean training subset (eval mode, no
augmentation, no dropout) and on the holdout; the gap is their difference after the last epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from training.experiments.common import digits_config, fit_epochs, one_thread
from training.experiments.report import Report, pm
from training.local import MemorySource
from training.trainer import Trainer

__all__ = ["ARMS", "run"]

TRAIN_SIZE = 200
MODEL: dict[str, Any] = {"name": "mlp", "width": 256, "depth": 2}
OPTIMIZER: dict[str, Any] = {"name": "adam", "lr": 1e-3}
DROPOUT = 0.5  # Srivastava et al. (2014)'s default for hidden units
L2 = 1e-3
BATCH_SIZE = 32
ARMS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "+augmentation": {"augment": "digits"},
    "+dropout": {"dropout": DROPOUT},
    "+L2": {"l2": L2},
    "+all": {"augment": "digits", "dropout": DROPOUT, "l2": L2},
}


def run(out_dir: Path, *, full: bool = False, smoke: bool = False, seeds: int = 1,
        command: str = "") -> Path:
    """Train every arm on every seed and write ``out_dir/report.md``; returns its path."""
    count = seeds
    train_size, epochs = (64, 2) if smoke else (TRAIN_SIZE, 60)
    report = Report("regularization", f"Regularization: the train/validation gap with {train_size} "
                    "training digits", out_dir, command=command, settings={
                        "data": f"digits (32x32): {train_size} training images (a seeded subset of the "
                                "80% training part), validated on the 20% holdout (359 images)",
                        "model": "mlp 1024-256-256-10, ReLU, kaiming init",
                        "training": f"Adam lr {OPTIMIZER['lr']}, cosine schedule, batch {BATCH_SIZE}, "
                                    f"{epochs} epochs (the same steps for every arm)",
                        "arms": f"augmentation = the `digits` preset (shift/scale/rotate, contrast, "
                                f"coarse dropout; fresh draws each epoch); dropout p = {DROPOUT} after "
                                f"each hidden layer; L2 = {L2:g} · Σ‖W‖² on weights (not biases)",
                        "seeds": count})
    rows: list[dict[str, Any]] = []
    with one_thread():
        for arm, spec in ARMS.items():
            for seed in range(count):
                config = digits_config(
                    seed, model={**MODEL, "dropout": spec.get("dropout", 0.0)}, optimizer=OPTIMIZER,
                    epochs=epochs, batch_size=BATCH_SIZE, train_size=train_size,
                    augment=spec.get("augment"), schedule="cosine",
                    regularization={"penalty": "l2", "strength": spec["l2"]} if "l2" in spec else None)
                clean = MemorySource(digits_config(seed, model=MODEL, optimizer=OPTIMIZER,
                                                   train_size=train_size).data, seed)
                trainer = Trainer(config, source=None if "augment" in spec else clean,
                                  progress=False, report=False)
                history = fit_epochs(trainer, epochs, clean_train=(clean.x, clean.y))
                rows += [{"arm": arm, "seed": seed, **row} for row in history]
    report.csv("history.csv", rows)
    _results(report, rows, epochs, count)
    return report.write()


def _results(report: Report, rows: list[dict[str, Any]], epochs: int, count: int) -> None:
    report.section("Results after the last epoch")
    last = {arm: [r for r in rows if r["arm"] == arm and r["epoch"] == epochs] for arm in ARMS}
    table = []
    for arm, mine in last.items():
        train = [r["clean_train_accuracy"] for r in mine]
        val = [r["val_accuracy"] for r in mine]
        table.append([arm, pm(train, 1, scale=100), pm(val, 1, scale=100),
                      pm([t - v for t, v in zip(train, val, strict=True)], 1, scale=100),
                      pm([r["val_loss"] for r in mine], 3)])
        base = [r["val_accuracy"] for r in last["baseline"]]
        table[-1].append(pm([v - b for v, b in zip(val, base, strict=True)], 1, scale=100)
                         if arm != "baseline" else "—")
    report.table(["arm", "train accuracy % (clean)", "holdout accuracy %", "gap (points)",
                  "holdout loss", "holdout change vs baseline (paired by seed)"], table)
    report.text(f"Mean ± std over {count} seed(s); each seed draws its own training subset, so the "
                "paired change (same seed, same subset) is the fairer comparison. Train accuracy is "
                "measured in eval mode on the un-augmented training images, so it is comparable "
                "across arms.")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    epochs_axis = np.arange(1, epochs + 1)
    for arm in ARMS:
        def curve(key: str, arm: str = arm) -> np.ndarray:
            return np.array([[r[key] for r in rows if r["arm"] == arm and r["seed"] == s]
                             for s in range(count)]).mean(0)
        (line,) = left.plot(epochs_axis, curve("clean_train_accuracy"), "-", label=f"{arm} train")
        left.plot(epochs_axis, curve("val_accuracy"), "--", color=line.get_color(), label=f"{arm} holdout")
    left.set(xlabel="epoch", ylabel="accuracy", title="Train (solid) and holdout (dashed) accuracy",
             ylim=(0.5, 1.005))
    left.grid(alpha=0.3)
    left.legend(fontsize=7, ncol=2)
    gaps = [[r["clean_train_accuracy"] - r["val_accuracy"] for r in last[arm]] for arm in ARMS]
    right.bar(list(ARMS), [100 * np.mean(g) for g in gaps], yerr=[100 * np.std(g) for g in gaps],
              capsize=3, color="tab:red")
    right.set(ylabel="train − holdout accuracy (points)", title="Final generalisation gap")
    right.tick_params(axis="x", labelrotation=20)
    right.grid(alpha=0.3, axis="y")
    report.figure(fig, "gap.png", "Accuracy per epoch and the final train − holdout gap per arm")
