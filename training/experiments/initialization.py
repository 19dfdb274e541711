"""Experiment 4: zeros vs N(0, 0.01²) vs Xavier vs Kaiming in a deep ReLU MLP.

Two measurements per initialisation: the variance of every Linear layer's output at
initialisation on holdout images (``training.init.activation_variance``), and training curves
with one fixed recipe (SGD with momentum, constant rate). The theory (``formulas.md``): Kaiming
keeps ``Var`` constant through ReLU layers, Xavier halves it per layer, small normal shrinks it
by ``n · 10⁻⁴ / 2`` per layer, and all-zero weights give exactly zero and never break symmetry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from training.devices import to_inputs
from training.experiments.common import digits_config, one_thread, plot_loss_band, train_steps
from training.experiments.report import Report, pm
from training.init import activation_variance
from training.local import MemorySource
from training.trainer import Trainer

__all__ = ["INITS", "run"]

INITS = ("zeros", "small_normal", "xavier", "kaiming")
MODEL: dict[str, Any] = {"name": "mlp", "width": 128, "depth": 6}
OPTIMIZER: dict[str, Any] = {"name": "momentum", "lr": 0.01}
BATCH_SIZE = 32
PROBE = 256  # holdout images the variances are measured on
WINDOW = 20


def run(out_dir: Path, *, full: bool = False, smoke: bool = False, seeds: int = 1,
        command: str = "") -> Path:
    """Measure variances, train, and write ``out_dir/report.md``; returns its path."""
    count = seeds
    steps, every = (10, 5) if smoke else (450, 45)
    report = Report("initialization", "Initialization: zeros vs small normal vs Xavier vs Kaiming",
                    out_dir, command=command, settings={
                        "data": f"digits (32x32), 80/20 split by seed, 1438 training images, "
                                f"batch {BATCH_SIZE}",
                        "model": "mlp 1024-[128]x6-10, ReLU, no norm/dropout; biases zero",
                        "variance probe": f"the first {PROBE} holdout images (inputs scaled to [-1, 1])",
                        "training": f"SGD momentum 0.9, lr {OPTIMIZER['lr']}, {steps} steps, holdout "
                                    f"accuracy every {every} steps (about one epoch)",
                        "seeds": count})
    variances: dict[str, list[list[float]]] = {name: [] for name in INITS}
    logs: dict[str, list[Any]] = {name: [] for name in INITS}
    layers: list[str] = []
    with one_thread():
        sources: dict[int, MemorySource] = {}
        for name in INITS:
            for seed in range(count):
                config = digits_config(seed, model={**MODEL, "init": name}, optimizer=OPTIMIZER,
                                       batch_size=BATCH_SIZE)
                if seed not in sources:
                    sources[seed] = MemorySource(config.data, seed)
                trainer = Trainer(config, source=sources[seed], progress=False, report=False)
                probe = torch.cat([x for x, _ in sources[seed].holdout_batches()])[:PROBE]
                trainer.model.eval()
                measured = activation_variance(trainer.model, to_inputs(probe, trainer.device))  # type: ignore[arg-type]
                layers = [layer for layer, _ in measured]
                variances[name].append([v for _, v in measured])
                logs[name].append(train_steps(trainer, steps, eval_every=every))
    report.csv("activation_variance.csv", [
        {"init": name, "seed": seed, "layer": k + 1, "name": layers[k], "variance": v}
        for name in INITS for seed, row in enumerate(variances[name]) for k, v in enumerate(row)])
    report.csv("losses.csv", [{"init": name, "seed": seed, "step": k + 1, "loss": v}
                              for name in INITS for seed, log in enumerate(logs[name])
                              for k, v in enumerate(log.losses)])
    report.csv("holdout.csv", [{"init": name, "seed": seed, **e} for name in INITS
                               for seed, log in enumerate(logs[name]) for e in log.evals])
    _variance(report, variances, layers)
    _training(report, logs, steps)
    return report.write()


def _sci(values: list[float]) -> str:
    return f"{np.mean(values):.3g} ± {np.std(values):.2g}"


def _variance(report: Report, variances: dict[str, list[list[float]]], layers: list[str]) -> None:
    report.section("Activation variance by layer at initialisation")
    picks = [0, len(layers) // 2, len(layers) - 1]
    report.table(["init", *(f"layer {k + 1} ({layers[k].split(':')[0]})" for k in picks)],
                 [[name, *(_sci([row[k] for row in variances[name]]) for k in picks)] for name in INITS])
    zeros_exact = all(v == 0.0 for row in variances["zeros"] for v in row)
    ratio = np.mean([r[-1] for r in variances["small_normal"]]) \
        / np.mean([r[-1] for r in variances["kaiming"]])
    report.text(f"Variance of each Linear layer's output (pre-activation), mean ± std over seeds. "
                f"Zeros: {'exactly 0 at every layer' if zeros_exact else 'NOT exactly zero'}. "
                f"Small normal at the last layer: {ratio:.1e} × Kaiming's.")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.arange(1, len(layers) + 1)
    for name in INITS:
        if name == "zeros":
            continue
        ax.plot(x, np.mean(variances[name], axis=0), "o-", label=name)
    ax.text(0.02, 0.04, "zeros: exactly 0 at every layer (not drawable on a log axis)",
            transform=ax.transAxes, fontsize=9)
    ax.set(yscale="log", xlabel="Linear layer (7 = head)", ylabel="variance of the layer's output",
           title="Activation variance at initialisation")
    ax.set_xticks(x)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    report.figure(fig, "activation_variance.png", "Variance of each layer's output at initialisation")


def _training(report: Report, logs: dict[str, list[Any]], steps: int) -> None:
    report.section("Training")
    report.table(["init", "first loss", f"final train loss (last {WINDOW} steps)", "holdout accuracy %"],
                 [[name, pm([log.losses[0] for log in logs[name]], 3),
                   pm([float(np.mean(log.losses[-WINDOW:])) for log in logs[name]], 4),
                   pm([log.evals[-1]["val_accuracy"] for log in logs[name]], 2, scale=100)]
                  for name in INITS])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in INITS:
        # zeros and small normal overlap: a dashed, wider line keeps both visible
        style: dict[str, Any] = {"linestyle": "--", "linewidth": 2.5} if name == "zeros" else {}
        plot_loss_band(left, [log.losses for log in logs[name]], WINDOW, name, outline=True, **style)
        at = [e["step"] for e in logs[name][0].evals]
        acc = np.array([[e["val_accuracy"] for e in log.evals] for log in logs[name]])
        right.errorbar(at, acc.mean(0), yerr=acc.std(0), marker="o", capsize=2, label=name, **style)
    left.set(yscale="log", xlabel="step", ylabel=f"training loss (trailing mean of {WINDOW})",
             title="Training loss")
    right.set(xlabel="step", ylabel="holdout accuracy", title="Holdout accuracy", ylim=(0, 1))
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    report.figure(fig, "training_curves.png", "Training loss and holdout accuracy for each initialisation")
