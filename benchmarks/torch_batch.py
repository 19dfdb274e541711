"""Throughput of TorchBatchPipeline("seed7") on each torch device against the CPU path, same run.

Input: 256x256 RGB uint8 crops of real photos (``photo_crops``); seed7 crops 224x224 first, so
every row makes 224x224 images. Rows:

- CPU path: ``ImagePipeline("seed7")``, one image at a time, one thread (OpenCV and torch).
- host draw: the batch backend's per-sample parameter drawing alone (on the host, part of every
  batch call whatever the device), per sample: "now" is ``TorchBatchPipeline._draw``; "before" is
  the same draw as first written (commit d4c1ac4: a new stand-in view per transform, Affine's
  unused bbox matrix made for every sample), kept here as ``plain_draw`` to time both in the same
  run, alternating rounds (best of 3, ``DRAW_SAMPLES`` samples each), after checking that they
  draw the same values.
- host tables: the per-sample lookup tables the apply phase builds on the host for the tone
  transforms (brightness_contrast, gamma: ``apply_with_params`` on a ramp; HSV: ``hsv_tables``),
  per sample of the batch. With the draw, the host's share of every sample: its inverse is the
  ceiling one host thread sets on any device.
- torch on each device (cpu always, cuda where present): ``TorchBatchPipeline("seed7")`` on
  batches already on the device (the copy there is not timed); CUDA is synchronised before and
  after the clock. torch on the CPU uses ``--torch-threads`` threads (default 1: the same one
  core as the CPU path).

Run from the repository root: ``python benchmarks/torch_batch.py [--quick]`` or
``python -m benchmarks.torch_batch``. ``--quick`` (batches of 32) takes under 30 s on a CPU.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a file the script's folder is on sys.path, not the repository root `benchmarks.` needs.
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    SIZE,
    cpu_name,
    cpu_summary,
    gc_paused,
    load_average,
    one_thread_per_process,
    photo_crops,
    render,
    timed,
    versions,
)

# Run, not imported: one thread per process before numpy, OpenCV and torch size their pools.
if __name__ == "__main__":
    one_thread_per_process()

import albumentations as A
import cv2
import numpy as np
import torch

from augsvc.image import ImagePipeline, torch_ops
from augsvc.image.torch_batch import TorchBatchPipeline, _table

PRESET = "seed7"
SEED = 0
DRAW_SAMPLES = 3000  # per timed round of the host draw
COLUMNS = ("path", "device", "batch", "img/s", "× CPU path", "µs/img")


def cpu_path(images: list[np.ndarray], count: int) -> float:
    """Images per second of ImagePipeline(seed7), one image at a time."""
    pipe = ImagePipeline(PRESET)
    for k in range(8):  # warm-up, indices not reused below
        pipe(images[k % len(images)], seed=SEED, index=10**9 + k)

    def run() -> None:
        for k in range(count):
            pipe(images[k % len(images)], seed=SEED, index=k)

    with gc_paused():
        seconds, _ = timed(run)
    return count / seconds


def plain_draw(pipe: TorchBatchPipeline, seed: int, index: int, shape: tuple[int, int, int]
               ) -> dict[int, dict[str, Any]]:
    """The draw as first written (d4c1ac4), for the "before" row: every transform's own methods,
    a new broadcast stand-in for each, Affine's bbox matrix made every time."""
    pipe.pipeline._random.reseed(seed, index)
    fired: dict[int, dict[str, Any]] = {}
    if not pipe._compose.py_random.random() < pipe._compose.p:
        return fired
    for i, step in enumerate(pipe._steps):
        t = step.transform
        if not t.should_apply():
            continue
        data = {"image": np.broadcast_to(np.uint8(1), shape)}
        params = t.update_transform_params(params=t.get_params(), data=data)
        params.update(t.get_params_dependent_on_data(params=params, data=data))
        fired[i] = params
        if step.kind == "crop":
            x_min, y_min, x_max, y_max = params["crop_coords"]
            shape = (y_max - y_min, x_max - x_min, shape[2])
        elif step.kind == "resize":
            shape = (*torch_ops.output_size(t), shape[2])
    return fired


