"""The main job: start the service, train the CNN on digits it streams, report, stop the service.

``augsvc demo`` / ``make run``: an ``augsvc serve`` process on a free loopback port (batches built
on one worker process per core), a health check until SERVING, a short training run fed by
StreamEpoch, then SIGTERM and a check that the server exited cleanly. Everything lands under
``runs/<timestamp>/``: metrics.csv, curves.png, gallery.png (what the model saw), summary.md.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from training.config import TrainConfig, load_config

__all__ = ["DEMO_RUN", "ServerProcess", "run_demo", "wait_serving"]

DEMO_RUN: dict[str, Any] = {
    "seed": 0,
    "epochs": 4,
    "model": {"name": "cnn", "width": 16, "depth": 4, "norm": "batch", "dropout": 0.1},
    "data": {"dataset": "digits", "source": "remote", "augment": "digits", "batch_size": 64,
             "holdout_fraction": 0.2},
    "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.01},
    "schedule": {"name": "cosine", "warmup_steps": 20},
}


def wait_serving(address: str, timeout: float = 60.0) -> None:
    """Poll the standard health service until it reports SERVING.

    Raises:
        TimeoutError: not SERVING within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"augsvc at {address} was not SERVING after {timeout:.0f} s")
            time.sleep(0.2)


class ServerProcess:
    """``augsvc serve`` as a child process: started, its address read from the ready line.

    Args:
        args: ``augsvc serve`` arguments (``--port 0`` comes first, so a later one wins).

    Attributes:
        logs: the JSON call-log lines the server has written so far (one per call at INFO).
    """

    def __init__(self, args: Sequence[str] = (), *, timeout: float = 120.0) -> None:
        command = [sys.executable, "-m", "augsvc.cli", "serve", "--port", "0", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        self.logs: list[str] = []
        self.metrics_port: int | None = None  # when started with --metrics-port
        self.address = self._ready(timeout)
        # keep draining stderr (JSON call logs) so the child never blocks on a full pipe
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _ready(self, timeout: float) -> str:
        assert self.process.stderr is not None
        lines: list[str] = []
        timer = threading.Timer(timeout, self.process.kill)
        timer.start()
        try:
            for line in self.process.stderr:
                lines.append(line)
                if '"metrics_port": ' in line and json.loads(line)["metrics_port"] is not None:
                    self.metrics_port = int(json.loads(line)["metrics_port"])
                match = re.search(r"serving \S+ on (\S+:\d+)", line)
                if match:
                    return match.group(1)
        finally:
            timer.cancel()
        raise RuntimeError("augsvc serve stopped before it was ready:\n" + "".join(lines[-20:]))

    def _read_rest(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.startswith("{"):
                self.logs.append(line)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful: health NOT_SERVING, in-flight calls finish); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def _summary(config: TrainConfig, history: list[dict[str, float]], out: Path, server: str, device: str,
             seconds: float) -> str:
    lines = [f"# augsvc demo: {config.model.name} on {config.data.dataset}, fed by StreamEpoch", "",
             f"server: {server}; device: {device}; {seconds:.0f} s in all", "",
             "| epoch | train loss | train acc | val loss | val acc | samples/s |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {int(r['epoch'])} | {r['train_loss']:.4f} | {r['train_accuracy']:.3f} | "
              f"{r['val_loss']:.4f} | {r['val_accuracy']:.3f} | {r['samples_per_second']:.0f} |"
              for r in history]
    lines += ["", "![curves](curves.png)", "", "![what the model saw](gallery.png)", ""]
    text = "\n".join(lines)
    (out / "summary.md").write_text(text)
    return text


def run_demo(root: str | Path = "runs", *, epochs: int | None = None, workers: int | None = None,
             overrides: dict[str, Any] | None = None) -> Path:
    """Run the whole demo; returns the run folder.

    Raises:
        RuntimeError: the server did not start, or did not stop cleanly.
    """
    from training.plots import plot_curves, plot_gallery
    from training.trainer import Trainer

    start = time.perf_counter()
    out = Path(root) / datetime.now().strftime("%Y%m%d-%H%M%S")
    workers = workers if workers is not None else max(1, (os.cpu_count() or 2) - 1)
    print(f"starting augsvc serve (StreamEpoch batches on {workers} worker processes) ...", flush=True)
    server = ServerProcess(["--epoch-workers", str(workers), "--log-level", "WARNING"])
    try:
        wait_serving(server.address)
        print(f"augsvc is SERVING on {server.address}", flush=True)
        raw = {**DEMO_RUN, "out_dir": str(out),
               "data": {**DEMO_RUN["data"], "addresses": [server.address]}}
        if epochs is not None:
            raw["epochs"] = epochs
        config = load_config(raw, overrides)
        trainer = Trainer(config)
        print(f"training {config.model.name} on {config.data.dataset} over the service on "
              f"{trainer.device}: {trainer.info.train_size} train / {trainer.info.holdout_size} "
              f"holdout samples, {config.epochs} epochs", flush=True)
        result = trainer.fit()
        images, labels = trainer.source.gallery(0, count=32)
        trainer.source.close()
    finally:
        code = server.stop()
    if code != 0:
        raise RuntimeError(f"augsvc serve exited with {code} after SIGTERM (expected 0)")
    plot_curves(result.history, out / "curves.png", title="CNN on digits, augmented by augsvc")
    plot_gallery(images, labels, trainer.info.class_names, out / "gallery.png")
    print("server stopped cleanly (SIGTERM, exit 0)\n", flush=True)
    print(_summary(config, result.history, out, server.address, str(trainer.device),
                   time.perf_counter() - start))
    print(f"outputs: {out}/ (summary.md, metrics.csv, curves.png, gallery.png, last.pt, tensorboard/)")
    return out
