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

import argparse
import contextlib
import gc
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

# Run as a file (python benchmarks/x.py) the script's folder is on sys.path, not the repository
# root that `benchmarks.` needs (python -m puts the current folder, the root, there itself).
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    SIZE,
    cpu_summary,
    load_average,
    one_thread_per_process,
    render,
    tree_cpu,
    versions,
)

# Run, not imported: one thread per process before numpy, OpenCV and torch load and size their
# thread pools; the servers and worker processes started below inherit it.
if __name__ == "__main__":
    one_thread_per_process()

import cv2
import grpc
import numpy as np
import torch
from torch.utils.data import DataLoader

from augsvc.client import AugmentClient
from benchmarks.service_workloads import (
    DATASET,
    EpochItems,
    LoadTotals,
    Pass,
    RangeSampler,
    load_stream,
    loader_pass,
    pinned,
    serve,
    service_pass,
    stream_client,
    write_dataset,
)

# --------------------------------------------------------------------------- part 1 and 2

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

def bench_processes(path: str, args: argparse.Namespace
                    ) -> tuple[list[int], list[list[float]], list[list[float]]]:
    """img/s of ``args.streams`` client processes against each ``--processes`` value, ABBA rounds,
    and the CPU cores the servers and clients used meanwhile (CPU seconds per second)."""
    ctx = multiprocessing.get_context("spawn")
    pipes, clients = [], []
    for k in range(args.streams):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=stream_client, args=(child, k, args.preset, args.batch_size),
                           daemon=True)
        proc.start()
        pipes.append(parent)
        clients.append(proc)
    counts = sorted(set(args.processes))
    rates: list[list[float]] = [[] for _ in counts]
    cores: list[list[float]] = [[] for _ in counts]
    # Every stream gets a request slot on any one process, and as many again: a client asks for
    # its next epoch as soon as the last batch arrives, and the server may not have released the
    # finished stream's slot yet (the call ends on its side a moment later). With exactly one
    # slot per stream, that next call was refused with a 1 s retry hint, several times a pass.
    threads = str(2 * max(4, args.streams))
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
        threads = [threading.Thread(target=load_stream, args=(server.address, k, args.load_shards,
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
    """Versions, CPU and load in one line."""
    import albumentations as A

    return (f"{versions(grpcio=grpc, torch=torch, albumentations=A, opencv=cv2)}; CPU: {cpu_summary()}; "
            f"load average at start {load_average()}")


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
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
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
