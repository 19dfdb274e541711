"""StreamEpoch throughput of the service vs the same pipeline in-process on the same cores.

Four parts, each against a baseline measured in the same run:

1. img/s of one streaming client through ``augsvc serve --epoch-workers W`` vs a torch DataLoader
   with W worker processes running the same ``ImagePipeline.batch`` over the same epoch plan
   (batch 64, 256x256 RGB photo crops, the ``seed7`` preset), for each W in ``--cores``. Each
   side runs on the same W CPUs (everything pinned with sched_setaffinity when W is less than
   the CPUs available: server, its workers and the client; DataLoader main process and workers).
   Also the CPU time per batch of each side (all its processes), which other jobs on a shared
   machine inflate much less than wall time.
2. p50/p99 latency: time between consecutive batches one client receives, and time to the
   first batch of an epoch (both sides).
3. Scaling with server processes: C concurrent streams, each from its own client process,
   against ``--processes 1`` vs ``--processes P`` (epoch_workers 0).
4. Load: 16 concurrent streams for ``--load-seconds``, each streaming successive epochs of its
   shard; every completed (epoch, shard) is checked for lost, duplicated and reordered samples,
   and the first sample of every batch for its bytes.
"""

from __future__ import annotations

import os

# One thread per process, set before numpy/cv2 load; every process started below inherits it.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["NUMEXPR_NUM_THREADS"] = "1"
os.environ["OPENCV_FOR_THREADS_NUM"] = "1"
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"

import argparse
import contextlib
import gc
import multiprocessing
import platform
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import cv2
import grpc
import numpy as np
import skimage.data
import torch
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)
from torch.utils.data import DataLoader, Dataset, Sampler

from augsvc.client import AugmentClient
from augsvc.datasets import augment_index, epoch_batches, num_batches, open_dataset
from augsvc.image.pipeline import ImagePipeline
from augsvc.image.presets import image_preset
from augsvc.service.process import ServerProcess

cv2.setNumThreads(1)
torch.set_num_threads(1)

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
SIZE = 256
DATASET = "bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the server process

def serve(flags: Sequence[str] = (), *, datasets: dict[str, str] | None = None) -> ServerProcess:
    """``augsvc serve`` on a free loopback port in a subprocess (one thread per process: the
    thread variables set above are inherited); leaving the ``with`` block stops it with SIGTERM.

    Args:
        flags: extra ``augsvc serve`` flags, e.g. ``["--epoch-workers", "2"]``.
        datasets: name -> path, served besides the built-ins.
    """
    served = ["--datasets", ",".join(f"{k}={v}" for k, v in datasets.items())] if datasets else []
    return ServerProcess(["--log-level", "WARNING", *flags, *served], timeout=180.0)


# --------------------------------------------------------------------------- data and baseline

def write_dataset(path: Path, count: int, seed: int = 0) -> None:
    """``count`` random 256x256 RGB crops of scikit-image's sample photos as a .npz (fixed seed)."""
    rng = np.random.default_rng(seed)
    photos = [getattr(skimage.data, name)()[..., :3] for name in PHOTOS]
    images = np.empty((count, SIZE, SIZE, 3), np.uint8)
    for k in range(count):
        photo = photos[k % len(photos)]
        y = int(rng.integers(0, photo.shape[0] - SIZE + 1))
        x = int(rng.integers(0, photo.shape[1] - SIZE + 1))
        images[k] = photo[y:y + SIZE, x:x + SIZE]
    np.savez(path, x=images, y=np.arange(count) % len(PHOTOS))


