"""Learning-rate schedules by name: a multiplier of the base rate per step, with optional warm-up.

Every schedule is a pure function ``factor(step) -> float`` (step counts optimizer steps from 0),
wrapped in ``torch.optim.lr_scheduler.LambdaLR``; call ``scheduler.step()`` after each
``optimizer.step()``. Linear warm-up scales the first ``warmup_steps`` steps by
``(step + 1) / warmup_steps`` and then hands over to the schedule, counted from the warm-up's end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from augsvc.errors import ConfigError, unknown_name

__all__ = ["SCHEDULES", "ScheduleInfo", "create_schedule", "list_schedules", "schedule_factor"]

Factor = Callable[[int], float]


@dataclass(frozen=True)
class ScheduleInfo:
    """One registry entry: the formula, and a builder of the factor from the total step count."""

    name: str
    formula: str
    build: Callable[..., Factor]
    defaults: Mapping[str, Any] = field(default_factory=dict)


def _constant(total: int) -> Factor:
    return lambda step: 1.0


def _step(total: int, step_size: int = 30, gamma: float = 0.1) -> Factor:
    return lambda step: gamma ** (step // step_size)


def _exponential(total: int, gamma: float = 0.99) -> Factor:
    return lambda step: gamma**step


def _cosine(total: int, min_factor: float = 0.0) -> Factor:
    span = max(1, total)
    return lambda step: min_factor + (1 - min_factor) * 0.5 * (
        1 + math.cos(math.pi * min(step, span) / span))


SCHEDULES: dict[str, ScheduleInfo] = {info.name: info for info in (
    ScheduleInfo("constant", "1", _constant),
    ScheduleInfo("step", "gamma ** floor(t / step_size)", _step, {"step_size": 30, "gamma": 0.1}),
    ScheduleInfo("exponential", "gamma ** t", _exponential, {"gamma": 0.99}),
    ScheduleInfo("cosine", "min + (1 - min) (1 + cos(pi t / T)) / 2", _cosine,
                 {"min_factor": 0.0}),
)}


def list_schedules() -> list[str]:
    """Registered schedule names, sorted."""
    return sorted(SCHEDULES)


def schedule_factor(name: str, total_steps: int, *, warmup_steps: int = 0, **kwargs: Any
                    ) -> Factor:
    """The multiplier of the base learning rate at each step.

    Raises:
        ValueError: unknown name (with a suggestion), unknown option, or negative step counts.
    """
    info = SCHEDULES.get(name)
    if info is None:
        raise ConfigError(unknown_name("schedule", name, SCHEDULES))
    unknown = set(kwargs) - set(info.defaults)
    if unknown:
        raise ValueError(f"{name} has no option(s) {sorted(unknown)}; known: {sorted(info.defaults)}")
    if total_steps < 1 or warmup_steps < 0 or warmup_steps > total_steps:
        raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps ({total_steps})"
                         " and total_steps >= 1")
    base = info.build(total_steps - warmup_steps, **{**info.defaults, **kwargs})
    if warmup_steps == 0:
        return base
    return lambda step: (step + 1) / warmup_steps if step < warmup_steps \
        else base(step - warmup_steps)


def create_schedule(name: str, optimizer: torch.optim.Optimizer, total_steps: int, *,
                    warmup_steps: int = 0, **kwargs: Any) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR applying ``schedule_factor(name, ...)`` to every parameter group."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, schedule_factor(name, total_steps, warmup_steps=warmup_steps, **kwargs))
