"""Experiment 3: no normalization vs batch norm vs layer norm in a deeper MLP, trained with plain SGD.

Two measurements: the training loss step by step at one fixed learning rate, and a sweep over a
grid of learning rates (a short run each) giving the largest rate at which training is stable on
every seed. "Stable" means every step's loss is finite and the mean loss of the last ``WINDOW``
steps is below half the first step's loss (the model learned, it did not just survive).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from training.experiments.common import digits_config, one_thread, plot_loss_band, train_steps
from training.experiments.report import Report, pm
from training.local import MemorySource
from training.trainer import Trainer

__all__ = ["NORMS", "run"]

NORMS = ("none", "batch", "layer")
MODEL: dict[str, Any] = {"name": "mlp", "width": 128, "depth": 4}
OPTIMIZER = "sgd"
FIXED_LR = 0.1
LR_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
BATCH_SIZE = 32
WINDOW = 20


def stable(losses: list[float]) -> bool:
    """Every loss finite and the last ``WINDOW`` steps' mean below half the first step's loss."""
    return all(math.isfinite(v) for v in losses) and \
        float(np.mean(losses[-WINDOW:])) < 0.5 * losses[0]


def run(out_dir: Path, *, full: bool = False, smoke: bool = False, seeds: int = 1,
        command: str = "") -> Path:
    """Run both measurements and write ``out_dir/report.md``; returns its path."""
    count = seeds
    steps, sweep_steps = (8, 6) if smoke else (400, 150)
    grid = LR_GRID[::3] if smoke else LR_GRID
    report = Report("normalization", "Normalization: none vs batch norm vs layer norm", out_dir,
                    command=command, settings={
                        "data": f"digits (32x32), 80/20 split by seed, 1438 training images, "
                                f"batch {BATCH_SIZE}",
                        "model": "mlp 1024-[128]x4-10, ReLU, kaiming init; norm after each hidden Linear "
                                 "(BatchNorm1d / LayerNorm), none on the head",
                        "optimizer": f"plain SGD, constant rate; fixed-rate curves at lr {FIXED_LR}, "
                                     f"{steps} steps",
                        "lr sweep": f"{', '.join(f'{lr:g}' for lr in grid)}; {sweep_steps} steps each",
                        "stable": f"all losses finite and mean of the last {WINDOW} < half the first",
                        "seeds": count})
    with one_thread():
        sources: dict[int, MemorySource] = {}

        def losses(seed: int, norm: str, lr: float, n: int) -> list[float]:
            config = digits_config(seed, model={**MODEL, "norm": norm}, batch_size=BATCH_SIZE,
                                   optimizer={"name": OPTIMIZER, "lr": lr})
            if seed not in sources:
                sources[seed] = MemorySource(config.data, seed)
            trainer = Trainer(config, source=sources[seed], progress=False, report=False)
            return train_steps(trainer, n).losses

        curves = {norm: [losses(seed, norm, FIXED_LR, steps) for seed in range(count)] for norm in NORMS}
        sweep: list[dict[str, Any]] = []
        for norm in NORMS:
            for lr in grid:
                for seed in range(count):
                    run_losses = losses(seed, norm, lr, sweep_steps)
                    sweep.append({"norm": norm, "lr": lr, "seed": seed, "first_loss": run_losses[0],
                                  "final_loss": float(np.mean(run_losses[-WINDOW:])),
                                  "stable": stable(run_losses)})
    report.csv("losses.csv", [{"norm": norm, "seed": seed, "step": k + 1, "loss": v}
                              for norm in NORMS for seed, c in enumerate(curves[norm])
                              for k, v in enumerate(c)])
    report.csv("lr_sweep.csv", sweep)
    _fixed(report, curves, steps, count)
    _sweep(report, sweep, grid, count)
    return report.write()


def largest_stable(sweep: list[dict[str, Any]], norm: str, grid: tuple[float, ...]) -> float | None:
    """The largest rate of the grid that is stable on every seed (None: none is)."""
    ok = [lr for lr in grid if all(r["stable"] for r in sweep if r["norm"] == norm and r["lr"] == lr)]
    return max(ok) if ok else None


def _fixed(report: Report, curves: dict[str, list[list[float]]], steps: int, count: int) -> None:
    report.section(f"Loss vs steps at lr {FIXED_LR}")
    at = min(100, steps)
    report.table(
        ["norm", "loss at step 1", f"loss at step {at} (trailing {WINDOW})", f"final loss (last {WINDOW})"],
        [[norm, pm([c[0] for c in curves[norm]], 3),
          pm([float(np.mean(c[max(0, at - WINDOW):at])) for c in curves[norm]], 4),
          pm([float(np.mean(c[-WINDOW:])) for c in curves[norm]], 4)] for norm in NORMS])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for norm in NORMS:
        plot_loss_band(ax, curves[norm], WINDOW, norm, floor=1e-4)
    ax.set(yscale="log", xlabel="step", ylabel=f"training loss (trailing mean of {WINDOW})",
           title=f"Plain SGD at lr {FIXED_LR}, mean ± std over {count} seed(s)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    report.figure(fig, "loss_fixed_lr.png", f"Training loss vs step at lr {FIXED_LR}")


def _cell(rows: list[dict[str, Any]]) -> tuple[str, float]:
    """A sweep table cell (mean final loss, stable seeds) and the mean (NaN if any diverged)."""
    finals = [r["final_loss"] for r in rows]
    n_ok = sum(r["stable"] for r in rows)
    if not all(math.isfinite(v) for v in finals):
        return f"diverged ({n_ok}/{len(rows)})", math.nan
    mean = float(np.mean(finals))
    return f"{mean:.3g} ({n_ok}/{len(rows)})", mean


def _sweep(report: Report, sweep: list[dict[str, Any]], grid: tuple[float, ...], count: int) -> None:
    report.section("Largest stable learning rate")
    table, means = [], {}
    for norm in NORMS:
        cells = [_cell([r for r in sweep if r["norm"] == norm and r["lr"] == lr]) for lr in grid]
        means[norm] = [m for _, m in cells]
        best = largest_stable(sweep, norm, grid)
        table.append([norm, f"{best:g}" if best is not None else "none", *(c for c, _ in cells)])
    report.table(["norm", "largest stable lr", *(f"lr {lr:g}" for lr in grid)], table)
    report.text(f"Cells: mean final loss (last {WINDOW} steps) over seeds, and how many of the {count} "
                "seed(s) were stable; 'diverged' when a loss became non-finite on some seed.")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for norm in NORMS:
        (line,) = ax.plot(grid, means[norm], "o-", label=norm)
        best = largest_stable(sweep, norm, grid)
        if best is not None:
            ax.axvline(best, color=line.get_color(), linestyle=":", linewidth=1)
    ax.set(xscale="log", yscale="log", xlabel="learning rate (plain SGD)",
           ylabel=f"final loss (mean of last {WINDOW} steps)",
           title="Learning-rate sweep (gaps: diverged; dotted: largest stable rate)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    report.figure(fig, "lr_sweep.png", "Final training loss vs learning rate for each normalization")
