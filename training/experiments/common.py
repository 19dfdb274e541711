"""What the experiments share: run configs on digits, an in-memory source, a per-step loop.

The experiments train with :class:`training.trainer.Trainer` (it builds the model, optimizer,
schedule and data from a config). Experiments that need the loss of every step (optimizers,
normalization, initialization) drive the trainer's own model/optimizer/scheduler/source through
:func:`train_steps`; experiments that need per-epoch metrics call ``Trainer.train_epoch`` and
``Trainer.evaluate`` through :func:`fit_epochs`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from augsvc.plan import EpochPlan
from training.config import TrainConfig, load_config
from training.data import Batch, BatchSource, DataInfo
from training.devices import to_inputs
from training.regularization import penalty
from training.trainer import Trainer

__all__ = [
    "StepLog",
    "TensorSource",
    "digits_config",
    "fit_epochs",
    "one_thread",
    "steps_to_target",
    "trailing_mean",
    "train_steps",
]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread (tiny models: faster on a busy machine, and deterministic)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def digits_config(seed: int, *, model: Mapping[str, Any], optimizer: Mapping[str, Any],
                  epochs: int = 1, batch_size: int = 32, train_size: int | None = None,
                  augment: Any = None, schedule: str = "constant",
                  regularization: Mapping[str, Any] | None = None) -> TrainConfig:
    """A CPU run on the built-in digits (80/20 split by ``seed``), nothing written to disk."""
    return load_config({
        "seed": seed, "epochs": epochs, "device": "cpu", "tensorboard": False,
        "out_dir": "runs/experiments/_unused", "model": dict(model), "optimizer": dict(optimizer),
        "schedule": {"name": schedule},
        "regularization": dict(regularization or {}),
        "data": {"dataset": "digits", "source": "local" if augment else "memory",
                 "augment": augment, "batch_size": batch_size, "train_size": train_size},
    })


class TensorSource(BatchSource):
    """Training and holdout tensors kept in memory; the epoch plan of ``augsvc.datasets``.

    Args:
        x, y: the training inputs (uint8 images or int64 token ids) and labels.
        holdout_x, holdout_y: the validation inputs and labels.
        info: what the model needs to know (``info.train_size`` should be ``len(y)``).
        batch_size: samples per training batch.
        seed: shuffles the epochs.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, holdout_x: torch.Tensor,
                 holdout_y: torch.Tensor, *, info: DataInfo, batch_size: int, seed: int) -> None:
        self.x, self.y, self.holdout_x, self.holdout_y = x, y, holdout_x, holdout_y
        self.info, self.batch_size, self.seed = info, batch_size, seed

    def plan(self, epoch: int, *, shard: int = 0, num_shards: int = 1) -> EpochPlan:
        """The epoch plan over the training tensors (the same order a LocalSource would use)."""
        return EpochPlan(len(self.y), self.seed, epoch, self.batch_size, shard=shard,
                         num_shards=num_shards)

    def num_train_batches(self, *, shard: int = 0, num_shards: int = 1) -> int:
        return self.plan(0, shard=shard, num_shards=num_shards).num_batches

    def train_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                      num_shards: int = 1) -> Iterator[Batch]:
        for positions in self.plan(epoch, shard=shard, num_shards=num_shards).positions(start_batch):
            index = torch.as_tensor(np.array(positions))  # the plan arrays are read-only
            yield self.x[index], self.y[index]

    def holdout_batches(self) -> Iterator[Batch]:
        for k in range(0, len(self.holdout_y), 512):
            yield self.holdout_x[k:k + 512], self.holdout_y[k:k + 512]


@dataclass
class StepLog:
    """Per-step training losses (NaN after a divergence) and periodic holdout evaluations."""

    losses: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)  # step, val_loss, val_accuracy
    diverged: bool = False


