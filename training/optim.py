"""Optimizers by name: a registry over torch.optim with the formulas of shared/formulas.md.

``create_optimizer("adamw", model, lr=1e-3, weight_decay=0.01)`` builds torch's optimizer with
parameter groups that never decay biases or normalisation parameters. On CUDA the fused kernels
are used where torch has them, on CPU the faster of torch's foreach and for-loop paths (see
``OptimizerInfo.cpu_foreach``); the update rules are torch's own, checked against the formulas
in ``tests/training/test_optim.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from augsvc.errors import ConfigError, unknown_name

__all__ = ["OPTIMIZERS", "OptimizerInfo", "create_optimizer", "list_optimizers", "param_groups"]


@dataclass(frozen=True)
class OptimizerInfo:
    """One registry entry.

    Attributes:
        name: registry name.
        update: the update rule, as in formulas.md.
        factory: builds the torch optimizer from parameter groups and keyword arguments.
        defaults: hyper-parameters and their defaults (lr included).
        fused: torch has a fused CUDA kernel for it.
        cpu_foreach: on CPU, use torch's multi-tensor (foreach) path rather than its default
            per-tensor loop. The SGD family is 5-10 % faster that way; the adaptive optimizers
            are faster with the loop (``benchmarks/optimizer_step.py``, BENCHMARKS.md).
    """

    name: str
    update: str
    factory: Callable[..., torch.optim.Optimizer]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    fused: bool = False
    cpu_foreach: bool = False


def _sgd(groups: Any, *, lr: float, weight_decay: float = 0.0, **kw: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=lr, weight_decay=weight_decay, **kw)


def _momentum(groups: Any, *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
              **kw: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, dampening=0.0,
                           weight_decay=weight_decay, **kw)


def _nesterov(groups: Any, *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
              **kw: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, dampening=0.0, nesterov=True,
                           weight_decay=weight_decay, **kw)


def _adagrad(groups: Any, *, lr: float, eps: float = 1e-10, weight_decay: float = 0.0,
             **kw: Any) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(groups, lr=lr, eps=eps, weight_decay=weight_decay, **kw)


def _rmsprop(groups: Any, *, lr: float, beta: float = 0.99, eps: float = 1e-8,
             weight_decay: float = 0.0, **kw: Any) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(groups, lr=lr, alpha=beta, eps=eps, weight_decay=weight_decay, **kw)


def _adam(groups: Any, *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 0.0, **kw: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, **kw)


def _adamw(groups: Any, *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
           weight_decay: float = 0.01, **kw: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, **kw)


OPTIMIZERS: dict[str, OptimizerInfo] = {info.name: info for info in (
    OptimizerInfo("sgd", "x <- x - lr g", _sgd, {"lr": 0.1, "weight_decay": 0.0}, fused=True,
                  cpu_foreach=True),
    OptimizerInfo("momentum", "v <- rho v + g; x <- x - lr v", _momentum,
                  {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0}, fused=True,
                  cpu_foreach=True),
    OptimizerInfo("nesterov", "v <- rho v - lr grad f(x + rho v); x <- x + v", _nesterov,
                  {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0}, fused=True,
                  cpu_foreach=True),
    OptimizerInfo("adagrad", "c <- c + g^2; x <- x - lr g / (sqrt(c) + eps)", _adagrad,
                  {"lr": 0.05, "eps": 1e-10, "weight_decay": 0.0}),
    OptimizerInfo("rmsprop", "c <- beta c + (1 - beta) g^2; x <- x - lr g / (sqrt(c) + eps)",
                  _rmsprop, {"lr": 1e-3, "beta": 0.99, "eps": 1e-8, "weight_decay": 0.0}),
    OptimizerInfo("adam", "m, v moments with bias correction; x <- x - lr m^ / (sqrt(v^) + eps)",
                  _adam, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
                  fused=True),
    OptimizerInfo("adamw", "adam, plus decoupled decay x <- x - lr wd x", _adamw,
                  {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01},
                  fused=True),
)}

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
          nn.modules.instancenorm._InstanceNorm)


def list_optimizers() -> list[str]:
    """Registered optimizer names, sorted."""
    return sorted(OPTIMIZERS)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: weights (decayed) and biases + normalisation parameters (never decayed)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if isinstance(module, _NORMS) or name.endswith("bias") or param.ndim < 2:
                no_decay.append(param)
            else:
                decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def create_optimizer(name: str, params: nn.Module | Iterable[torch.Tensor], **kwargs: Any
                     ) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` for a model (with decay groups) or a parameter iterable.

    Raises:
        ValueError: unknown name (with a suggestion) or a hyper-parameter torch rejects.
    """
    info = OPTIMIZERS.get(name)
    if info is None:
        raise ConfigError(unknown_name('optimizer', name, list_optimizers()))
    options = {**info.defaults, **kwargs}
    unknown = set(kwargs) - set(info.defaults) - {"foreach", "fused", "maximize"}
    if unknown:
        raise ValueError(f"{name} has no hyper-parameter(s) {sorted(unknown)}; "
                         f"known: {sorted(info.defaults)}")
    tensors: list[torch.Tensor]
    if isinstance(params, nn.Module):
        tensors = [p for p in params.parameters() if p.requires_grad]
        groups: Any = param_groups(params, options["weight_decay"])
    else:
        tensors = list(params)
        groups = tensors
    if info.fused and "fused" not in kwargs and tensors and all(t.is_cuda for t in tensors):
        options["fused"] = True
    elif info.cpu_foreach and "foreach" not in kwargs and "fused" not in kwargs and tensors and \
            all(t.device.type == "cpu" for t in tensors):
        options["foreach"] = True
    return info.factory(groups, **options)
