"""Initialisation: the variances formulas.md predicts, and why zeros and small normal fail."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.init import activation_variance, init_weights, list_inits


def deep_mlp(width: int = 256, depth: int = 10, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers)


def test_weight_variances_match_the_formulas() -> None:
    layer = nn.Linear(400, 100)
    init_weights(layer, "xavier", seed=1)
    assert float(layer.weight.detach().var()) == pytest.approx(2 / (400 + 100), rel=0.05)
    init_weights(layer, "kaiming", seed=1)
    assert float(layer.weight.detach().var()) == pytest.approx(2 / 400, rel=0.05)
    init_weights(layer, "small_normal", seed=1)
    assert float(layer.weight.detach().std()) == pytest.approx(0.01, rel=0.05)
    assert float(layer.bias.detach().abs().max()) == 0.0


def test_kaiming_holds_relu_activations_and_the_others_do_not() -> None:
    x = torch.randn(512, 256, generator=torch.Generator().manual_seed(0))
    final = {}
    for name in list_inits():
        model = init_weights(deep_mlp(), name, seed=0)
        variances = activation_variance(model, x)
        assert len(variances) == 10
        final[name] = variances[-1][1]
    assert 0.2 < final["kaiming"] < 5.0  # Var(w) = 2/n keeps the scale through ReLU
    assert final["xavier"] < final["kaiming"] / 50  # 1/n per layer halves through ReLU
    predicted = (256 * 1e-4 / 2) ** 10  # shrinks by n * Var(w) / 2 per ReLU layer
    assert predicted / 10 < final["small_normal"] < predicted * 10
    assert final["zeros"] == 0.0


def test_zero_init_never_breaks_symmetry() -> None:
    model = init_weights(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)), "zeros")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    for _ in range(5):
        opt.zero_grad()
        ((model(data) - data.sum(1, keepdim=True)) ** 2).mean().backward()
        opt.step()
    hidden = model[0].weight
    assert torch.allclose(hidden, hidden[0].expand_as(hidden))  # all hidden units identical


def test_unknown_init() -> None:
    with pytest.raises(ValueError, match="did you mean 'kaiming'"):
        init_weights(nn.Linear(2, 2), "kaimng")
