"""Optimizers against the reference formulas of shared/formulas.md, written out by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from training.optim import OPTIMIZERS, create_optimizer, list_optimizers, param_groups

torch.manual_seed(0)
A = torch.tensor([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]], dtype=torch.float64)
B = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
X0 = torch.tensor([0.5, 1.5, -1.0], dtype=torch.float64)
STEPS = 25


def grad(x: torch.Tensor) -> torch.Tensor:
    """Gradient of f(x) = x^T A x / 2 - b^T x."""
    return A @ x - B


def sgd(x: torch.Tensor, lr: float, **_: float) -> list[torch.Tensor]:
    out = []
    for _ in range(STEPS):
        x = x - lr * grad(x)
        out.append(x)
    return out


def momentum(x: torch.Tensor, lr: float, momentum: float, **_: float) -> list[torch.Tensor]:
    v, out = torch.zeros_like(x), []
    for _ in range(STEPS):
        v = momentum * v + grad(x)
        x = x - lr * v
        out.append(x)
    return out


def adagrad(x: torch.Tensor, lr: float, eps: float, **_: float) -> list[torch.Tensor]:
    c, out = torch.zeros_like(x), []
    for _ in range(STEPS):
        g = grad(x)
        c = c + g * g
        x = x - lr * g / (c.sqrt() + eps)
        out.append(x)
    return out


def rmsprop(x: torch.Tensor, lr: float, beta: float, eps: float, **_: float) -> list[torch.Tensor]:
    c, out = torch.zeros_like(x), []
    for _ in range(STEPS):
        g = grad(x)
        c = beta * c + (1 - beta) * g * g
        x = x - lr * g / (c.sqrt() + eps)
        out.append(x)
    return out


def adam(x: torch.Tensor, lr: float, betas: tuple[float, float], eps: float,
         weight_decay: float = 0.0, decoupled: bool = False, **_: float) -> list[torch.Tensor]:
    (b1, b2), m, v, out = betas, torch.zeros_like(x), torch.zeros_like(x), []
    for t in range(1, STEPS + 1):
        g = grad(x)
        if decoupled:
            x = x - lr * weight_decay * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        x = x - lr * m_hat / (v_hat.sqrt() + eps)
        out.append(x)
    return out


def adamw(x: torch.Tensor, **kw: float) -> list[torch.Tensor]:
    return adam(x, decoupled=True, **kw)  # type: ignore[arg-type]


def nesterov_as_torch(x: torch.Tensor, lr: float, momentum: float, **_: float) -> list[torch.Tensor]:
    """formulas.md's Nesterov, mapped to torch's variable x~ = x + rho v."""
    v, out = torch.zeros_like(x), []
    for _ in range(STEPS):
        v = momentum * v - lr * grad(x + momentum * v)
        x = x + v
        out.append(x + momentum * v)
    return out


REFERENCE: dict[str, Callable[..., list[torch.Tensor]]] = {
    "sgd": sgd, "momentum": momentum, "nesterov": nesterov_as_torch, "adagrad": adagrad,
    "rmsprop": rmsprop, "adam": adam, "adamw": adamw,
}


def test_every_optimizer_has_a_reference_row() -> None:
    assert set(list_optimizers()) == set(REFERENCE), "add the formula to REFERENCE"


@pytest.mark.parametrize("name", list_optimizers())
def test_trajectory_matches_the_formula(name: str) -> None:
    hyper = dict(OPTIMIZERS[name].defaults)
    hyper["lr"] = {"rmsprop": 0.01, "adam": 0.05, "adamw": 0.05}.get(name, hyper["lr"])
    x = X0.clone().requires_grad_(True)
    opt = create_optimizer(name, [x], **hyper)
    got = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = 0.5 * x @ A @ x - B @ x
        loss.backward()
        opt.step()
        got.append(x.detach().clone())
    want = REFERENCE[name](X0.clone(), **hyper)
    for step, (a, b) in enumerate(zip(got, want, strict=True)):
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-8), (name, step, a, b)
    assert 0.5 * got[-1] @ A @ got[-1] - B @ got[-1] < 0.5 * X0 @ A @ X0 - B @ X0


def test_nesterov_change_of_variables_really_matters() -> None:
    """Without the x~ = x + rho v mapping the trajectories differ: the test above is not vacuous."""
    hyper = dict(OPTIMIZERS["nesterov"].defaults)
    v, x, plain = torch.zeros(3, dtype=torch.float64), X0.clone(), []
    for _ in range(STEPS):
        v = hyper["momentum"] * v - hyper["lr"] * grad(x + hyper["momentum"] * v)
        x = x + v
        plain.append(x)
    mapped = nesterov_as_torch(X0.clone(), **hyper)
    assert not torch.allclose(plain[3], mapped[3])


def test_decay_groups_skip_biases_and_norms() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(5),
                          nn.LayerNorm(5), nn.Linear(5, 2))
    model(torch.zeros(1, 3, 8, 8))
    decay, no_decay = param_groups(model, 0.1)
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[3].weight),
                                                id(model[5].weight)}
    assert len(no_decay["params"]) == 3 + 2 + 2  # three biases, BatchNorm and LayerNorm affine
    opt = create_optimizer("adamw", model, weight_decay=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


def test_adamw_decays_weights_not_biases() -> None:
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.fill_(1.0)
    opt = create_optimizer("adamw", layer, lr=0.1, weight_decay=0.5)
    layer.weight.grad = torch.zeros_like(layer.weight)
    layer.bias.grad = torch.zeros_like(layer.bias)
    opt.step()
    assert torch.allclose(layer.weight, torch.full_like(layer.weight, 1 - 0.1 * 0.5))
    assert torch.allclose(layer.bias, torch.ones_like(layer.bias))


def test_bad_names_and_hyper_parameters() -> None:
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="did you mean 'rmsprop'"):
        create_optimizer("rmsprob", [x])
    with pytest.raises(ValueError, match="no hyper-parameter"):
        create_optimizer("sgd", [x], betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="Invalid learning rate"):
        create_optimizer("adam", [x], lr=-1.0)


def test_cpu_path_is_foreach_for_the_sgd_family_and_the_loop_for_the_rest() -> None:
    # The faster torch path on CPU per optimizer (benchmarks/optimizer_step.py); an explicit
    # choice by the caller wins.
    model = nn.Linear(3, 2)
    paths = {name: create_optimizer(name, model).defaults["foreach"] for name in list_optimizers()}
    assert paths == {"sgd": True, "momentum": True, "nesterov": True, "adagrad": None,
                     "rmsprop": None, "adam": None, "adamw": None}
    assert create_optimizer("momentum", model, foreach=False).defaults["foreach"] is False
