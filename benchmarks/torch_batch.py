"""Throughput of TorchBatchPipeline("seed7") on each torch device against the CPU path, same run.

Input: 256x256 RGB uint8 crops of real photos (``photo_crops``); seed7 crops 224x224 first, so
every row makes 224x224 images. Rows:

- CPU path: ``ImagePipeline("seed7")``, one image at a time, one thread (OpenCV and torch).
- host draw: the batch backend's per-sample parameter drawing alone (on the host, part of every
  batch call whatever the device), per sample.
- torch on each device (cpu always, cuda where present): ``TorchBatchPipeline("seed7")`` on
  batches already on the device (the copy there is not timed); CUDA is synchronised before and
  after the clock. torch on the CPU uses ``--torch-threads`` threads (default 1: the same one
  core as the CPU path).

Run from the repository root: ``python benchmarks/torch_batch.py [--quick]`` or
``python -m benchmarks.torch_batch``. ``--quick`` (batches of 32) takes under 30 s on a CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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

from augsvc.image import ImagePipeline
from augsvc.image.torch_batch import TorchBatchPipeline

PRESET = "seed7"
SEED = 0
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


def host_draw(count: int) -> float:
    """Samples per second of the batch backend's parameter drawing alone (no pixel work)."""
    pipe = TorchBatchPipeline(PRESET)
    shape = (SIZE, SIZE, 3)

    def run() -> None:
        for k in range(count):
            pipe._draw(SEED, k, shape, k)  # what every batch call does per sample, first

    with gc_paused():
        seconds, _ = timed(run)
    return count / seconds


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
    draw = host_draw(cpu_images)
    table = [["CPU path (ImagePipeline, 1 image at a time)", f"{cpu_name()}, 1 thread", "1",
              f"{reference:,.0f}", "1.00", f"{1e6 / reference:,.0f}"],
             ["host draw only (TorchBatchPipeline params)", f"{cpu_name()}, 1 thread", "1",
              f"{draw:,.0f}", f"{draw / reference:.2f}", f"{1e6 / draw:,.1f}"]]
    for device in devices:
        rate = batched(images, device, batch, batches)
        table.append([f"TorchBatchPipeline on {device}", device_name(device), str(batch),
                      f"{rate:,.0f}", f"{rate / reference:.2f}", f"{1e6 / rate:,.1f}"])
    print(render(COLUMNS, table, markdown=True, left=3))


if __name__ == "__main__":
    main()