def train_steps(trainer: Trainer, steps: int, *, eval_every: int | None = None) -> StepLog:
    """``steps`` optimizer steps of the trainer's model on its source, epoch after epoch.

    Each step is the trainer's: mean cross-entropy plus the config's penalty, backward, optimizer
    step, schedule step. A non-finite loss ends the run and the remaining losses are NaN.
    """
    log = StepLog()
    torch.manual_seed(trainer.config.seed)  # dropout masks
    model, optimizer, reg = trainer.model, trainer.optimizer, trainer.config.regularization
    model.train()
    epoch = 0
    while len(log.losses) < steps:
        for x, y in trainer.source.train_batches(epoch):
            loss = F.cross_entropy(model(to_inputs(x, trainer.device)), y.to(trainer.device))
            objective = loss + penalty(model, reg.penalty, reg.strength, beta=reg.beta)
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            trainer.scheduler.step()
            value = float(loss.detach())
            log.losses.append(value)
            if not math.isfinite(value):
                log.diverged = True
                log.losses += [math.nan] * (steps - len(log.losses))
                return log
            if eval_every and len(log.losses) % eval_every == 0:
                log.evals.append({"step": len(log.losses), **trainer.evaluate()})
                model.train()
            if len(log.losses) >= steps:
                break
        epoch += 1
    return log


def fit_epochs(trainer: Trainer, epochs: int, *, clean_train: Batch | None = None,
               evaluate_each: bool = True) -> list[dict[str, float]]:
    """``Trainer.train_epoch`` + ``Trainer.evaluate`` per epoch, without files or checkpoints.

    Args:
        clean_train: the training samples ``(x, y)`` without augmentation: also evaluated (eval
            mode) and reported as ``clean_train_loss`` / ``clean_train_accuracy``.
        evaluate_each: evaluate after every epoch (False: only after the last).
    """
    history: list[dict[str, float]] = []
    for epoch in range(epochs):
        row: dict[str, float] = {"epoch": epoch + 1, **trainer.train_epoch(epoch)}
        if evaluate_each or epoch == epochs - 1:
            row.update(trainer.evaluate())
            if clean_train is not None:
                x, y = clean_train
                clean = trainer.evaluate((x[k:k + 512], y[k:k + 512]) for k in range(0, len(y), 512))
                row.update(clean_train_loss=clean["val_loss"], clean_train_accuracy=clean["val_accuracy"])
        history.append(row)
    return history


def trailing_mean(values: list[float], window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each step (fewer at the start)."""
    x = np.asarray(values, dtype=float)
    total = np.concatenate([[0.0], np.cumsum(x)])
    ends = np.arange(1, len(x) + 1)
    starts = np.maximum(0, ends - window)
    return (total[ends] - total[starts]) / (ends - starts)


def plot_loss_band(ax: Any, curves: list[list[float]], window: int, label: str, *,
                   alpha: float = 0.2, floor: float | None = None, outline: bool = False,
                   **style: Any) -> Any:
    """Seeds' loss curves as the mean (a line) ± std (a band) of their trailing means.

    ``floor`` keeps the band's lower edge above it (log axes); ``outline`` also draws the band's
    edge in the line's colour. Returns the line.
    """
    smooth = np.stack([trailing_mean(c, window) for c in curves])
    mean, std = smooth.mean(0), smooth.std(0)
    x = np.arange(1, smooth.shape[1] + 1)
    (line,) = ax.plot(x, mean, label=label, **style)
    low = mean - std if floor is None else np.maximum(mean - std, floor)
    colour = {"color" if outline else "facecolor": line.get_color()}
    ax.fill_between(x, low, mean + std, alpha=alpha, **colour)
    return line


def steps_to_target(losses: list[float], target: float, window: int) -> int | None:
    """The first step (1-based) whose trailing mean loss is <= ``target``; None if never."""
    below = np.flatnonzero(trailing_mean(losses, window) <= target)
    return int(below[0]) + 1 if below.size else None