class EpochItems(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Item k: batch ``k % per_epoch`` of epoch ``k // per_epoch``, read and augmented exactly as
    the server's StreamEpoch does (same plan, same global indices), stacked to (B, H, W, C)."""

    def __init__(self, path: str, preset: str, seed: int, batch_size: int) -> None:
        self.path, self.preset, self.seed, self.batch_size = path, preset, seed, batch_size
        self.size = len(open_dataset(path))
        self.per_epoch = num_batches(self.size, batch_size=batch_size)
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
            plans[epoch] = list(epoch_batches(self.size, seed=self.seed, epoch=epoch,
                                              batch_size=self.batch_size))
        indices = plans[epoch][b]
        samples, labels = dataset.samples(indices)
        where = [augment_index(epoch, int(i), self.size) for i in indices]
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


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its descendants, from /proc
    (live ones, and ended ones their parent has waited for).

    Both sides of a comparison are children of this process (server, DataLoader workers), and
    only one side works at a time, so the difference over a pass is that side's CPU cost, which
    other jobs on a shared machine do not inflate the way they inflate wall time.
    """
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    text = f.read()
            except OSError:  # ended meanwhile
                continue
            fields = text[text.rindex(")") + 2:].split()
            parents[int(entry)] = int(fields[1])
            # utime + stime, and cutime + cstime: children that ended and were waited for
            used[int(entry)] = sum(int(v) for v in fields[11:15]) / CLOCK_TICKS
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += used.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


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


def _timed(batches_per_epoch: Sequence[Iterator[Any]], count: Any) -> Pass:
    """Time consuming each iterator (one per epoch), recording arrival times of its batches."""
    out = Pass()
    gc.collect()
    gc.disable()
    cpu0 = tree_cpu(os.getpid())
    try:
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
    finally:
        gc.enable()
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

    return _timed([_lazy(epoch_stream, e) for e in epochs], len)


def loader_pass(loader: DataLoader[Any], sampler: RangeSampler, per_epoch: int,
                epochs: Sequence[int]) -> Pass:
    """The same epochs through the DataLoader's persistent workers."""

    def epoch_items(epoch: int) -> Iterator[Any]:
        sampler.start, sampler.stop = epoch * per_epoch, (epoch + 1) * per_epoch
        yield from loader

    return _timed([_lazy(epoch_items, e) for e in epochs], lambda item: len(item[1]))


# --------------------------------------------------------------------------- part 1 and 2

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


@dataclass
class CoreResult:
    cores: int
    where: str
    service: Pass
    local: Pass
    round_ratios: list[float]
    identical: bool


def bench_cores(path: str, cores: int, args: argparse.Namespace) -> CoreResult:
    """Service with ``--epoch-workers cores`` vs a DataLoader with ``cores`` workers, ABBA rounds.

    Both sides run on ``cores`` CPUs (server, its workers and the client; the DataLoader's main
    process and workers) unless ``--no-pin``.
    """
    with pinned(cores, not args.no_pin) as where:
        return _bench_cores(path, cores, where, args)


def _bench_cores(path: str, cores: int, where: str, args: argparse.Namespace) -> CoreResult:
    items = EpochItems(path, args.preset, args.seed, args.batch_size)
    sampler = RangeSampler()
    loader: DataLoader[Any] = DataLoader(items, batch_size=None, sampler=sampler, num_workers=cores,
                                         persistent_workers=True, multiprocessing_context="spawn")
    with serve(["--epoch-workers", str(cores)], datasets={DATASET: path}) as server, \
            AugmentClient(server.address, timeout=600) as client:
        client.wait_ready()
        warm = 10**6  # epochs never timed below
        sampler.start, sampler.stop = warm * items.per_epoch, (warm + 1) * items.per_epoch
        local_first = next(iter(loader))[0]
        stream = cast(Generator[Any, None, None], client.stream_epoch(
            DATASET, args.preset, seed=args.seed, epoch=warm, batch_size=args.batch_size))
        remote_first = next(stream)
        stream.close()
        identical = bool(np.array_equal(local_first.numpy(), np.stack(remote_first.samples)))
        service_pass(client, args.preset, args.seed, args.batch_size, [warm + 1])
        loader_pass(loader, sampler, items.per_epoch, [warm + 1])
        service, local, ratios = Pass(), Pass(), []
        n = args.epochs
        for r in range(args.rounds):
            a = range(2 * r * n, (2 * r + 1) * n)  # both sides see the same epochs: same work
            b = range((2 * r + 1) * n, (2 * r + 2) * n)
            s = service_pass(client, args.preset, args.seed, args.batch_size, a)
            t = loader_pass(loader, sampler, items.per_epoch, a)
            t.add(loader_pass(loader, sampler, items.per_epoch, b))
            s.add(service_pass(client, args.preset, args.seed, args.batch_size, b))
            service.add(s)
            local.add(t)
            ratios.append(s.rate / t.rate)
    del loader  # shuts its workers down
    return CoreResult(cores, where, service, local, ratios, identical)


# --------------------------------------------------------------------------- part 3: scaling

def _stream_client(conn: Connection, stream: int, preset: str, batch_size: int) -> None:
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


def bench_processes(path: str, args: argparse.Namespace
                    ) -> tuple[list[int], list[list[float]], list[list[float]]]:
    """img/s of ``args.streams`` client processes against each ``--processes`` value, ABBA rounds,
    and the CPU cores the servers and clients used meanwhile (CPU seconds per second)."""
    ctx = multiprocessing.get_context("spawn")
    pipes, clients = [], []
    for k in range(args.streams):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_stream_client, args=(child, k, args.preset, args.batch_size),
                           daemon=True)
        proc.start()
        pipes.append(parent)
        clients.append(proc)
    counts = sorted(set(args.processes))
    rates: list[list[float]] = [[] for _ in counts]
    cores: list[list[float]] = [[] for _ in counts]
    threads = str(max(4, args.streams))  # every stream gets a request thread on any one process
    try:
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(serve(
                ["--processes", str(p), "--threads", threads, "--epoch-workers", "0"],
                datasets={DATASET: path})) for p in counts]
            order = list(range(len(counts)))
            for r in range(args.scaling_rounds + 1):  # round 0 warms every server up, untimed
                for i in order if r % 2 else order[::-1]:
                    start_at = time.time() + 2.0
                    window = args.window if r > 0 else min(2.0, args.window)
                    for pipe in pipes:
                        pipe.send((servers[i].address, start_at, start_at + window))
                    time.sleep(max(0.0, start_at - time.time()))
                    cpu0, t0 = tree_cpu(os.getpid()), time.perf_counter()
                    time.sleep(max(0.0, start_at + window - time.time()))
                    used = (tree_cpu(os.getpid()) - cpu0) / (time.perf_counter() - t0)
                    results = [pipe.recv() for pipe in pipes]
                    if r > 0:
                        rates[i].append(sum(n / s for n, s in results if s > 0))
                        cores[i].append(used)
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for proc in clients:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return counts, rates, cores


