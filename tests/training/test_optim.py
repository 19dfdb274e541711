"""Optimizers against NumPy implementations of the formulas in shared/formulas.md.

Each reference below is the formula written out in NumPy (float64), run for 50 steps on random
strongly convex quadratics f(x) = x^T A x / 2 - b^T x, and compared with what
``create_optimizer`` (torch.optim underneath) does on the same problem. Convergence is checked
on a quadratic and on the Rosenbrock function.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from training.optim import OPTIMIZERS, create_optimizer, list_optimizers, param_groups

STEPS = 50
Grad = Callable[[np.ndarray], np.ndarray]


def random_problem(seed: int, dim: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, b, x0): A symmetric with eigenvalues in [0.2, 2], b and x0 standard normal."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    a = q @ np.diag(rng.uniform(0.2, 2.0, dim)) @ q.T
    return (a + a.T) / 2, rng.standard_normal(dim), rng.standard_normal(dim)


def sgd(x: np.ndarray, grad: Grad, lr: float, **_: float) -> list[np.ndarray]:
    out = []
    for _ in range(STEPS):
        x = x - lr * grad(x)
        out.append(x)
    return out


def momentum(x: np.ndarray, grad: Grad, lr: float, momentum: float, **_: float) -> list[np.ndarray]:
    v, out = np.zeros_like(x), []
    for _ in range(STEPS):
        v = momentum * v + grad(x)
        x = x - lr * v
        out.append(x)
    return out


def adagrad(x: np.ndarray, grad: Grad, lr: float, eps: float, **_: float) -> list[np.ndarray]:
    c, out = np.zeros_like(x), []
    for _ in range(STEPS):
        g = grad(x)
        c = c + g * g
        x = x - lr * g / (np.sqrt(c) + eps)
        out.append(x)
    return out


def rmsprop(x: np.ndarray, grad: Grad, lr: float, beta: float, eps: float,
            **_: float) -> list[np.ndarray]:
    c, out = np.zeros_like(x), []
    for _ in range(STEPS):
        g = grad(x)
        c = beta * c + (1 - beta) * g * g
        x = x - lr * g / (np.sqrt(c) + eps)
        out.append(x)
    return out


def adam(x: np.ndarray, grad: Grad, lr: float, betas: tuple[float, float], eps: float,
         weight_decay: float = 0.0, decoupled: bool = False, **_: float) -> list[np.ndarray]:
    (b1, b2), m, v, out = betas, np.zeros_like(x), np.zeros_like(x), []
    for t in range(1, STEPS + 1):
        g = grad(x)
        if decoupled:
            x = x - lr * weight_decay * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        x = x - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(x)
    return out


def adamw(x: np.ndarray, grad: Grad, **kw: float) -> list[np.ndarray]:
    return adam(x, grad, decoupled=True, **kw)  # type: ignore[arg-type]


def nesterov_plain(x: np.ndarray, grad: Grad, lr: float, momentum: float,
                   **_: float) -> list[np.ndarray]:
    """formulas.md's Nesterov: the gradient is taken at the look-ahead point x + rho v."""
    v, out = np.zeros_like(x), []
    for _ in range(STEPS):
        v = momentum * v - lr * grad(x + momentum * v)
        x = x + v
        out.append(x)
    return out


def nesterov_as_torch(x: np.ndarray, grad: Grad, lr: float, momentum: float,
                      **kw: float) -> list[np.ndarray]:
    """formulas.md's Nesterov seen through torch's variable x~ = x + rho v."""
    out, v, prev = [], np.zeros_like(x), x
    for x_k in nesterov_plain(x, grad, lr, momentum, **kw):
        v, prev = x_k - prev, x_k
        out.append(x_k + momentum * v)
    return out


REFERENCE: dict[str, Callable[..., list[np.ndarray]]] = {
    "sgd": sgd, "momentum": momentum, "nesterov": nesterov_as_torch, "adagrad": adagrad,
    "rmsprop": rmsprop, "adam": adam, "adamw": adamw,
}