def _same(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> bool:
    """Whether two draws hold the same values (b's deferred values made)."""
    made = {i: {k: v() if isinstance(v, functools.partial) else v for k, v in p.items()}
            for i, p in b.items()}
    return a.keys() == made.keys() and all(
        a[i].keys() == made[i].keys() and all(np.array_equal(a[i][k], made[i][k]) for k in a[i]) for i in a)


def host_draw() -> tuple[float, float]:
    """Samples per second of the parameter drawing alone (no pixel work): (before, now)."""
    pipe = TorchBatchPipeline(PRESET)
    shape = (SIZE, SIZE, 3)
    for k in range(64):  # both draw the same values, and warm up
        if not _same(plain_draw(pipe, SEED, k, shape), pipe._draw(SEED, k, shape, k)[0]):
            raise AssertionError(f"the draws differ on index {k}")
    runs: dict[str, Callable[[int], object]] = {
        "before": lambda k: plain_draw(pipe, SEED, k, shape),
        "now": lambda k: pipe._draw(SEED, k, shape, k),  # what every batch call does per sample, first
    }

    def draw_all(draw: Callable[[int], object]) -> None:
        for k in range(DRAW_SAMPLES):
            draw(k)

    best = dict.fromkeys(runs, float("inf"))
    for _ in range(3):  # alternating rounds: both see the same machine
        for name, draw in runs.items():
            with gc_paused():
                seconds, _ = timed(functools.partial(draw_all, draw))
            best[name] = min(best[name], seconds)
    return DRAW_SAMPLES / best["before"], DRAW_SAMPLES / best["now"]


def host_tables() -> float:
    """Samples per second of the host's lookup tables for the samples the tone transforms fired for."""
    pipe = TorchBatchPipeline(PRESET)
    plans = [pipe._draw(SEED, k, (SIZE, SIZE, 3), k)[0] for k in range(DRAW_SAMPLES)]
    work = [(step, plan[i]) for i, step in enumerate(pipe._steps) for plan in plans
            if i in plan and (step.kind == "lut" or step.name == "hue_saturation_value")]

    def run() -> None:
        for step, params in work:
            if step.kind == "lut":
                _table(step.transform, params, 3)
            else:
                torch_ops.hsv_tables(step.transform, params, 3)

    with gc_paused():
        seconds = min(timed(run)[0] for _ in range(3))
    return DRAW_SAMPLES / seconds


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{cpu_name()}, {torch.get_num_threads()} torch thread(s)"


def batched(images: list[np.ndarray], device: str, batch: int, batches: int) -> float:
    """Images per second of TorchBatchPipeline(seed7) on ``device``, batches of ``batch``."""
    pipe = TorchBatchPipeline(PRESET)
    stack = np.stack([images[k % len(images)] for k in range(batch)]).transpose(0, 3, 1, 2)
    x = torch.from_numpy(np.ascontiguousarray(stack)).to(device)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    pipe(x, seed=SEED, start=10**9)  # warm-up: kernels, caches, the probe of OpenCV's layout
    sync()

    def run() -> None:
        for b in range(batches):
            pipe(x, seed=SEED, start=b * batch)
        sync()

    with gc_paused():
        seconds, _ = timed(run)
    return batch * batches / seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256, help="images per batch (default 256)")
    ap.add_argument("--batches", type=int, default=8, help="timed batches per device (default 8)")
    ap.add_argument("--cpu-images", type=int, default=512,
                    help="images through the CPU path and the host draw (default 512)")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch threads for the cpu device (default 1)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: batches of 32, 2 timed batches, 64 CPU-path images")
    args = ap.parse_args(argv)
    batch, batches, cpu_images = (32, 2, 64) if args.quick else \
        (args.batch, args.batches, args.cpu_images)
    cv2.setNumThreads(1)
    torch.set_num_threads(args.torch_threads)
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    images = photo_crops(16)

    print(f"{versions(torch=torch, albumentations=A, opencv=cv2, numpy=np)}; "
          f"CPU: {cpu_summary()}; load average {load_average()}")
    print(f"preset {PRESET}: {SIZE}x{SIZE} RGB uint8 photo crops in, 224x224 out; "
          f"{'quick run' if args.quick else 'full run'}", flush=True)
    reference = cpu_path(images, cpu_images)
    before, draw = host_draw()
    tables = host_tables()
    host = 1 / (1 / draw + 1 / tables)
    table = [["CPU path (ImagePipeline, 1 image at a time)", f"{cpu_name()}, 1 thread", "1",
              f"{reference:,.0f}", "1.00", f"{1e6 / reference:,.0f}"]]
    for label, rate in [("host draw only, before (d4c1ac4's plain replay)", before),
                        ("host draw only, now (TorchBatchPipeline._draw)", draw),
                        ("host tables only (tone LUTs, HSV tables)", tables),
                        ("host work per sample: draw now + tables", host)]:
        table.append([label, f"{cpu_name()}, 1 thread", "1", f"{rate:,.0f}", f"{rate / reference:.2f}",
                      f"{1e6 / rate:,.1f}"])
    for device in devices:
        rate = batched(images, device, batch, batches)
        table.append([f"TorchBatchPipeline on {device}", device_name(device), str(batch),
                      f"{rate:,.0f}", f"{rate / reference:.2f}", f"{1e6 / rate:,.1f}"])
    print(render(COLUMNS, table, markdown=True, left=3))
    print(f"host draw: {1e6 / before:.1f} -> {1e6 / draw:.1f} us/sample; ceiling per host thread "
          f"{draw:,.0f} img/s on the draw alone, {host:,.0f} img/s with the tables")


if __name__ == "__main__":
    main()
