"""Time per step of training.optim.create_optimizer vs torch.optim built directly with foreach=True."""

from __future__ import annotations

import argparse
import copy
import gc
import statistics
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a file (python benchmarks/x.py) the script's folder is on sys.path, not the repository
# root that `benchmarks.` needs (python -m puts the current folder, the root, there itself).
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import nn

from benchmarks.common import cpu_summary, gc_paused, render, timed, versions
from training.optim import OPTIMIZERS, create_optimizer, list_optimizers, param_groups

Groups = list[dict[str, Any]]


def _sgd(groups: Groups, d: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=d["lr"], foreach=True)


def _momentum(groups: Groups, d: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=d["lr"], momentum=d["momentum"], foreach=True)


def _nesterov(groups: Groups, d: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=d["lr"], momentum=d["momentum"], nesterov=True, foreach=True)


def _adagrad(groups: Groups, d: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(groups, lr=d["lr"], eps=d["eps"], foreach=True)


def _rmsprop(groups: Groups, d: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(groups, lr=d["lr"], alpha=d["beta"], eps=d["eps"], foreach=True)


def _adam(groups: Groups, d: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=d["lr"], betas=d["betas"], eps=d["eps"], foreach=True)


def _adamw(groups: Groups, d: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=d["lr"], betas=d["betas"], eps=d["eps"], foreach=True)


# The baseline per registry name: torch.optim with the registry's defaults, written out by hand.
# Weight decay comes from the parameter groups (decayed weights / never-decayed biases and norms),
# so both sides do exactly the same arithmetic.
BASELINES: dict[str, Callable[[Groups, Mapping[str, Any]], torch.optim.Optimizer]] = {
    "sgd": _sgd, "momentum": _momentum, "nesterov": _nesterov, "adagrad": _adagrad,
    "rmsprop": _rmsprop, "adam": _adam, "adamw": _adamw,
}


def make_model(width: int, depth: int, seed: int = 0) -> nn.Sequential:
    """``depth`` x [Linear(width, width), LayerNorm] -> Linear(width, 10), fixed random grads."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.LayerNorm(width)]
        model = nn.Sequential(*layers, nn.Linear(width, 10))
    generator = torch.Generator().manual_seed(seed + 1)
    for p in model.parameters():
        p.grad = 1e-3 * torch.randn(p.shape, generator=generator)
    return model


def clone(model: nn.Module, device: torch.device) -> nn.Module:
    """An independent copy on ``device``, gradients included."""
    copied = copy.deepcopy(model).to(device)
    for src, dst in zip(model.parameters(), copied.parameters(), strict=True):
        assert src.grad is not None
        dst.grad = src.grad.to(device, copy=True)
    return copied


def build_pair(name: str, model: nn.Module, device: torch.device
               ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """(ours, baseline), each on its own copy of ``model``'s parameters and gradients."""
    defaults = OPTIMIZERS[name].defaults
    ours = create_optimizer(name, clone(model, device))
    base_model = clone(model, device)
    baseline = BASELINES[name](param_groups(base_model, defaults["weight_decay"]), defaults)
    return ours, baseline


def grad_resetter(opt: torch.optim.Optimizer) -> Callable[[], None]:
    """Restores the optimizer's gradients to their current values when called.

    torch's foreach SGD with ``nesterov=True`` adds ``momentum * buf`` into ``p.grad`` in place
    (the for-loop and fused paths do not), so fixed gradients drift unless they are restored, as
    a real training step would by recomputing them.
    """
    params = [p for g in opt.param_groups for p in g["params"]]
    saved = [p.grad.detach().clone() for p in params if p.grad is not None]
    assert len(saved) == len(params)

    def reset() -> None:
        with torch.no_grad():
            torch._foreach_copy_([p.grad for p in params], saved)

    return reset


def check_same_updates(name: str, model: nn.Module, device: torch.device, steps: int = 3) -> float:
    """Largest |difference| between ours and the baseline after ``steps`` steps (both from scratch)."""
    ours, baseline = build_pair(name, model, device)
    reset_ours, reset_baseline = grad_resetter(ours), grad_resetter(baseline)
    for _ in range(steps):
        reset_ours()
        ours.step()
        reset_baseline()
        baseline.step()

    def flat(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
        return [p.detach() for g in opt.param_groups for p in g["params"]]

    diff = max(float((a - b).abs().max()) for a, b in zip(flat(ours), flat(baseline), strict=True))
    if diff > 1e-5:
        raise AssertionError(f"{name}: ours and the baseline disagree by {diff:.3g}; fix BASELINES")
    return diff


def path_of(opt: torch.optim.Optimizer, device: torch.device) -> str:
    """Which implementation torch runs: fused, foreach (multi-tensor) or the per-tensor for-loop."""
    fused, foreach = opt.defaults.get("fused"), opt.defaults.get("foreach")
    if fused:
        return "fused"
    if foreach:
        return "foreach"
    if foreach is None:  # torch picks foreach only when every tensor is on a foreach device (CUDA)
        return "default->foreach" if device.type == "cuda" else "default->for-loop"
    return "for-loop"


@dataclass
class Timings:
    """Seconds per step, one value per round and side."""

    ours: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)

    @property
    def round_ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.ours, self.baseline, strict=True)]


