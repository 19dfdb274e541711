"""Experiment 1: seven optimizers, same MLP, data and step budget, each at its LR-range-test rate.

For every optimizer the LR range test (``training.lr_find``) runs once on seed 0 and picks the
learning rate as the rate of the lowest smoothed loss divided by 10 (Smith's "minimum / 10" rule,
``lr_find``'s suggestion); then each seed trains a fresh
model for the same number of steps at that constant rate. Reported: training-loss curves, the final loss
(mean of the last ``WINDOW`` steps), holdout accuracy, and the steps until the trailing mean loss
first reaches ``TARGET_LOSS``; mean ± std over seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from training.experiments.common import (
    digits_config,
    one_thread,
    plot_loss_band,
    steps_to_target,
    train_steps,
)
from training.experiments.report import Report, mean_std, pm
from training.local import MemorySource
from training.lr_find import lr_find
from training.trainer import Trainer

__all__ = ["OPTIMIZERS", "run"]

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
MODEL: dict[str, Any] = {"name": "mlp", "width": 128, "depth": 2}
BATCH_SIZE = 32
TARGET_LOSS = 0.1
WINDOW = 20
LR_RANGE = (1e-5, 10.0)


def run(out_dir: Path, *, full: bool = False, smoke: bool = False, seeds: int = 1,
        command: str = "") -> Path:
    """Run the comparison and write ``out_dir/report.md``; returns its path."""
    count = seeds
    steps, find_steps = (12, 10) if smoke else (400, 200)
    report = Report("optimizers", "Optimizers: same model, data and budget, LR from the range test",
                    out_dir, command=command, settings={
                        "data": f"digits (32x32), 80/20 split by seed, all {1797 - 359} training images, "
                                f"batch {BATCH_SIZE}",
                        "model": "mlp 1024-128-128-10, ReLU, kaiming init, no norm/dropout",
                        "budget": f"{steps} steps at a constant learning rate (no schedule)",
                        "learning rate": f"LR range test on seed 0, {LR_RANGE[0]:g} to {LR_RANGE[1]:g} in "
                                         f"{find_steps} steps; lr = (rate of the lowest smoothed loss) / 10",
                        "seeds": count, "optimizer defaults": "training.optim registry (momentum 0.9, "
                        "RMSProp beta 0.99, Adam betas (0.9, 0.999), AdamW weight decay 0.01)"})
    with one_thread():
        sources: dict[int, MemorySource] = {}

        def trainer(seed: int, name: str, lr: float | None) -> Trainer:
            config = digits_config(seed, model=MODEL, batch_size=BATCH_SIZE,
                                   optimizer={"name": name, **({"lr": lr} if lr else {})})
            if seed not in sources:
                sources[seed] = MemorySource(config.data, seed)
            return Trainer(config, source=sources[seed], progress=False, report=False)

        sweeps = {name: lr_find(trainer(0, name, None), lo=LR_RANGE[0], hi=LR_RANGE[1],
                                steps=find_steps) for name in OPTIMIZERS}
        lrs = {name: sweep.suggestion for name, sweep in sweeps.items()}
        curves: dict[str, list[list[float]]] = {name: [] for name in OPTIMIZERS}
        rows: list[dict[str, Any]] = []
        for name in OPTIMIZERS:
            for seed in range(count):
                t = trainer(seed, name, lrs[name])
                log = train_steps(t, steps)
                metrics = t.evaluate()
                curves[name].append(log.losses)
                reached = steps_to_target(log.losses, TARGET_LOSS, WINDOW)
                rows.append({"optimizer": name, "seed": seed, "lr": lrs[name],
                             "final_loss": float(np.mean(log.losses[-WINDOW:])),
                             "val_loss": metrics["val_loss"], "val_accuracy": metrics["val_accuracy"],
                             "steps_to_target": reached if reached is not None else "",
                             "diverged": log.diverged})
    report.csv("summary.csv", rows)
    report.csv("losses.csv", [{"optimizer": name, "seed": seed, "step": k + 1, "loss": loss}
                              for name in OPTIMIZERS for seed, losses in enumerate(curves[name])
                              for k, loss in enumerate(losses)])
    report.csv("lr_find.csv", [{"optimizer": name, "lr": lr, "smoothed_loss": loss}
                               for name, sweep in sweeps.items()
                               for lr, loss in zip(sweep.lrs, sweep.losses, strict=True)])
    _results(report, rows, curves, steps, count)
    _lr_plot(report, sweeps)
    return report.write()


def _results(report: Report, rows: list[dict[str, Any]], curves: dict[str, list[list[float]]],
             steps: int, count: int) -> None:
    report.section("Results")
    table = []
    for name in OPTIMIZERS:
        mine = [r for r in rows if r["optimizer"] == name]
        reached = [float(r["steps_to_target"]) for r in mine if r["steps_to_target"] != ""]
        table.append([name, f"{mine[0]['lr']:.3g}",
                      pm([r["final_loss"] for r in mine], 4),
                      pm([r["val_accuracy"] for r in mine], 2, scale=100),
                      (pm(reached, 0) if reached else "not reached") + f" ({len(reached)}/{count})"])
    report.table(["optimizer", "lr used (lr_find: min / 10)",
                  f"final train loss (last {WINDOW} steps)",
                  "holdout accuracy %", f"steps to loss ≤ {TARGET_LOSS} (seeds reaching)"], table)
    by_loss = min(OPTIMIZERS, key=lambda n: mean_std([r["final_loss"] for r in rows
                                                       if r["optimizer"] == n])[0])
    by_acc = max(OPTIMIZERS, key=lambda n: mean_std([r["val_accuracy"] for r in rows
                                                      if r["optimizer"] == n])[0])
    report.text(f"Mean ± std over {count} seed(s). Lowest final training loss: **{by_loss}**; "
                f"highest holdout accuracy: **{by_acc}**. Steps to target use the trailing mean of "
                f"the last {WINDOW} step losses.")
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name in OPTIMIZERS:
        plot_loss_band(ax, curves[name], WINDOW, name, alpha=0.15, floor=1e-4)
    ax.axhline(TARGET_LOSS, color="black", linewidth=0.8, linestyle=":", label=f"target {TARGET_LOSS}")
    ax.set(yscale="log", xlabel="step", ylabel=f"training loss (trailing mean of {WINDOW})",
           title="Training loss, mean ± std over seeds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(ncol=2, fontsize=8)
    report.figure(fig, "loss_curves.png", "Training loss vs step for each optimizer (log scale)")


def _lr_plot(report: Report, sweeps: dict[str, Any]) -> None:
    report.section("LR range test")
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name, sweep in sweeps.items():
        (line,) = ax.plot(sweep.lrs, sweep.losses, label=name)
        k = int(np.argmin(np.abs(np.log(sweep.lrs) - np.log(sweep.suggestion))))
        ax.plot([sweep.lrs[k]], [sweep.losses[k]], "o", color=line.get_color())
    finite = [v for s in sweeps.values() for v in s.losses if np.isfinite(v)]
    if finite:
        ax.set_ylim(0, min(max(finite), 3 * max(s.losses[0] for s in sweeps.values())))
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss",
           title="LR range test (dot: the rate used = lowest loss / 10)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(ncol=2, fontsize=8)
    report.figure(fig, "lr_find.png",
                  "LR range test per optimizer: dot = the rate used (lr_find's suggestion)")
