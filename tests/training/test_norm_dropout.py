"""Batch norm, layer norm and inverted dropout against the formulas of formulas.md, in NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

EPS = 1e-5
MOMENTUM = 0.1  # PyTorch's momentum is the weight a of the new batch statistic


def batch_norm_reference(x: np.ndarray, axes: tuple[int, ...], gamma: np.ndarray, beta: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(y, mu, biased var, unbiased var) of batch norm over ``axes``; channels on axis 1."""
    m = int(np.prod([x.shape[a] for a in axes]))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)  # biased: divides by m
    shape = [1] * x.ndim
    shape[1] = -1
    y = gamma.reshape(shape) * (x - mu) / np.sqrt(var + EPS) + beta.reshape(shape)
    return y, mu.ravel(), var.ravel(), var.ravel() * m / (m - 1)


Norm = nn.modules.batchnorm._BatchNorm | nn.LayerNorm | nn.GroupNorm


def affine(layer: Norm, channels: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random gamma, beta (the defaults 1 and 0 would hide mistakes), written into ``layer``."""
    gamma, beta = rng.uniform(0.5, 2.0, channels), rng.normal(0.0, 1.0, channels)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(gamma.reshape(layer.weight.shape)))
        layer.bias.copy_(torch.from_numpy(beta.reshape(layer.bias.shape)))
    return gamma, beta


@pytest.mark.parametrize(("layer_type", "shape", "axes"), [
    (nn.BatchNorm1d, (16, 5), (0,)),
    (nn.BatchNorm1d, (8, 5, 7), (0, 2)),  # (B, C, L): statistics over batch and length
    (nn.BatchNorm2d, (6, 4, 5, 3), (0, 2, 3)),  # (B, C, H, W): over batch and space
])
def test_batch_norm_follows_the_formula(layer_type: type[nn.modules.batchnorm._BatchNorm],
                                        shape: tuple[int, ...], axes: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    channels = shape[1]
    layer = layer_type(channels, eps=EPS, momentum=MOMENTUM).double()
    gamma, beta = affine(layer, channels, rng)
    assert layer.running_mean is not None and layer.running_var is not None
    assert layer.num_batches_tracked is not None
    run_mean, run_var = np.zeros(channels), np.ones(channels)  # PyTorch's initial running stats
    for step in range(3):  # train mode: normalise with the batch's own (biased) statistics
        x = rng.normal(3.0, 2.0, shape) * rng.uniform(0.5, 4.0, (1, channels) + (1,) * (len(shape) - 2))
        y, mu, var, unbiased = batch_norm_reference(x, axes, gamma, beta)
        got = layer.train()(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(got, y, rtol=1e-10, atol=1e-10)
        run_mean = (1 - MOMENTUM) * run_mean + MOMENTUM * mu
        previous, run_var = run_var, (1 - MOMENTUM) * run_var + MOMENTUM * unbiased  # unbiased stored
        np.testing.assert_allclose(layer.running_mean.numpy(), run_mean, rtol=1e-12)
        np.testing.assert_allclose(layer.running_var.numpy(), run_var, rtol=1e-12)
        assert int(layer.num_batches_tracked) == step + 1
        # Not vacuous: storing the biased variance, or normalising with the unbiased one, would fail.
        assert not np.allclose((1 - MOMENTUM) * previous + MOMENTUM * var, run_var, rtol=1e-6)
        view = [1] * len(shape)
        view[1] = -1
        with_unbiased = (gamma.reshape(view) * (x - mu.reshape(view)) / np.sqrt(unbiased.reshape(view) + EPS)
                         + beta.reshape(view))
        assert not np.allclose(got, with_unbiased, rtol=1e-6, atol=1e-6)
    # eval mode: the running statistics, per sample, and no further update
    x = rng.normal(0.0, 1.0, shape)
    want = (gamma.reshape(view) * (x - run_mean.reshape(view)) / np.sqrt(run_var.reshape(view) + EPS)
            + beta.reshape(view))
    got = layer.eval()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.running_mean.numpy(), run_mean, rtol=1e-12)
    single = layer(torch.from_numpy(x[:1])).detach().numpy()  # a sample does not see its batch
    np.testing.assert_allclose(single, want[:1], rtol=1e-10, atol=1e-10)


def test_batch_norm_train_output_is_normalised_per_channel() -> None:
    """With gamma = 1, beta = 0 each channel comes out with mean 0 and biased variance 1 - eps-ish."""
    x = torch.from_numpy(np.random.default_rng(1).normal(5.0, 3.0, (64, 3, 4, 4)))
    y = nn.BatchNorm2d(3, eps=EPS).double().train()(x).detach().numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    var = x.numpy().var(axis=(0, 2, 3))
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), var / (var + EPS), rtol=1e-10)


def layer_norm_reference(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``(a - mu) / sqrt(sigma^2 + eps)`` with mu, sigma over the features ``axes`` of each sample."""
    mu = a.mean(axis=axes, keepdims=True)
    sigma2 = ((a - mu) ** 2).mean(axis=axes, keepdims=True)  # (1/H) sum (a_i - mu)^2
    return (a - mu) / np.sqrt(sigma2 + EPS)


def test_layer_norm_follows_the_formula_in_train_and_eval() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 1.0, (7, 3, 10)) * rng.uniform(0.1, 10.0, (7, 3, 1)) + rng.normal(0, 5, (7, 3, 1))
    layer = nn.LayerNorm(10, eps=EPS).double()
    gamma, beta = affine(layer, 10, rng)
    want = gamma * layer_norm_reference(a, (-1,)) + beta
    for mode in (True, False):  # no running statistics: the same in both modes
        got = layer.train(mode)(torch.from_numpy(a)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    one = layer(torch.from_numpy(a[:1, :1])).detach().numpy()  # each sample on its own
    np.testing.assert_allclose(one, want[:1, :1], rtol=1e-10, atol=1e-10)


def test_group_norm_with_one_group_is_layer_norm_over_channels_and_space() -> None:
    """The cnn's norm="layer": statistics over (C, H, W) of each sample, per-channel affine."""
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 3.0, (4, 6, 5, 5)) * rng.uniform(0.5, 3.0, (4, 1, 1, 1))
    layer = nn.GroupNorm(1, 6, eps=EPS).double()
    gamma, beta = affine(layer, 6, rng)
    want = gamma.reshape(1, -1, 1, 1) * layer_norm_reference(x, (1, 2, 3)) + beta.reshape(1, -1, 1, 1)
    got = layer(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_inverted_dropout(p: float) -> None:
    n = 200_000
    x_np = np.random.default_rng(4).uniform(0.5, 1.5, n)  # nonzero: a zero output means dropped
    x = torch.from_numpy(x_np)
    layer = nn.Dropout(p)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # nn.Dropout draws from the global generator
        y = layer.train()(x).numpy()
        again = layer(x).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], x_np[kept] / (1 - p), rtol=1e-12)  # scaled by 1/(1-p)
    # The kept fraction is Binomial(n, 1-p) / n: five standard deviations.
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    # The mean is preserved: Var(y_i) = x_i^2 p / (1 - p), so the mean's sd is sqrt(sum x^2 p/(1-p))/n.
    tolerance = 5 * np.sqrt((x_np**2).sum() * p / (1 - p)) / n
    assert abs(y.mean() - x_np.mean()) < tolerance
    assert p * x_np.mean() > 10 * tolerance  # without the 1/(1-p) the check above would fail
    assert not np.array_equal(y, again)  # a fresh mask per call
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        assert np.array_equal(layer(x).numpy(), y)  # seeded: the same mask
    assert torch.equal(layer.eval()(x), x)  # identity at inference


def test_dropout_zero_is_the_identity_in_training() -> None:
    x = torch.randn(100, generator=torch.Generator().manual_seed(5))
    assert torch.equal(nn.Dropout(0.0).train()(x), x)
