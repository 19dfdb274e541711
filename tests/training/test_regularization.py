"""Penalties over weights only, checked by hand; early stopping's patience."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.regularization import EarlyStopping, penalty


def model() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0]]))
        net[2].weight.copy_(torch.tensor([[-1.0, 1.0, 2.0]]))
        for p in (net[0].bias, net[1].weight, net[1].bias, net[2].bias):
            p.fill_(10.0)  # must not count
    return net


def value(net: nn.Module, kind: str, lam: float, **kw: float) -> float:
    return penalty(net, kind, lam, **kw).detach().item()


def test_penalties_follow_the_formulas() -> None:
    net = model()
    l2 = 1 + 4 + 0.25 + 9 + 1 + 1 + 4
    l1 = 1 + 2 + 0.5 + 3 + 1 + 1 + 2
    assert value(net, "l2", 0.1) == pytest.approx(0.1 * l2)
    assert value(net, "l1", 0.1) == pytest.approx(0.1 * l1)
    assert value(net, "elastic_net", 0.1, beta=0.5) == pytest.approx(0.1 * (0.5 * l2 + l1))
    assert value(net, "none", 0.1) == 0.0


def test_penalty_gradient_reaches_weights_only() -> None:
    net = model()
    penalty(net, "l2", 0.5).backward()
    assert torch.allclose(net[0].weight.grad, 0.5 * 2 * net[0].weight.detach())
    assert net[0].bias.grad is None and net[1].weight.grad is None


def test_bad_penalties() -> None:
    with pytest.raises(ValueError, match="unknown penalty"):
        penalty(model(), "l3", 0.1)
    with pytest.raises(ValueError, match=">= 0"):
        penalty(model(), "l2", -1.0)


def test_early_stopping_waits_for_patience() -> None:
    stopper = EarlyStopping(patience=2, mode="min", min_delta=0.01)
    losses = [1.0, 0.8, 0.795, 0.81, 0.79, 0.9]
    decisions = [stopper.step(v, e) for e, v in enumerate(losses)]
    assert decisions == [False, False, False, True, True, True]  # stops after exactly 2
    assert stopper.best == 0.8 and stopper.best_epoch == 1
    accuracy = EarlyStopping(patience=0, mode="max")
    assert [accuracy.step(v, e) for e, v in enumerate([0.5, 0.6, 0.6])] == [False, False, True]
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
