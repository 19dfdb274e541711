"""The server, the data, the in-process baseline, and the work of each client process and load
thread of ``service_throughput.py`` (``train_throughput.py`` starts its server with ``serve`` too).

Importing it sets nothing: what it starts inherits the thread variables of the script that runs
it (``common.one_thread_per_process``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import grpc
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from augsvc.client import AugmentClient
from augsvc.datasets import open_dataset
from augsvc.image.pipeline import ImagePipeline
from augsvc.image.presets import image_preset
from augsvc.plan import EpochPlan
from augsvc.service.process import ServerProcess
from benchmarks.common import PHOTOS, gc_paused, photo_crops, tree_cpu

DATASET = "bench"


# --------------------------------------------------------------------------- the server process

def serve(flags: Sequence[str] = (), *, datasets: dict[str, str] | None = None) -> ServerProcess:
    """``augsvc serve`` on a free loopback port in a subprocess (which inherits the thread
    variables); leaving the ``with`` block stops it with SIGTERM.

    Args:
        flags: extra ``augsvc serve`` flags, e.g. ``["--epoch-workers", "2"]``.
        datasets: name -> path, served besides the built-ins.
    """
    served = ["--datasets", ",".join(f"{k}={v}" for k, v in datasets.items())] if datasets else []
    return ServerProcess(["--log-level", "WARNING", *flags, *served], timeout=180.0)


# --------------------------------------------------------------------------- data and baseline

def write_dataset(path: Path, count: int, seed: int = 0) -> None:
    """``count`` photo crops (``common.photo_crops``) labelled by photo, as a .npz the server reads."""
    np.savez(path, x=np.stack(photo_crops(count, seed)), y=np.arange(count) % len(PHOTOS))


class EpochItems(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Item k: batch ``k % per_epoch`` of epoch ``k // per_epoch``, read and augmented exactly as
    the server's StreamEpoch does (same plan, same global indices), stacked to (B, H, W, C)."""

    def __init__(self, path: str, preset: str, seed: int, batch_size: int) -> None:
        self.path, self.preset, self.seed, self.batch_size = path, preset, seed, batch_size
        self.plan = EpochPlan(len(open_dataset(path)), seed, 0, batch_size)
        self.per_epoch = self.plan.num_batches
        self._state: tuple[Any, ImagePipeline, dict[int, list[np.ndarray]]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_state": None}  # workers load the data themselves

    def __len__(self) -> int:
        return 10**9

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._state is None:
            self._state = (open_dataset(self.path), ImagePipeline(image_preset(self.preset)), {})
        dataset, pipeline, plans = self._state
        epoch, b = divmod(k, self.per_epoch)
        if epoch not in plans:
            plans.clear()
            plans[epoch] = list(self.plan.for_epoch(epoch).batches())
        indices = plans[epoch][b]
        samples, labels = dataset.samples(indices)
        where = self.plan.for_epoch(epoch).augment_indices(indices)
        results = pipeline.batch(cast(list[np.ndarray], samples), seed=self.seed, indices=where)
        return torch.from_numpy(np.stack([r.image for r in results])), torch.from_numpy(labels)


class RangeSampler(Sampler[int]):
    """Yields ``range(start, stop)``; set before each ``iter(loader)`` (workers persist)."""

    def __init__(self) -> None:
        self.start = self.stop = 0

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass
class Pass:
    """One timed pass over some epochs: seconds, CPU seconds, images, first-batch waits and gaps."""

    seconds: float = 0.0
    cpu: float = 0.0
    images: int = 0
    first: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)

    def add(self, other: Pass) -> None:
        self.seconds += other.seconds
        self.cpu += other.cpu
        self.images += other.images
        self.first += other.first
        self.gaps += other.gaps

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def cpu_ms(self, batch_size: int) -> float:
        """CPU milliseconds per batch of ``batch_size`` images."""
        return self.cpu / self.images * batch_size * 1e3 if self.images else 0.0


def _timed_epochs(batches_per_epoch: Sequence[Iterator[Any]], count: Any) -> Pass:
    """Time consuming each iterator (one per epoch), recording arrival times of its batches."""
    out = Pass()
    with gc_paused():
        cpu0 = tree_cpu(os.getpid())
        t0 = time.perf_counter()
        for make in batches_per_epoch:
            start = prev = time.perf_counter()
            for k, batch in enumerate(make):
                now = time.perf_counter()
                (out.first if k == 0 else out.gaps).append(now - (start if k == 0 else prev))
                out.images += count(batch)
                prev = time.perf_counter()
        out.seconds = time.perf_counter() - t0
        out.cpu = tree_cpu(os.getpid()) - cpu0
    return out


def _lazy(fn: Any, *args: Any) -> Iterator[Any]:
    """An iterator that calls ``fn(*args)`` only when first advanced (so timing includes the call)."""
    yield from fn(*args)


def service_pass(client: AugmentClient, preset: str, seed: int, batch_size: int,
                 epochs: Sequence[int]) -> Pass:
    """Stream ``epochs`` one after another; each batch is decoded and stacked to (B, H, W, C)."""

    def epoch_stream(epoch: int) -> Iterator[np.ndarray]:
        for batch in client.stream_epoch(DATASET, preset, seed=seed, epoch=epoch, batch_size=batch_size):
            yield np.stack(batch.samples)

    return _timed_epochs([_lazy(epoch_stream, e) for e in epochs], len)


