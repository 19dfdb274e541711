"""The training loop: one config in, a trained model, metrics (CSV + TensorBoard), checkpoints, plots.

Per step: ``loss = mean CE (per pixel for segmentation) + strength * R(W)``; backward; optional
global-norm clipping; optimizer and schedule step. Per epoch: validation on the holdout, a CSV
row, a checkpoint (``last.pt``; ``best.pt`` when the monitored metric improves), early stopping.

Reproducibility: the model is created from the run seed; batches are a pure function of
(seed, epoch) (see ``training.data``); torch's generator (dropout) is reseeded from
(seed, epoch) at the start of every epoch. A run resumed from the checkpoint of epoch ``e``
therefore produces the same metrics, bit for bit, as the run that never stopped. A resumed run
whose ``epochs`` (so its total step count) changed re-plans the LR schedule for the new total and
continues at the step it stopped at.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from augsvc.seeding import sample_entropy
from training.config import ConfigError, TrainConfig, to_dict
from training.data import BatchSource, DataInfo
from training.detection import DETECTION_FIELDS, create_task, epoch_line, evaluate_detection, to_device
from training.devices import distributed, resolve_device, to_inputs
from training.models import MODELS, create_model
from training.optim import create_optimizer
from training.regularization import EarlyStopping, penalty
from training.schedules import create_schedule, schedule_factor
from training.segmentation import MeanIoU, check_metric, check_task
from training.sources import create_source
from training.timing import Waited, WaitExporter

__all__ = ["METRIC_FIELDS", "SEGMENTATION_FIELDS", "RunResult", "Trainer"]

METRIC_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                 "seconds", "samples_per_second", "input_wait")
SEGMENTATION_FIELDS = (*METRIC_FIELDS, "val_miou")  # accuracy per pixel, and the mean IoU


@dataclass
class RunResult:
    """What a run produced."""

    history: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path = Path()
    stopped_early: bool = False
    metric: str = "val_loss"
    best_epoch: int | None = None  # 1-based, as in metrics.csv; None: no finite metric yet
    best_value: float | None = None
    best_path: Path | None = None  # OUT/best.pt, when this run's folder holds it
    skipped: dict[int, str] = field(default_factory=dict)  # unreadable samples: index -> why
    val_skipped: dict[int, str] = field(default_factory=dict)  # the same, of data.val_dataset

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def _epoch_seed(seed: int, epoch: int) -> int:
    return sample_entropy(seed, epoch, 7) % (2**63)


class Trainer:
    """Builds everything a config names and runs it.

    Args:
        config: the run.
        source: a batch source to use instead of building ``config.data`` (tests, experiments).
        progress: show tqdm bars (default: when stderr is a terminal).
        report: print one line per epoch (rank 0).

    Raises:
        ConfigError: anything in the config that cannot be built, naming the field.
    """

    def __init__(self, config: TrainConfig, *, source: BatchSource | None = None,
                 progress: bool | None = None, report: bool = True) -> None:
        self.config = config
        self.report = report
        self.device = resolve_device(config.device)
        self.rank, self.world = distributed()
        self.exporter = WaitExporter.serving(config.metrics_port, self.rank)
        self.progress = progress
        self.source = source or create_source(config.data, config.seed,
                                              pin_memory=self.device.type == "cuda")
        self.info: DataInfo = self.source.info
        self.fields = {"segmentation": SEGMENTATION_FIELDS, "detection": DETECTION_FIELDS}.get(
            self.info.task, METRIC_FIELDS)
        self.task = create_task(self.info.task)
        check_metric(config.early_stopping.metric, self.info.task)
        self.model = self._model().to(self.device)
        if config.channels_last and self.info.kind == "image":
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.net: nn.Module = self.model
        if self.world > 1:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.optimizer = self._optimizer()
        self.total_steps = total = config.epochs * self.steps_per_epoch()
        try:
            self.scheduler = create_schedule(config.schedule.name, self.optimizer, total,
                                             warmup_steps=config.schedule.warmup_steps,
                                             **config.schedule.options)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"schedule: {exc}") from None
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp) \
            if self.device.type == "cuda" else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        es = config.early_stopping
        self.early = EarlyStopping(patience=es.patience if es.patience is not None else 10**9,
                                   mode="min" if es.metric == "val_loss" else "max",
                                   min_delta=es.min_delta)
        self.metric = es.metric  # what best.pt follows, with or without early stopping
        self.best_value: float | None = None
        self.best_epoch: int | None = None  # 1-based
        self.out_dir = Path(config.out_dir)
        self.history: list[dict[str, float]] = []
        self.start_epoch = 0

    # ---- building ------------------------------------------------------------------------
    def _model(self) -> nn.Module:
        cfg = self.config.model
        info = MODELS.get(cfg.name)
        if info is None:
            raise ConfigError(f"model.name: unknown model {cfg.name!r}; known: {sorted(MODELS)}")
        if info.input != self.info.kind:
            raise ConfigError(f"model.name: {cfg.name} takes {info.input} input but "
                              f"{self.config.data.dataset} is a {self.info.kind} dataset")
        check_task(cfg.name, info.task, self.info.task, self.config.data.dataset)
        dims: dict[str, Any] = {"num_classes": self.info.num_classes}
        if self.info.kind == "image":
            dims.update(in_channels=self.info.in_channels, image_size=self.info.image_size)
        else:
            dims.update(vocab_size=self.info.vocab_size)
        dims = {name: value for name, value in dims.items() if name in info.required}
        try:
            return create_model(cfg.name, **dims, **cfg.options, init=cfg.init, seed=self.config.seed)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"model: {exc}") from None

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config.optimizer
        options = dict(cfg.options)
        if cfg.lr is not None:
            options["lr"] = cfg.lr
        for key, value in options.items():
            if isinstance(value, list):
                options[key] = tuple(value)  # YAML lists -> betas tuples
        try:
            return create_optimizer(cfg.name, self.model, **options)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"optimizer: {exc}") from None

    def steps_per_epoch(self) -> int:
        # every rank streams its own shard; shard 0 is the longest (Join covers shorter ones)
        return self.source.num_train_batches(shard=0, num_shards=self.world)

    # ---- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to continue after the current epoch."""
        return {"epoch": len(self.history), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "history": self.history,
                "early": vars(self.early).copy(), "config": to_dict(self.config),
                "total_steps": self.total_steps,
                "best": {"metric": self.metric, "value": self.best_value, "epoch": self.best_epoch}}

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)  # a crash mid-write never leaves a broken checkpoint

    def load(self, path: str | Path) -> None:
        """Continue from a checkpoint written by :meth:`save`.

        Raises:
            ConfigError: the file is missing or was written for another model.
        """
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
            self.model.load_state_dict(state["model"])
        except (OSError, RuntimeError, KeyError) as exc:
            raise ConfigError(f"cannot resume from {path}: {exc}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        for key, value in state["early"].items():
            setattr(self.early, key, value)
        self.start_epoch = int(state["epoch"])
        best = state.get("best") or {}
        if best.get("metric") == self.metric:
            self.best_value, self.best_epoch = best["value"], best["epoch"]
        else:  # an older checkpoint, or another metric now: the history holds every epoch's value
            self.best_value, self.best_epoch = None, None
            for row in self.history:
                self._track_best(row)
        if state.get("total_steps") != self.total_steps:
            self._replan(state.get("total_steps"))

    def _replan(self, old_total: int | None) -> None:
        """Put the schedule planned for this config's total in charge from the current step.

        The optimizer state carries the rate the old plan set for this step (0 at the end of a
        finished cosine run); without this, the first epoch after the resume would use it.
        """
        cfg, step = self.config.schedule, self.scheduler.last_epoch
        factor = schedule_factor(cfg.name, self.total_steps, warmup_steps=cfg.warmup_steps,
                                 **cfg.options)
        self.scheduler.lr_lambdas = [factor] * len(self.optimizer.param_groups)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs, strict=True):
            group["lr"] = base * factor(step)
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        if self.report and self.rank == 0 and old_total is not None:
            print(f"schedule: re-planned for {self.total_steps} steps (was {old_total}), "
                  f"continuing at step {step}", flush=True)

    def _track_best(self, row: dict[str, float]) -> bool:
        """Record ``row`` if its monitored metric beats the best so far (NaN never does)."""
        value = row[self.metric]
        if not math.isfinite(value):
            return False
        if self.best_value is not None and (value >= self.best_value if self.metric == "val_loss"
                                            else value <= self.best_value):
            return False
        self.best_value, self.best_epoch = value, int(row["epoch"])
        return True

    def _should_stop(self, value: float, epoch: int) -> bool:
        """Whether early stopping (when configured) ends the run at ``epoch``: the rule is
        ``EarlyStopping.step``'s, which also counts the epochs without improvement."""
        stop = self.early.step(value, epoch)
        return self.config.early_stopping.patience is not None and stop

    # ---- the loop ------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training part; returns train loss/accuracy and throughput."""
        cfg = self.config
        torch.manual_seed(_epoch_seed(cfg.seed, epoch))
        self.net.train()
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        seen, targets, start = 0, 0, time.perf_counter()  # samples; labels (pixels for segmentation)
        show = self.rank == 0 and (self.progress if self.progress is not None else os.isatty(2))
        bar = tqdm(total=self.steps_per_epoch(), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", disable=not show, leave=False)
        join: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.world > 1:
            from torch.distributed.algorithms.join import Join
            join = Join([self.net])  # type: ignore[list-item]
        with join:
            batches = Waited(self.source.train_batches(epoch, shard=self.rank, num_shards=self.world),
                             self.exporter.add if self.exporter is not None else None)
            for x, y in batches:
                inputs = to_inputs(x, self.device, channels_last=cfg.channels_last)
                y = to_device(y, self.device)
                with self._autocast():
                    logits = self.net(inputs)
                    loss = self.task.loss(logits, y)
                reg = cfg.regularization
                objective = loss + penalty(self.model, reg.penalty, reg.strength, beta=reg.beta)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(objective).backward()
                if cfg.grad_clip is not None:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()
                total_loss += loss.detach() * self.task.count(y)
                correct += self.task.hits(logits, y)
                seen, targets = seen + len(y), targets + self.task.count(y)
                if bar.n % 10 == 0 and not bar.disable:
                    bar.set_postfix(loss=f"{float(loss):.3f}",
                                    img_s=f"{seen / (time.perf_counter() - start):.0f}")
                bar.update()
        bar.close()
        seconds = time.perf_counter() - start
        totals = torch.stack([total_loss, correct.to(total_loss.dtype),
                              torch.tensor(float(seen), device=self.device),
                              torch.tensor(float(targets), device=self.device)])
        if self.world > 1:
            torch.distributed.all_reduce(totals)
        loss_sum, right, count, labels = (float(v) for v in totals)
        return {"train_loss": loss_sum / max(labels, 1),
                "train_accuracy": right / max(labels, 1) if self.task.accuracy else math.nan,
                "seconds": seconds, "samples_per_second": count / seconds if seconds else 0.0,
                "input_wait": batches.seconds / seconds if seconds else 0.0}  # share of the epoch

    @torch.no_grad()
    def evaluate(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None
                 ) -> dict[str, float]:
        """Mean loss and accuracy over the holdout (or the given batches), in eval mode; per
        pixel for segmentation, which also reports the mean IoU over the classes (val_miou)."""
        self.model.eval()
        if self.info.task == "detection":
            return evaluate_detection(self._forward, batches if batches is not None else
                                      self.source.holdout_batches(), self.info.num_classes, self.device)
        total, right, count = 0.0, 0, 0
        iou = MeanIoU(self.info.num_classes) if self.info.task == "segmentation" else None
        for x, y in batches if batches is not None else self.source.holdout_batches():
            y = y.to(self.device)
            logits = self._forward(x)
            total += float(F.cross_entropy(logits, y, reduction="sum"))
            right += int((logits.argmax(1) == y).sum())
            count += y.numel()
            if iou is not None:
                iou.update(logits.argmax(1), y)
        miou = {} if iou is None else {"val_miou": iou.value()}  # NaN when nothing was counted
        if count == 0:
            return {"val_loss": math.nan, "val_accuracy": math.nan, **miou}
        return {"val_loss": total / count, "val_accuracy": right / count, **miou}

    def _forward(self, x: torch.Tensor) -> Any:
        with self._autocast():
            return self.model(to_inputs(x, self.device, channels_last=self.config.channels_last)).float()

    def fit(self, *, stop_after: int | None = None) -> RunResult:
        """Train for ``config.epochs`` (from the resumed epoch on), writing everything on rank 0.

        Args:
            stop_after: end after this many epochs of this call, as an interrupted run would
                (the schedule still spans ``config.epochs``); resume with :meth:`load`.
        """
        cfg, lead = self.config, self.rank == 0
        end = cfg.epochs if stop_after is None else min(cfg.epochs, self.start_epoch + stop_after)
        writer = None
        if lead:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
            if not self.history:  # a fresh run never reports an older run's best.pt
                (self.out_dir / "best.pt").unlink(missing_ok=True)
            writer = self._tensorboard()
        stopped = False
        try:
            for epoch in range(self.start_epoch, end):
                row: dict[str, float] = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
                row.update(self.train_epoch(epoch))
                row.update(self.evaluate())
                self.history.append({k: row[k] for k in self.fields})
                stopped = self._should_stop(row[cfg.early_stopping.metric], epoch)
                improved = self._track_best(row)
                if lead:
                    self._log(row, writer)
                    if improved:
                        self.save(self.out_dir / "best.pt")
                    if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == end or stopped:
                        self.save(self.out_dir / "last.pt")
                if stopped:
                    break
        finally:
            if writer is not None:
                writer.close()
        best = self.out_dir / "best.pt"
        return RunResult(history=self.history, out_dir=self.out_dir, stopped_early=stopped,
                         metric=self.metric, best_epoch=self.best_epoch, best_value=self.best_value,
                         best_path=best if self.best_epoch is not None and best.exists() else None,
                         skipped=dict(self.source.skipped),
                         val_skipped=dict(self.source.val_skipped))

    def _tensorboard(self) -> Any:
        if not self.config.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.out_dir / "tensorboard"), purge_step=self.start_epoch + 1)

    def _log(self, row: dict[str, float], writer: Any) -> None:
        path = self.out_dir / "metrics.csv"
        rewrite = not path.exists() or row["epoch"] == self.start_epoch + 1
        with path.open("w" if rewrite else "a", newline="") as f:
            out = csv.DictWriter(f, fieldnames=self.fields)
            if rewrite:  # a resumed run rewrites the rows it inherited, then appends
                out.writeheader()
                out.writerows(self.history[:-1])
            out.writerow({k: row[k] for k in self.fields})
        if writer is not None:
            for key in self.fields[1:]:
                writer.add_scalar(key.replace("_", "/", 1) if key.startswith(("train", "val"))
                                  else key, row[key], int(row["epoch"]))
        if self.report:
            print(epoch_line(row, self.config.epochs), flush=True)
