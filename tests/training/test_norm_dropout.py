"""Normalization and dropout in the project's models, against the formulas of formulas.md in NumPy.

Every model is built the way the trainer builds it (a run config's ``model`` section, then
``create_model``). Forward hooks capture the actual input and output of each norm and dropout
layer, and the NumPy references below are applied to those intermediate activations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from training.config import load_config
from training.models import NORMS, create_model

EPS = 1e-5
MOMENTUM = 0.1  # PyTorch's momentum is the weight a of the new batch statistic


def batch_norm_reference(x: np.ndarray, axes: tuple[int, ...], gamma: np.ndarray, beta: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(y, mu, biased var, unbiased var) of batch norm over ``axes``; channels on axis 1."""
    m = int(np.prod([x.shape[a] for a in axes]))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)  # biased: divides by m
    y = gamma.reshape(channel_view(x)) * (x - mu) / np.sqrt(var + EPS) + beta.reshape(channel_view(x))
    return y, mu.ravel(), var.ravel(), var.ravel() * m / (m - 1)


def layer_norm_reference(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``(a - mu) / sqrt(sigma^2 + eps)`` with mu, sigma over the features ``axes`` of each sample."""
    mu = a.mean(axis=axes, keepdims=True)
    sigma2 = ((a - mu) ** 2).mean(axis=axes, keepdims=True)  # (1/H) sum (a_i - mu)^2
    return (a - mu) / np.sqrt(sigma2 + EPS)


def channel_view(x: np.ndarray) -> list[int]:
    """Shape that broadcasts a per-channel vector over ``x`` (channels on axis 1)."""
    shape = [1] * x.ndim
    shape[1] = -1
    return shape


Norm = nn.modules.batchnorm._BatchNorm | nn.LayerNorm | nn.GroupNorm


def affine(layer: Norm, channels: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random gamma, beta (the defaults 1 and 0 would hide mistakes), written into ``layer``."""
    gamma, beta = rng.uniform(0.5, 2.0, channels), rng.normal(0.0, 1.0, channels)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(gamma.reshape(layer.weight.shape)))
        layer.bias.copy_(torch.from_numpy(beta.reshape(layer.bias.shape)))
    return gamma, beta


# ---- the models under test ---------------------------------------------------------------------

IMAGE: dict[str, Any] = {"in_channels": 3, "image_size": 8, "num_classes": 5}
TEXT: dict[str, Any] = {"vocab_size": 40, "num_classes": 5}

# case -> (registry name, model options of the run config); small but with two norm/conv stages.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "mlp": ("mlp", {"width": 32, "depth": 2}),
    "cnn": ("cnn", {"width": 4, "depth": 2}),
    "text_bag": ("text_cnn", {"embed_dim": 8, "width": 16, "mode": "bag"}),
    "text_cnn": ("text_cnn", {"embed_dim": 8, "width": 8, "kernel_sizes": [2, 3], "mode": "cnn"}),
}

# Norm layer type each case must use for each choice.
NORM_TYPES: dict[str, dict[str, type[nn.Module]]] = {
    "mlp": {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm},
    "cnn": {"batch": nn.BatchNorm2d, "layer": nn.GroupNorm},
    "text_bag": {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm},
    "text_cnn": {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm},
}

# Axes the statistics run over: batch norm across the batch (and space), layer norm per sample.
BATCH_AXES = {"mlp": (0,), "cnn": (0, 2, 3), "text_bag": (0,), "text_cnn": (0,)}
LAYER_AXES = {"mlp": (1,), "cnn": (1, 2, 3), "text_bag": (1,), "text_cnn": (1,)}


def build(case: str, **overrides: Any) -> nn.Module:
    """The case's model as the trainer builds it from a run config (kaiming init, run seed)."""
    name, options = CASES[case]
    config = load_config({"seed": 3, "model": {"name": name, **options, **overrides}})
    dims = TEXT if name == "text_cnn" else IMAGE
    return create_model(config.model.name, **dims, **config.model.options, init=config.model.init,
                        seed=config.seed)


