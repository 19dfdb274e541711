"""Explicit regularisation over weights only (L2, L1, elastic net) and early stopping.

``L = (1/N) sum_i L_i + lambda R(W)`` with ``R = ||W||_2^2`` (l2), ``||W||_1`` (l1) or
``beta ||W||_2^2 + ||W||_1`` (elastic_net); biases and normalisation parameters are never
penalised (the same split as the optimizers' decay groups).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from training.optim import param_groups

__all__ = ["PENALTIES", "EarlyStopping", "penalty"]

PENALTIES = ("none", "l2", "l1", "elastic_net")


def penalty(model: nn.Module, kind: str, lam: float, *, beta: float = 1.0) -> torch.Tensor:
    """``lam * R(W)`` over the model's weights (a scalar tensor that backpropagates).

    Raises:
        ValueError: unknown kind or a negative coefficient.
    """
    if kind not in PENALTIES:
        raise ValueError(f"unknown penalty {kind!r}; known: {', '.join(PENALTIES)}")
    if lam < 0 or beta < 0:
        raise ValueError(f"penalty coefficients must be >= 0, got lam={lam}, beta={beta}")
    weights = param_groups(model, 0.0)[0]["params"]
    zero = torch.zeros((), device=weights[0].device if weights else None)
    if kind == "none" or lam == 0 or not weights:
        return zero
    l2 = sum((w.pow(2).sum() for w in weights), zero)
    l1 = sum((w.abs().sum() for w in weights), zero)
    value = {"l2": l2, "l1": l1, "elastic_net": beta * l2 + l1}[kind]
    return lam * value


@dataclass
class EarlyStopping:
    """Stop when a validation metric has not improved by ``min_delta`` for ``patience`` epochs.

    Attributes:
        mode: "min" for losses, "max" for accuracies.
        best: the best value seen; ``best_epoch`` when it was seen.
    """

    patience: int = 5
    mode: str = "min"
    min_delta: float = 0.0
    best: float = field(init=False)
    best_epoch: int = field(init=False, default=-1)
    epochs_without_improvement: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")
        if self.patience < 0 or self.min_delta < 0:
            raise ValueError("patience and min_delta must be >= 0")
        self.best = math.inf if self.mode == "min" else -math.inf

    def step(self, value: float, epoch: int) -> bool:
        """Record the metric of ``epoch``; True when training should stop: after exactly
        ``patience`` epochs in a row without improvement by ``min_delta`` (0 and 1 both stop at
        the first such epoch, as Keras and Lightning do)."""
        better = value < self.best - self.min_delta if self.mode == "min" \
            else value > self.best + self.min_delta
        if better:
            self.best, self.best_epoch, self.epochs_without_improvement = value, epoch, 0
        else:
            self.epochs_without_improvement += 1
        return self.epochs_without_improvement >= max(self.patience, 1)