def hyper_parameters(name: str) -> dict[str, object]:
    hyper = dict(OPTIMIZERS[name].defaults)
    hyper["lr"] = {"rmsprop": 0.01, "adam": 0.05, "adamw": 0.05}.get(name, hyper["lr"])
    return hyper


def run_torch(name: str, x0: np.ndarray, loss: Callable[[torch.Tensor], torch.Tensor], steps: int,
              **hyper: object) -> list[np.ndarray]:
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = create_optimizer(name, [x], **hyper)
    got = []
    for _ in range(steps):
        opt.zero_grad()
        loss(x).backward()
        opt.step()
        got.append(x.detach().numpy().copy())
    return got


def test_every_optimizer_has_a_reference_row() -> None:
    assert set(list_optimizers()) == set(REFERENCE), "add the formula to REFERENCE"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", list_optimizers())
def test_trajectory_matches_the_numpy_formula(name: str, seed: int) -> None:
    a, b, x0 = random_problem(seed)
    hyper = hyper_parameters(name)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    got = run_torch(name, x0, lambda x: 0.5 * x @ ta @ x - tb @ x, STEPS, **hyper)
    want = REFERENCE[name](x0.copy(), lambda x: a @ x - b, **hyper)
    for step, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-10, err_msg=f"{name} step {step}")


@pytest.mark.parametrize("name", list_optimizers())
def test_converges_on_a_quadratic(name: str) -> None:
    a, b, x0 = random_problem(7)
    hyper = {**hyper_parameters(name), "weight_decay": 0.0}
    if name == "adagrad":
        hyper["lr"] = 0.5  # its steps shrink as 1 / sqrt(t): a larger start
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    steps = {"sgd": 300, "adagrad": 2000, "rmsprop": 2000}.get(name, 600)
    x = run_torch(name, x0, lambda x: 0.5 * x @ ta @ x - tb @ x, steps, **hyper)[-1]
    optimum = np.linalg.solve(a, b)
    assert np.linalg.norm(x - optimum) < 1e-2 * np.linalg.norm(x0 - optimum), name


# Rosenbrock: f(1, 1) = 0, starting at (-1.5, 2) where f = 12.5; the valley is long and curved.
ROSENBROCK = {"sgd": {"lr": 1e-3}, "momentum": {"lr": 2e-4}, "nesterov": {"lr": 2e-4},
              "adagrad": {"lr": 0.5}, "rmsprop": {"lr": 1e-2}, "adam": {"lr": 5e-2},
              "adamw": {"lr": 5e-2, "weight_decay": 0.0}}


@pytest.mark.parametrize("name", list_optimizers())
def test_converges_on_rosenbrock(name: str) -> None:
    def rosenbrock(x: torch.Tensor) -> torch.Tensor:
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2

    path = run_torch(name, np.array([-1.5, 2.0]), rosenbrock, 3000, **ROSENBROCK[name])
    values = [float(rosenbrock(torch.from_numpy(x))) for x in (path[1499], path[-1])]
    assert values[1] < 0.1 and values[1] < values[0], (name, values)  # from 12.5, still descending


def test_nesterov_change_of_variables_really_matters() -> None:
    """Without the x~ = x + rho v mapping the trajectories differ: the test above is not vacuous."""
    a, b, x0 = random_problem(0)
    hyper = hyper_parameters("nesterov")
    plain = nesterov_plain(x0.copy(), lambda x: a @ x - b, **hyper)  # type: ignore[arg-type]
    mapped = nesterov_as_torch(x0.copy(), lambda x: a @ x - b, **hyper)  # type: ignore[arg-type]
    assert not np.allclose(plain[3], mapped[3])
    assert np.allclose(plain[-1], mapped[-1], atol=1e-2)  # x~ - x = rho v shrinks to 0


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