def inputs(case: str, batch: int, seed: int) -> torch.Tensor:
    """Float64 images (not centred: the norms have something to remove) or right-padded token ids."""
    g = torch.Generator().manual_seed(seed)
    if CASES[case][0] != "text_cnn":
        size = (batch, IMAGE["in_channels"], IMAGE["image_size"], IMAGE["image_size"])
        return torch.randn(size, generator=g, dtype=torch.float64) * 2.0 + 1.0
    length = 9
    ids = torch.randint(1, TEXT["vocab_size"], (batch, length), generator=g)
    for r in range(batch):
        ids[r, max(1, length - r % length):] = 0
    return ids


def single_precision(x: torch.Tensor) -> torch.Tensor:
    """Images as float32 (the models' own precision); token ids unchanged."""
    return x.float() if x.is_floating_point() else x


def expected_order(case: str, norm: str, dropout: float) -> list[str]:
    """The layers a forward pass runs, in order (identities left out), per the models' docstrings."""
    n = [] if norm == "none" else ["norm"]
    d = [] if dropout == 0 else ["drop"]
    if case == "mlp":
        return ["flatten", *(name for k in range(2) for name in
                             [f"fc{k}", *(f"{x}{k}" for x in n), f"act{k}", *(f"{x}{k}" for x in d)]),
                "head"]
    if case == "cnn":
        return [*(name for k in range(2) for name in
                  [f"conv{k}", *(f"{x}{k}" for x in n), f"act{k}", f"pool{k}"]),
                "gap", "flatten", *d, "head"]
    if case == "text_bag":
        return ["embed", "hidden", *n, "act", *d, "head"]
    return ["embed", "convs.0", "act", "convs.1", "act", *n, *d, "head"]


@dataclass
class Call:
    name: str
    module: nn.Module
    input: torch.Tensor
    output: torch.Tensor


@contextmanager
def record(model: nn.Module, keep: Callable[[nn.Module], bool]) -> Iterator[list[Call]]:
    """Every forward call of the submodules ``keep`` selects, in execution order, with copies of
    their input and output."""
    calls: list[Call] = []

    def hook_for(name: str) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            calls.append(Call(name, module, args[0].detach().clone(), output.detach().clone()))
        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in model.named_modules()
               if name and keep(m)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def is_leaf(m: nn.Module) -> bool:
    return next(m.children(), None) is None and not isinstance(m, nn.Identity)


def is_batch_norm(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.batchnorm._BatchNorm)


def is_layer_norm(m: nn.Module) -> bool:
    return isinstance(m, nn.LayerNorm | nn.GroupNorm)


def is_dropout(m: nn.Module) -> bool:
    return isinstance(m, nn.Dropout)


# ---- placement ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_norm_and_dropout_sit_where_configured(case: str, norm: str, dropout: float) -> None:
    model = build(case, norm=norm, dropout=dropout).eval()
    with record(model, is_leaf) as calls, torch.no_grad():
        model(single_precision(inputs(case, 4, seed=0)))
    assert [c.name for c in calls] == expected_order(case, norm, dropout)
    for c in calls:
        if c.name.startswith("norm"):
            assert type(c.module) is NORM_TYPES[case][norm]
            assert c.output.shape == c.input.shape
            if isinstance(c.module, nn.GroupNorm):
                assert c.module.num_groups == 1  # layer norm over (C, H, W)
        elif c.name.startswith("drop"):
            assert isinstance(c.module, nn.Dropout) and c.module.p == dropout
        else:
            assert not isinstance(c.module, nn.Dropout | nn.LayerNorm | nn.GroupNorm
                                  | nn.modules.batchnorm._BatchNorm)