# --------------------------------------------------------------------------- part 4: load

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


def _load_stream(address: str, stream: int, shards: int, args: argparse.Namespace, deadline: float,
                 out: LoadTotals, lock: threading.Lock) -> None:
    """Stream successive epochs of shard ``stream % shards`` until the deadline; check each one."""
    dataset = open_dataset(args.load_dataset)
    pipeline = ImagePipeline(image_preset(args.load_preset))
    size, shard, seed = len(dataset), stream % shards, stream // shards
    mine = LoadTotals()
    with AugmentClient(address, timeout=600) as client:
        epoch = 0
        while time.monotonic() < deadline:
            expected = np.concatenate(list(epoch_batches(size, seed=seed, epoch=epoch,
                                                         batch_size=args.batch_size, shard=shard,
                                                         num_shards=shards)))
            got: list[np.ndarray] = []
            complete = True
            try:
                for batch in client.stream_epoch(args.load_dataset, args.load_preset, seed=seed,
                                                 epoch=epoch, batch_size=args.batch_size,
                                                 shard=shard, num_shards=shards):
                    got.append(batch.indices)
                    index = int(batch.indices[0])
                    image, _ = dataset.sample(index)
                    where = augment_index(epoch, index, size)
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


def bench_load(args: argparse.Namespace) -> tuple[LoadTotals, float, list[str]]:
    """``args.load_streams`` threads, each its own client, against one server for the load time."""
    workers = str(max(args.cores))
    flags = ["--threads", str(args.load_streams), "--epoch-workers", workers]
    totals, lock = LoadTotals(), threading.Lock()
    with serve(flags) as server:
        with AugmentClient(server.address) as probe:  # warm the workers up, untimed
            probe.wait_ready()
            for _ in probe.stream_epoch(args.load_dataset, args.load_preset, seed=0, epoch=10**6,
                                        batch_size=args.batch_size, num_shards=4):
                pass
        t0 = time.monotonic()
        deadline = t0 + args.load_seconds
        threads = [threading.Thread(target=_load_stream, args=(server.address, k, args.load_shards,
                                                               args, deadline, totals, lock))
                   for k in range(args.load_streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - t0
    return totals, seconds, flags


# --------------------------------------------------------------------------- output

def header() -> str:
    import albumentations as A

    cpu = cpu_name()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"grpcio {grpc.__version__}, torch {torch.__version__}, albumentations {A.__version__}, "
            f"opencv {cv2.__version__}, python {platform.python_version()}; CPU: {cpu} "
            f"({os.cpu_count()} cores); load average at start {load}")


def render(columns: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool, left: int = 1) -> str:
    """A table as Markdown or aligned plain text; the first ``left`` columns are text."""
    if markdown:
        lines = ["| " + " | ".join(columns) + " |",
                 "|" + "|".join(["---"] * left + ["---:"] * (len(columns) - left)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    table = [list(columns), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    table.insert(1, ["-" * w for w in widths])
    return "\n".join("  ".join(c.ljust(w) if i < left else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in table)


def ms(values: Sequence[float], q: float) -> str:
    return f"{np.percentile(values, q) * 1e3:.1f}" if values else "-"


def main(argv: list[str] | None = None) -> None:
    """Parse options, run the parts asked for, print one table per part."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, nargs="+", default=[1, 2],
                    help="worker counts W to compare (epoch_workers = DataLoader workers; default 1 2)")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin each W comparison to W CPUs (both sides then use every CPU)")
    ap.add_argument("--images", type=int, default=512, help="images in the dataset (default 512)")
    ap.add_argument("--batch-size", type=int, default=64, help="default 64")
    ap.add_argument("--preset", default="seed7", help="image pipeline preset (default seed7)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=4, help="ABBA rounds per comparison (default 4)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per timed pass (default 2)")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2],
                    help="server process counts for the scaling part (default 1 2)")
    ap.add_argument("--streams", type=int, default=4,
                    help="concurrent client processes in the scaling part (default 4)")
    ap.add_argument("--window", type=float, default=8.0, help="seconds per scaling pass (default 8)")
    ap.add_argument("--scaling-rounds", type=int, default=3, help="ABBA rounds of the scaling part")
    ap.add_argument("--load-seconds", type=float, default=60.0, help="load run length (default 60)")
    ap.add_argument("--load-streams", type=int, default=16, help="load run streams (default 16)")
    ap.add_argument("--load-shards", type=int, default=4, help="shards per epoch in the load run")
    ap.add_argument("--load-dataset", default="digits", help="built-in dataset of the load run")
    ap.add_argument("--load-preset", default="digits", help="preset of the load run")
    ap.add_argument("--skip", nargs="+", default=[], choices=("cores", "processes", "load"),
                    help="parts to leave out")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 256 images, 1 round of 1 epoch, 1 round of 2 s scaling passes, 5 s load")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = ap.parse_args(argv)
    if args.quick:
        args.images, args.rounds, args.epochs, args.window, args.load_seconds = 256, 1, 1, 2.0, 5.0
        args.scaling_rounds = 1
    gc.freeze()
    print(header())
    print(f"{SIZE}x{SIZE} RGB photo crops, {args.images} images, preset {args.preset}, batch "
          f"{args.batch_size}; {args.rounds} ABBA rounds of {args.epochs} epoch(s) per pass; "
          f"one thread per process (OpenCV, BLAS)", flush=True)
    with tempfile.TemporaryDirectory(prefix="augsvc-bench-") as tmp:
        path = str(Path(tmp) / "bench.npz")
        write_dataset(Path(path), args.images)
        if "cores" not in args.skip:
            results = [bench_cores(path, w, args) for w in args.cores]
            print("\nOne stream through the service vs in-process (DataLoader), same cores:")
            bs = args.batch_size
            print(render(("cores W", "CPUs", "in-process img/s", "service img/s", "service/in-process",
                          "median round ratio", "in-process CPU ms/batch", "service CPU ms/batch",
                          "same bytes"),
                         [[str(r.cores), r.where, f"{r.local.rate:,.0f}", f"{r.service.rate:,.0f}",
                           f"{r.service.rate / r.local.rate:.3f}",
                           f"{statistics.median(r.round_ratios):.3f}", f"{r.local.cpu_ms(bs):.1f}",
                           f"{r.service.cpu_ms(bs):.1f}", "yes" if r.identical else "NO"]
                          for r in results], args.markdown, left=2))
            print("\nLatency per batch (ms): gap = between consecutive batches, first = from the "
                  "call to the first batch of an epoch:")
            rows = []
            for r in results:
                for side, run in (("service", r.service), ("in-process", r.local)):
                    rows.append([str(r.cores), side, ms(run.gaps, 50), ms(run.gaps, 99),
                                 ms(run.first, 50), ms(run.first, 99), str(len(run.gaps) + len(run.first))])
            print(render(("cores W", "side", "gap p50", "gap p99", "first p50", "first p99", "batches"),
                         rows, args.markdown, left=2), flush=True)
        if "processes" not in args.skip:
            counts, rates, cores = bench_processes(path, args)
            base = statistics.median(rates[0])
            print(f"\nScaling: {args.streams} concurrent streams (one client process each), "
                  f"epoch_workers 0, {args.window:g} s per pass; cores used = CPU seconds of the "
                  "servers and clients per second:")
            rows = []
            for p, values, used in zip(counts, rates, cores, strict=True):
                ratios = [v / b for v, b in zip(values, rates[0], strict=True)]
                per_core = [v / c for v, c in zip(values, used, strict=True) if c > 0]
                rows.append([str(p), f"{statistics.median(values):,.0f}",
                             f"{statistics.median(values) / base:.2f}", f"{statistics.median(ratios):.2f}",
                             f"{statistics.median(used):.2f}", f"{statistics.median(per_core):,.0f}",
                             " ".join(f"{v:,.0f}" for v in values)])
            print(render(("server processes", "img/s (median)", f"vs {counts[0]} process",
                          "median round ratio", "cores used", "img/s per core used", "img/s per round"),
                         rows, args.markdown), flush=True)
    if "load" not in args.skip:
        totals, seconds, flags = bench_load(args)
        print(f"\nLoad: {args.load_streams} concurrent streams (threads, one AugmentClient each) for "
              f"{seconds:.0f} s; {args.load_dataset} / preset {args.load_preset}, batch "
              f"{args.batch_size}, {args.load_shards} shards; server: augsvc serve {' '.join(flags)}")
        print(render(("epoch-shards done", "abandoned at the deadline", "samples", "img/s", "lost",
                      "duplicated", "out of order", "bytes checked", "wrong bytes", "errors"),
                     [[str(totals.completed), str(totals.abandoned), f"{totals.samples:,}",
                       f"{totals.samples / seconds:,.0f}", str(totals.lost), str(totals.duplicated),
                       str(totals.reordered), f"{totals.checked:,}", str(totals.wrong_bytes),
                       str(len(totals.errors))]], args.markdown, left=0))
        for line in totals.errors[:5]:
            print("  ", line)


if __name__ == "__main__":
    main()
