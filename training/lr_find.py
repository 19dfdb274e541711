"""The LR range test (Smith, 2017): raise the learning rate exponentially, watch the loss.

Each step uses ``lr_k = lo * (hi / lo) ** (k / (steps - 1))``; the loss is smoothed with a
bias-corrected exponential average (``beta = 0.98``) and the sweep stops once it exceeds 4x its
best. The suggestion is the rate at the lowest smoothed loss divided by 10 (Smith's rule of
thumb: the minimum itself is already at the edge of divergence). The steepest-slope rule was
tried first; on short, noisy sweeps it kept picking the first rate of the sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from training.devices import to_inputs
from training.trainer import Trainer

__all__ = ["LRFindResult", "lr_find", "suggest_lr"]


@dataclass(frozen=True)
class LRFindResult:
    """The sweep: learning rates, smoothed losses, and the suggested learning rate."""

    lrs: list[float]
    losses: list[float]
    suggestion: float


def lr_find(trainer: Trainer, *, lo: float = 1e-5, hi: float = 1.0, steps: int = 100,
            beta: float = 0.98, progress: bool = False) -> LRFindResult:
    """Sweep the trainer's optimizer from ``lo`` to ``hi`` over ``steps`` training batches.

    The model and optimizer are changed by the sweep: build a fresh trainer to train afterwards.

    Raises:
        ValueError: ``lo``/``hi``/``steps`` out of range.
    """
    if not 0 < lo < hi:
        raise ValueError(f"need 0 < lo < hi, got lo={lo}, hi={hi}")
    if steps < 5:
        raise ValueError(f"steps must be >= 5, got {steps}")
    torch.manual_seed(trainer.config.seed)
    model, optimizer = trainer.model, trainer.optimizer
    model.train()
    lrs: list[float] = []
    losses: list[float] = []
    average, best, epoch = 0.0, math.inf, 0
    batches = iter(trainer.source.train_batches(epoch))
    bar = tqdm(total=steps, desc="lr-find", unit="step", disable=not progress)
    for k in range(steps):
        try:
            x, y = next(batches)
        except StopIteration:  # short datasets: continue into the next epoch's order
            epoch += 1
            batches = iter(trainer.source.train_batches(epoch))
            x, y = next(batches)
        lr = lo * (hi / lo) ** (k / (steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = F.cross_entropy(model(to_inputs(x, trainer.device)), y.to(trainer.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        average = beta * average + (1 - beta) * value
        smoothed = average / (1 - beta ** (k + 1))
        lrs.append(lr)
        losses.append(smoothed)
        bar.update()
        best = min(best, smoothed)
        if not math.isfinite(smoothed) or smoothed > 4 * best:
            break
    bar.close()
    return LRFindResult(lrs, losses, suggest_lr(lrs, losses))


def suggest_lr(lrs: list[float], losses: list[float]) -> float:
    """The rate at the lowest finite smoothed loss, divided by 10 (never below the first rate)."""
    values = np.asarray(losses, dtype=float)
    if not np.isfinite(values).any():
        return lrs[0]
    best = int(np.argmin(np.where(np.isfinite(values), values, np.inf)))
    return max(lrs[0], lrs[best] / 10)