def per_step(opt: torch.optim.Optimizer, steps: int, sync: Callable[[], None],
             reset: Callable[[], None]) -> float:
    """Seconds per ``opt.step()``, averaged over ``steps`` calls (gradients restored first, GC paused)."""

    def run() -> None:
        for _ in range(steps):
            opt.step()
        sync()

    reset()
    with gc_paused():
        sync()
        return timed(run)[0] / steps


def bench(name: str, model: nn.Module, device: torch.device, rounds: int, steps: int, warmup: int
          ) -> tuple[Timings, str]:
    """ABBA rounds (ours, baseline, baseline, ours) after ``warmup`` steps each."""
    ours, baseline = build_pair(name, model, device)
    reset_ours, reset_baseline = grad_resetter(ours), grad_resetter(baseline)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    per_step(ours, warmup, sync, reset_ours)
    per_step(baseline, warmup, sync, reset_baseline)
    t = Timings()
    for _ in range(rounds):
        a = per_step(ours, steps, sync, reset_ours)
        b = per_step(baseline, steps, sync, reset_baseline)
        b += per_step(baseline, steps, sync, reset_baseline)
        a += per_step(ours, steps, sync, reset_ours)
        t.ours.append(a / 2)
        t.baseline.append(b / 2)
    return t, path_of(ours, device)


def header(device: torch.device, threads: int, model: nn.Module) -> str:
    """Versions, device and model size in one line."""
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = cpu_summary(f"{threads} torch thread(s)")
    params = list(model.parameters())
    return (f"{versions(torch=torch)}; {device.type}: {where}; "
            f"model: {sum(p.numel() for p in params):,} parameters in {len(params)} tensors (float32)")


COLUMNS = ("optimizer", "ours path", "ours ms/step", "foreach ms/step", "ours/foreach",
           "median round ratio", "max |Δ| after 3 steps")


def main(argv: list[str] | None = None) -> None:
    """Parse options, time every registered optimizer against its baseline, print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto: cuda when available (default)")
    ap.add_argument("--width", type=int, default=512, help="Linear width (default 512)")
    ap.add_argument("--depth", type=int, default=8,
                    help="Linear + LayerNorm blocks (default 8: about 2.1M parameters)")
    ap.add_argument("--rounds", type=int, default=10, help="ABBA rounds per optimizer (default 10)")
    ap.add_argument("--steps", type=int, default=5, help="steps per timing (default 5)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per side first (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--only", nargs="+", choices=list_optimizers(), help="a subset of optimizers")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no GPU")
    device = torch.device("cuda" if args.device == "cuda" or
                          (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    torch.set_num_threads(args.threads)
    missing = set(list_optimizers()) - set(BASELINES)
    if missing:
        raise SystemExit(f"no baseline for {sorted(missing)}: add it to BASELINES")
    model = make_model(args.width, args.depth)
    gc.freeze()  # long-lived objects (torch et al.) out of the collector: gc.collect() takes µs
    print(header(device, args.threads, model))
    print(f"{args.rounds} rounds of ours/foreach/foreach/ours x {args.steps} steps after "
          f"{args.warmup} warm-up steps; the median per side, and the median of per-round ratios",
          flush=True)
    table = []
    for name in args.only or list_optimizers():
        diff = check_same_updates(name, model, device)
        t, path = bench(name, model, device, args.rounds, args.steps, args.warmup)
        ours, base = statistics.median(t.ours), statistics.median(t.baseline)
        table.append([name, path, f"{ours * 1e3:.3f}", f"{base * 1e3:.3f}", f"{ours / base:.3f}",
                      f"{statistics.median(t.round_ratios):.3f}", f"{diff:.1e}"])
    print(render(COLUMNS, table, args.markdown, left=2))


if __name__ == "__main__":
    main()
