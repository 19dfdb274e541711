"""The main job: start the service, train the CNN on digits it streams, report, stop the service.

``augsvc demo`` / ``make run``: an ``augsvc serve`` process on a free loopback port (batches built
on one worker process per core), a health check until SERVING, a short training run fed by
StreamEpoch, then SIGTERM and a check that the server exited cleanly. Everything lands under
``runs/<timestamp>/``: metrics.csv, curves.png, gallery.png (what the model saw), summary.md.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from augsvc.service.process import ServerProcess, wait_serving
from training.config import TrainConfig, load_config

__all__ = ["DEMO_RUN", "run_demo"]

DEMO_RUN: dict[str, Any] = {
    "seed": 0,
    "epochs": 4,
    "model": {"name": "cnn", "width": 16, "depth": 4, "norm": "batch", "dropout": 0.1},
    "data": {"dataset": "digits", "source": "remote", "augment": "digits", "batch_size": 64,
             "holdout_fraction": 0.2},
    "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.01},
    "schedule": {"name": "cosine", "warmup_steps": 20},
}


def _summary(config: TrainConfig, history: list[dict[str, float]], out: Path, server: str, device: str,
             seconds: float) -> str:
    lines = [f"# augsvc demo: {config.model.name} on {config.data.dataset}, fed by StreamEpoch", "",
             f"server: {server}; device: {device}; {seconds:.0f} s in all", "",
             "| epoch | train loss | train acc | val loss | val acc | samples/s | input wait |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {int(r['epoch'])} | {r['train_loss']:.4f} | {r['train_accuracy']:.3f} | "
              f"{r['val_loss']:.4f} | {r['val_accuracy']:.3f} | {r['samples_per_second']:.0f} | "
              f"{r['input_wait']:.0%} |" for r in history]
    lines += ["", "input wait: the share of each epoch the trainer spent waiting for its next batch "
              "(high: the service is the bottleneck; add epoch workers or replicas)"]
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
    plot_curves(result.history, out / "curves.png", title="CNN on digits, augmented by augsvc",
                best_epoch=result.best_epoch)
    plot_gallery(images, labels, trainer.info.class_names, out / "gallery.png")
    print("server stopped cleanly (SIGTERM, exit 0)\n", flush=True)
    print(_summary(config, result.history, out, server.address, str(trainer.device),
                   time.perf_counter() - start))
    print(f"outputs: {out}/ (summary.md, metrics.csv, curves.png, gallery.png, last.pt, tensorboard/)")
    return out
