"""Training steps/s fed by in-memory tensors, the local DataLoader (library in-process) and the service.

Every source runs the same Trainer (same model, optimizer and batch plan); only where the batches
come from differs:

- ``memory``: every training sample augmented once up front, then indexed as tensors (the ceiling:
  no augmentation cost per step);
- ``local w0`` / ``local w1``: ``LocalSource``, the library in-process through a DataLoader with 0 or 1
  worker processes, augmenting every epoch;
- ``remote``: ``RemoteSource``, StreamEpoch from an ``augsvc serve --epoch-workers 1`` subprocess on a
  free loopback port, augmenting every epoch.

Goal: remote >= 0.9x memory when the server keeps up.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a file (python benchmarks/x.py) the script's folder is on sys.path, not the repository
# root that `benchmarks.` needs (python -m puts the current folder, the root, there itself).
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import cpu_summary, load_average, one_thread_per_process, render, tree_cpu, versions

# Run, not imported: one thread per process before numpy, OpenCV and torch load and size their
# thread pools; the server and DataLoader workers started below inherit it.
if __name__ == "__main__":
    one_thread_per_process()

import torch

from benchmarks.service_workloads import serve
from training.config import load_config
from training.devices import resolve_device
from training.trainer import Trainer

SOURCES = ("memory", "local w0", "local w1", "remote")


@dataclass
class Timing:
    """Per source: seconds, CPU seconds and steps per timed pass."""

    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)

    def rates(self) -> list[float]:
        return [n / s for n, s in zip(self.steps, self.seconds, strict=True)]

    def rate(self) -> float:
        return sum(self.steps) / sum(self.seconds)


def make_trainer(source: str, args: argparse.Namespace, address: str | None, out_dir: str) -> Trainer:
    """A Trainer whose batches come from ``source`` (see the module docstring)."""
    kind, _, workers = source.partition(" w")
    data: dict[str, Any] = {"dataset": args.dataset, "source": kind, "augment": args.preset,
                            "batch_size": args.batch_size, "workers": int(workers or 0)}
    if address is not None:
        data["addresses"] = [address]
    options: dict[str, Any] = {"width": args.width}
    if args.depth is not None:
        options["depth"] = args.depth
    config = load_config({
        "seed": 0, "epochs": 10**6, "device": args.device, "tensorboard": False,
        "out_dir": out_dir, "model": {"name": args.model, "options": options}, "data": data,
        "optimizer": {"name": "adamw"}, "schedule": {"name": "constant"}})
    return Trainer(config, progress=False)


def timed_pass(trainer: Trainer, epochs: range) -> tuple[float, float, int]:
    """(seconds, CPU seconds of this process tree, steps) for ``epochs`` of ``trainer``."""
    gc.collect()
    cpu0 = tree_cpu(os.getpid())
    t0 = time.perf_counter()
    for epoch in epochs:
        trainer.train_epoch(epoch)  # ends with a host read of the totals: the device is synced
    seconds = time.perf_counter() - t0
    return seconds, tree_cpu(os.getpid()) - cpu0, trainer.steps_per_epoch() * len(epochs)


def header(device: torch.device, threads: int) -> str:
    """Versions, CPU, device and load in one line."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"cpu, {threads} torch thread(s) in the trainer"
    return (f"{versions(torch=torch)}; CPU: {cpu_summary()}; device: {where}; "
            f"load average at start {load_average()}")


def main(argv: list[str] | None = None) -> None:
    """Parse options, build one Trainer per source, time them in alternating rounds, print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto: cuda when available (default)")
    ap.add_argument("--model", default="cnn", choices=("cnn", "mlp"), help="default cnn")
    ap.add_argument("--width", type=int, default=16, help="model width (default 16)")
    ap.add_argument("--depth", type=int, default=None, help="model depth (default: the model's own)")
    ap.add_argument("--dataset", default="digits", help="built-in image dataset (default digits)")
    ap.add_argument("--preset", default="digits", help="augmentation preset (default digits)")
    ap.add_argument("--batch-size", type=int, default=64, help="default 64")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per timed pass (default 3)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds; each times every source once, order reversed every other round")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads of the trainer (default 1)")
    ap.add_argument("--server-workers", type=int, default=1,
                    help="--epoch-workers of the server (default 1)")
    ap.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES),
                    help="which sources (memory is the baseline and always runs)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round of 1 epoch")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.epochs = 1, 1
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    sources = ["memory", *[s for s in args.sources if s != "memory"]]
    print(header(device, args.threads))
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="augsvc-train-bench-"))
        address = None
        if "remote" in sources:
            server = stack.enter_context(serve(["--epoch-workers", str(args.server_workers)]))
            address = server.address
        trainers = {s: make_trainer(s, args, address, tmp) for s in sources}
        first = trainers["memory"]
        params = sum(p.numel() for p in first.model.parameters())
        print(f"model {args.model} (width {args.width}, {params:,} parameters), {args.dataset} "
              f"{first.info.image_size}x{first.info.image_size}x{first.info.in_channels}, "
              f"{first.info.train_size} training samples, batch {args.batch_size} "
              f"({first.steps_per_epoch()} steps/epoch), preset {args.preset}, adamw; remote: "
              f"augsvc serve --epoch-workers {args.server_workers}; {args.rounds} rounds of "
              f"{args.epochs} epoch(s) per source after a warm-up epoch", flush=True)
        for trainer in trainers.values():  # warm-up: first epoch, caches, worker start-up
            timed_pass(trainer, range(10**5, 10**5 + 1))
        timings = {s: Timing() for s in sources}
        for r in range(args.rounds):
            epochs = range(r * args.epochs, (r + 1) * args.epochs)  # every source: the same epochs
            for s in sources if r % 2 == 0 else sources[::-1]:
                seconds, cpu, steps = timed_pass(trainers[s], epochs)
                timings[s].seconds.append(seconds)
                timings[s].cpu.append(cpu)
                timings[s].steps.append(steps)
        for trainer in trainers.values():
            trainer.source.close()
    base = timings["memory"]
    rows = []
    for s in sources:
        t = timings[s]
        ratios = [a / b for a, b in zip(t.rates(), base.rates(), strict=True)]
        rows.append([s, f"{t.rate():.1f}", f"{t.rate() / base.rate():.3f}",
                     f"{statistics.median(ratios):.3f}", f"{sum(t.cpu) / sum(t.steps) * 1e3:.1f}",
                     " ".join(f"{v:.1f}" for v in t.rates())])
    print(render(("source", "steps/s", "vs memory", "median round ratio", "CPU ms/step (all processes)",
                  "steps/s per round"), rows, args.markdown))


if __name__ == "__main__":
    main()
