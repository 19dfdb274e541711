"""Learning-rate schedules: closed forms, warm-up, torch integration, errors."""

from __future__ import annotations

import math

import pytest
import torch

from training.schedules import create_schedule, list_schedules, schedule_factor

CLOSED_FORM = {
    "constant": lambda t, T: 1.0,
    "step": lambda t, T: 0.1 ** (t // 30),
    "exponential": lambda t, T: 0.99**t,
    "cosine": lambda t, T: 0.5 * (1 + math.cos(math.pi * t / T)),
}


def test_every_schedule_has_a_closed_form_row() -> None:
    assert set(list_schedules()) == set(CLOSED_FORM)


@pytest.mark.parametrize("name", list_schedules())
def test_factors_follow_the_formula(name: str) -> None:
    factor = schedule_factor(name, 100)
    for t in (0, 1, 29, 30, 61, 99, 100):
        assert factor(t) == pytest.approx(CLOSED_FORM[name](t, 100)), (name, t)


def test_warmup_ramps_then_hands_over() -> None:
    factor = schedule_factor("cosine", 110, warmup_steps=10)
    assert [factor(t) for t in range(10)] == pytest.approx([(t + 1) / 10 for t in range(10)])
    assert factor(10) == pytest.approx(1.0) and factor(110) == pytest.approx(0.0)
    assert factor(60) == pytest.approx(0.5)
    assert schedule_factor("cosine", 10, min_factor=0.1)(10) == pytest.approx(0.1)


def test_scheduler_drives_the_optimizer() -> None:
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=0.5)
    sched = create_schedule("step", opt, 100, step_size=2, gamma=0.5)
    rates = []
    for _ in range(6):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == pytest.approx([0.5, 0.5, 0.25, 0.25, 0.125, 0.125])


def _two_groups() -> torch.optim.Optimizer:
    a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    return torch.optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b], "lr": 0.02}], lr=0.1)


def test_schedule_scales_every_group_by_the_factor_and_resumes() -> None:
    """What the trainer relies on: lr_g(t) = lr_g * factor(t), also across a checkpoint."""
    total, warmup = 20, 4
    factor = schedule_factor("cosine", total, warmup_steps=warmup, min_factor=0.1)
    opt = _two_groups()
    sched = create_schedule("cosine", opt, total, warmup_steps=warmup, min_factor=0.1)
    rates = []
    for t in range(total + 1):
        rates.append([g["lr"] for g in opt.param_groups])
        assert rates[-1] == pytest.approx([0.5 * factor(t), 0.02 * factor(t)]), t
        opt.step()
        sched.step()
        if t == 8:
            saved = (opt.state_dict(), sched.state_dict())
    assert rates[0] == pytest.approx([0.5 / warmup, 0.02 / warmup])  # warm-up starts low
    assert rates[-1] == pytest.approx([0.05, 0.002])  # ends at min_factor
    # Resume as Trainer.load does: fresh optimizer and schedule, then both states loaded.
    opt2 = _two_groups()
    sched2 = create_schedule("cosine", opt2, total, warmup_steps=warmup, min_factor=0.1)
    opt2.load_state_dict(saved[0])
    sched2.load_state_dict(saved[1])
    resumed = []
    for _ in range(9, total + 1):
        resumed.append([g["lr"] for g in opt2.param_groups])
        opt2.step()
        sched2.step()
    assert resumed == rates[9:]  # LambdaLR recomputes base_lr * factor(t): exactly the same


def test_create_schedule_checks_its_arguments_like_schedule_factor() -> None:
    with pytest.raises(ValueError, match="did you mean 'cosine'"):
        create_schedule("cosin", _two_groups(), 10)
    with pytest.raises(ValueError, match="no option"):
        create_schedule("cosine", _two_groups(), 10, gamma=0.5)


def test_bad_schedule_arguments() -> None:
    with pytest.raises(ValueError, match="did you mean 'cosine'"):
        schedule_factor("cosin", 10)
    with pytest.raises(ValueError, match="no option"):
        schedule_factor("constant", 10, gamma=0.5)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedule_factor("cosine", 10, warmup_steps=20)