def loader_pass(loader: DataLoader[Any], sampler: RangeSampler, per_epoch: int,
                epochs: Sequence[int]) -> Pass:
    """The same epochs through the DataLoader's persistent workers."""

    def epoch_items(epoch: int) -> Iterator[Any]:
        sampler.start, sampler.stop = epoch * per_epoch, (epoch + 1) * per_epoch
        yield from loader

    return _timed_epochs([_lazy(epoch_items, e) for e in epochs], lambda item: len(item[1]))


# --------------------------------------------------------------------------- pinning

def set_affinity(cpus: set[int]) -> None:
    """Pin every thread of this process to ``cpus``; processes started afterwards inherit it."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that just ended
            os.sched_setaffinity(int(tid), cpus)


@contextlib.contextmanager
def pinned(count: int, enabled: bool) -> Iterator[str]:
    """Inside: this process (and what it starts) runs on ``count`` of its CPUs; yields a note."""
    usable = sorted(os.sched_getaffinity(0))
    if not enabled or count >= len(usable) or not hasattr(os, "sched_setaffinity"):
        yield f"all {len(usable)} CPUs"
        return
    set_affinity(set(usable[:count]))
    try:
        yield f"pinned to CPU(s) {','.join(map(str, usable[:count]))}"
    finally:
        set_affinity(set(usable))


# --------------------------------------------------------------------------- part 3: a client process

def stream_client(conn: Connection, stream: int, preset: str, batch_size: int) -> None:
    """A client process: for each command (address, start_at, end_at), stream epochs and report
    (images received after the first batch inside the window, seconds from it to the last one)."""
    while True:
        command = conn.recv()
        if command is None:
            return
        address, start_at, end_at = command
        with AugmentClient(address, timeout=600) as client:
            client.wait_ready()

            def batches() -> Generator[Any, None, None]:
                for epoch in range(10**9):
                    yield from client.stream_epoch(DATASET, preset, seed=stream, epoch=epoch,
                                                   batch_size=batch_size)

            stream_of = batches()
            next(stream_of)  # connected and warm before the window opens
            first = last = None
            images = 0
            for batch in stream_of:
                np.stack(batch.samples)
                now = time.time()
                if now >= end_at:
                    break
                if now >= start_at:
                    if first is None:
                        first = now
                    else:
                        images += len(batch.samples)
                    last = now
            stream_of.close()  # cancels the stream
        conn.send((images, (last - first) if first is not None and last is not None else 0.0))


# --------------------------------------------------------------------------- part 4: a load thread

@dataclass
class LoadTotals:
    completed: int = 0
    abandoned: int = 0
    samples: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    checked: int = 0
    wrong_bytes: int = 0
    errors: list[str] = field(default_factory=list)


def load_stream(address: str, stream: int, shards: int, args: argparse.Namespace, deadline: float,
                 out: LoadTotals, lock: threading.Lock) -> None:
    """Stream successive epochs of shard ``stream % shards`` until the deadline; check each one."""
    dataset = open_dataset(args.load_dataset)
    pipeline = ImagePipeline(image_preset(args.load_preset))
    size, shard, seed = len(dataset), stream % shards, stream // shards
    mine = LoadTotals()
    with AugmentClient(address, timeout=600) as client:
        epoch = 0
        while time.monotonic() < deadline:
            plan = EpochPlan(size, seed, epoch, args.batch_size, shard=shard, num_shards=shards)
            expected = np.concatenate(list(plan.batches()))
            got: list[np.ndarray] = []
            complete = True
            try:
                for batch in client.stream_epoch(args.load_dataset, args.load_preset, seed=seed,
                                                 epoch=epoch, batch_size=args.batch_size,
                                                 shard=shard, num_shards=shards):
                    got.append(batch.indices)
                    index = int(batch.indices[0])
                    image, _ = dataset.sample(index)
                    where = plan.augment_indices([index])[0]
                    want = pipeline(cast(np.ndarray, image), seed=seed, index=where).image
                    mine.checked += 1
                    mine.wrong_bytes += not np.array_equal(want, batch.samples[0])
                    if time.monotonic() >= deadline:
                        complete = False
                        break
            except Exception as exc:  # counted, and the stream goes on with the next epoch
                what = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.Call) \
                    else f"{type(exc).__name__}: {exc}"
                mine.errors.append(f"stream {stream} epoch {epoch}: {what}")
                complete = False
            if complete:
                received = np.concatenate(got) if got else np.empty(0, np.int64)
                want_count, got_count = Counter(expected.tolist()), Counter(received.tolist())
                mine.completed += 1
                mine.samples += len(received)
                mine.lost += sum((want_count - got_count).values())
                mine.duplicated += sum((got_count - want_count).values())
                mine.reordered += not np.array_equal(received, expected)
            else:
                mine.abandoned += 1
            epoch += 1
    with lock:
        for name in ("completed", "abandoned", "samples", "lost", "duplicated", "reordered",
                     "checked", "wrong_bytes"):
            setattr(out, name, getattr(out, name) + getattr(mine, name))
        out.errors += mine.errors