# ---- batch norm --------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_batch_norm_in_the_model_follows_the_formula(case: str) -> None:
    rng = np.random.default_rng(0)
    model = build(case, norm="batch").double()
    layers = {name: m for name, m in model.named_modules() if is_batch_norm(m)}
    assert len(layers) == (2 if case in ("mlp", "cnn") else 1)
    params: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    running: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, layer in layers.items():
        assert isinstance(layer, nn.modules.batchnorm._BatchNorm)
        assert layer.eps == EPS and layer.momentum == MOMENTUM and layer.track_running_stats
        params[name] = affine(layer, layer.num_features, rng)
        running[name] = np.zeros(layer.num_features), np.ones(layer.num_features)  # torch's start
    axes = BATCH_AXES[case]
    view: list[int] = []
    for step in range(3):  # train mode: normalise with the batch's own (biased) statistics
        with record(model, is_batch_norm) as calls, torch.no_grad():
            model.train()(inputs(case, 8, seed=step))
        assert [c.name for c in calls] == list(layers)  # each norm layer runs once per pass
        for c in calls:
            a, got = c.input.numpy(), c.output.numpy()
            gamma, beta = params[c.name]
            y, mu, var, unbiased = batch_norm_reference(a, axes, gamma, beta)
            np.testing.assert_allclose(got, y, rtol=1e-10, atol=1e-10)
            run_mean, previous = running[c.name]
            run_mean = (1 - MOMENTUM) * run_mean + MOMENTUM * mu
            run_var = (1 - MOMENTUM) * previous + MOMENTUM * unbiased  # unbiased variance stored
            running[c.name] = run_mean, run_var
            layer = layers[c.name]
            assert isinstance(layer, nn.modules.batchnorm._BatchNorm)
            assert layer.running_mean is not None and layer.running_var is not None
            np.testing.assert_allclose(layer.running_mean.numpy(), run_mean, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(layer.running_var.numpy(), run_var, rtol=1e-12)
            assert int(layer.num_batches_tracked) == step + 1  # type: ignore[arg-type]
            # Not vacuous: storing the biased variance, or normalising with the unbiased one, fails.
            assert not np.allclose((1 - MOMENTUM) * previous + MOMENTUM * var, run_var, rtol=1e-9, atol=0)
            view = channel_view(a)
            with_unbiased = (gamma.reshape(view) * (a - mu.reshape(view))
                             / np.sqrt(unbiased.reshape(view) + EPS) + beta.reshape(view))
            assert not np.allclose(got, with_unbiased, rtol=1e-6, atol=1e-6)
    # eval mode: the running statistics, and no further update
    x = inputs(case, 8, seed=10)
    with record(model, is_batch_norm) as calls, torch.no_grad():
        logits = model.eval()(x)
    assert [c.name for c in calls] == list(layers)
    for c in calls:
        a = c.input.numpy()
        gamma, beta = params[c.name]
        run_mean, run_var = running[c.name]
        view = channel_view(a)
        want = (gamma.reshape(view) * (a - run_mean.reshape(view)) / np.sqrt(run_var.reshape(view) + EPS)
                + beta.reshape(view))
        np.testing.assert_allclose(c.output.numpy(), want, rtol=1e-10, atol=1e-10)
        batch_stats = batch_norm_reference(a, axes, gamma, beta)[0]
        assert not np.allclose(c.output.numpy(), batch_stats, rtol=1e-3, atol=1e-3)
        layer = layers[c.name]
        assert layer.running_mean is not None
        np.testing.assert_allclose(layer.running_mean.numpy(), run_mean, rtol=1e-12, atol=1e-14)
        assert int(layer.num_batches_tracked) == 3  # type: ignore[arg-type]
    with torch.no_grad():
        # eval: a sample's logits do not depend on the rest of its batch ...
        np.testing.assert_allclose(model(x[:1]).numpy(), logits[:1].numpy(), rtol=1e-10, atol=1e-10)
        # ... in train mode they do (batch statistics)
        model.train()
        assert not torch.allclose(model(x[:2]), model(x)[:2], rtol=1e-6, atol=1e-6)


# ---- layer norm --------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_layer_norm_in_the_model_normalises_each_sample(case: str) -> None:
    rng = np.random.default_rng(1)
    model = build(case, norm="layer").double()
    layers = {name: m for name, m in model.named_modules() if is_layer_norm(m)}
    assert len(layers) == (2 if case in ("mlp", "cnn") else 1)
    params: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, layer in layers.items():
        assert isinstance(layer, nn.LayerNorm | nn.GroupNorm) and layer.eps == EPS
        assert not any(True for _ in layer.buffers())  # no running statistics
        channels = layer.num_channels if isinstance(layer, nn.GroupNorm) else layer.normalized_shape[0]
        params[name] = affine(layer, channels, rng)
    axes = LAYER_AXES[case]
    x = inputs(case, 8, seed=0)
    outputs = []
    for mode in (True, False):  # the same in train and eval mode
        with record(model, is_layer_norm) as calls, torch.no_grad():
            outputs.append(model.train(mode)(x))
        assert [c.name for c in calls] == list(layers)
        for c in calls:
            a, got = c.input.numpy(), c.output.numpy()
            gamma, beta = params[c.name]
            view = channel_view(a)
            want = gamma.reshape(view) * layer_norm_reference(a, axes) + beta.reshape(view)
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
            if case == "cnn":  # statistics over (C, H, W), not per channel (instance norm)
                per_channel = gamma.reshape(view) * layer_norm_reference(a, (2, 3)) + beta.reshape(view)
                assert not np.allclose(got, per_channel, rtol=1e-3, atol=1e-3)
    assert torch.equal(outputs[0], outputs[1])
    with torch.no_grad():  # even in train mode a sample's logits ignore the rest of its batch
        single = model.train()(x[:1])
    np.testing.assert_allclose(single.numpy(), outputs[0][:1].numpy(), rtol=1e-10, atol=1e-10)


# ---- dropout -----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("norm", NORMS)
def test_dropout_is_the_identity_in_eval_mode(case: str, norm: str) -> None:
    x = single_precision(inputs(case, 16, seed=0))
    model = build(case, norm=norm, dropout=0.5)
    plain = build(case, norm=norm, dropout=0.0)  # same seed, same weights, no dropout layer
    assert not any(is_dropout(m) for m in plain.modules())
    weights, plain_weights = model.state_dict(), plain.state_dict()
    assert weights.keys() == plain_weights.keys()
    assert all(torch.equal(weights[k], plain_weights[k]) for k in weights)
    model.eval()
    plain.eval()
    with torch.no_grad():
        state = torch.get_rng_state()
        first = model(x)
        assert torch.equal(torch.get_rng_state(), state)  # no mask drawn
        torch.manual_seed(1)
        second = model(x)
        assert torch.equal(first, second) and torch.equal(first, plain(x))
        model.train()
        plain.train()
        torch.manual_seed(0)
        assert not torch.allclose(model(x), plain(x))  # train mode: dropout does act


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_in_train_mode_drops_p_and_scales_by_1_over_1_minus_p(case: str, p: float) -> None:
    model = build(case, dropout=p).double().train()
    drops = [m for m in model.modules() if is_dropout(m)]
    assert len(drops) == (2 if case == "mlp" else 1) and all(m.p == p for m in drops)
    x = inputs(case, 256, seed=0)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)  # nn.Dropout draws from the global generator
        with record(model, is_dropout) as calls:
            out = model(x)
            model(x)
        torch.manual_seed(0)
        again = model(x)
    assert torch.equal(again, out)  # seeded: the same masks
    assert len(calls) == 2 * len(drops)
    for c in calls:
        a, y = c.input.numpy(), c.output.numpy()
        live = a != 0  # a zero input (ReLU) gives zero either way
        assert not y[~live].any()
        kept = live & (y != 0)
        np.testing.assert_allclose(y[kept], a[kept] / (1 - p), rtol=1e-12)  # scaled by 1/(1-p)
        assert not np.allclose(y[kept], a[kept])  # the scaling is there
        n = int(live.sum())
        assert n >= 1000
        # The kept fraction is Binomial(n, 1-p) / n: five standard deviations.
        assert abs(kept.sum() / n - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    # A fresh mask per call: the first dropout layer sees the same input twice, masks differ.
    first, second = calls[0], calls[len(drops)]
    assert torch.equal(first.input, second.input)
    assert not torch.equal(first.output != 0, second.output != 0)
