"""Weight initialisation by name, and a diagnostic of activation variance per layer at init.

For ``s = sum_i w_i x_i`` with independent zero-mean ``w`` and ``x``, ``Var(s) = n Var(w) Var(x)``:
xavier keeps it with ``Var(w) = 2 / (n_in + n_out)``, kaiming with ``Var(w) = 2 / n_in`` for ReLU;
all-zero weights never break symmetry and ``N(0, 0.01^2)`` shrinks activations layer by layer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from augsvc.errors import ConfigError, unknown_name

__all__ = ["INITS", "activation_variance", "init_weights", "list_inits"]

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _zeros(w: torch.Tensor, generator: torch.Generator) -> None:
    nn.init.zeros_(w)


def _small_normal(w: torch.Tensor, generator: torch.Generator) -> None:
    nn.init.normal_(w, 0.0, 0.01, generator=generator)


def _xavier(w: torch.Tensor, generator: torch.Generator) -> None:
    nn.init.xavier_normal_(w, generator=generator)


def _kaiming(w: torch.Tensor, generator: torch.Generator) -> None:
    nn.init.kaiming_normal_(w, nonlinearity="relu", generator=generator)


INITS: dict[str, Callable[[torch.Tensor, torch.Generator], None]] = {
    "zeros": _zeros, "small_normal": _small_normal, "xavier": _xavier, "kaiming": _kaiming,
}


def list_inits() -> list[str]:
    """Registered initialisation names, sorted."""
    return sorted(INITS)


def init_weights(model: nn.Module, name: str, *, seed: int = 0) -> nn.Module:
    """Initialise every Linear/Conv weight with ``name`` (biases to zero), from ``seed``.

    Raises:
        ValueError: unknown name, with a suggestion.
    """
    if name not in INITS:
        raise ConfigError(unknown_name('init', name, list_inits()))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _LAYERS):
                INITS[name](module.weight, generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    return model


def activation_variance(model: nn.Sequential, inputs: torch.Tensor) -> list[tuple[str, float]]:
    """(layer name, variance of its output) for each Linear/Conv layer, on ``inputs``."""
    out: list[tuple[str, float]] = []
    x = inputs
    with torch.no_grad():
        for name, module in model.named_children():
            x = module(x)
            if isinstance(module, _LAYERS):
                out.append((f"{name}:{type(module).__name__}", float(x.var())))
    return out
