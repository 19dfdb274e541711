"""One YAML file per run: every section a frozen dataclass, every field validated with its path.

A config reads like the run it describes::

    seed: 0
    epochs: 5
    model: {name: cnn, norm: batch, dropout: 0.1}
    data: {dataset: digits, source: local, augment: digits, batch_size: 64}
    optimizer: {name: adamw, lr: 0.002}
    schedule: {name: cosine, warmup_steps: 20}

Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the field
(``optimizer.lr``), the value and what is allowed: each field is a ``setting`` checked by the
same schema as a pipeline's parameters (``augsvc.settings``). Options a registry owns (a model's
width, an optimizer's betas) are checked by the registry when the trainer builds the object.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from augsvc.errors import ConfigError
from augsvc.settings import build, setting

__all__ = ["ConfigError", "DataConfig", "EarlyStoppingConfig", "ModelConfig", "OptimizerConfig",
           "RegularizationConfig", "ScheduleConfig", "TrainConfig", "load_config", "to_dict"]


@dataclass(frozen=True)
class ModelConfig:
    """``name`` from ``training.models``; every other key goes to ``create_model``."""

    name: str = setting("cnn", kind="string")
    init: str | None = setting("kaiming", kind="string", nullable=True)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """Where batches come from.

    Attributes:
        dataset: a built-in dataset name or a path (folder of class folders, .npz, text lines).
        val_dataset: a separate validation dataset (e.g. ImageNet-style ``train/`` and ``val/``
            folders): a built-in name or a path, or for ``remote`` a name the server lists. Every
            sample of it is validated on (with ``eval_augment``) and all of ``dataset`` is
            trained on, so ``holdout_fraction`` must be 0. Its class names must be ``dataset``'s.
        source: ``local`` (library + DataLoader), ``remote`` (the service's StreamEpoch) or
            ``memory`` (augmented once, kept as tensors).
        addresses: service addresses for ``remote`` (several: round_robin over replicas).
        token: the service's bearer token, when it requires one.
        tls: a CA certificate (PEM path) to reach a TLS service; null for plaintext.
        augment: an image/text pipeline spec or a preset name; null for none.
        augment_device: null: the source augments training images (on the CPU). ``cpu``,
            ``cuda`` or ``auto`` (cuda when present): the split point moves. The source only
            decodes, delivering the training images un-augmented as uint8 (as stored: they must
            all be of one size), and everything in ``augment`` runs on this torch device in the
            trainer's process (``training.device_augment``, with ``TorchBatchPipeline``), with
            the run's seed and each sample's augment index, so batches equal the CPU path's. The
            trainer's usual uint8 -> float scaling follows. Only the transforms TorchBatchPipeline
            supports (a flat list; not normalize), image classification datasets, and the
            ``local`` and ``remote`` sources; ``eval_augment`` stays in the source.
        eval_augment: the pipeline of the holdout (e.g. the ``eval`` preset: resize and
            centre-crop, nothing random), so held-out photos of mixed sizes stack; null for none.
        holdout_fraction: the share of ``dataset`` held out for validation, in [0, 1); 0 holds
            nothing out (validation metrics are NaN unless ``val_dataset`` is set).
        train_size: keep only this many training samples (null: all of them).
        workers: DataLoader worker processes for ``local``.
        prefetch: batches a remote stream keeps ready ahead of the trainer.
        max_tokens: text datasets: longest token sequence kept.
    """

    dataset: str = setting("digits", kind="string")
    val_dataset: str | None = setting(None, kind="string", nullable=True)
    source: Literal["local", "remote", "memory"] = setting(
        "local", kind="choice", choices=("local", "remote", "memory"))
    addresses: list[str] = setting(kind="strings", default_factory=lambda: ["127.0.0.1:50051"])
    token: str | None = setting(None, kind="string", nullable=True)
    tls: str | None = setting(None, kind="string", nullable=True)
    augment: Any = None
    augment_device: Literal["cpu", "cuda", "auto"] | None = setting(
        None, kind="choice", choices=("cpu", "cuda", "auto"), nullable=True,
        doc="run data.augment on this torch device after the source decodes (null: in the source)")
    eval_augment: Any = None
    batch_size: int = setting(64, kind="int", low=1)
    holdout_fraction: float = setting(0.2, kind="float", low=0, high=1, high_open=True)
    train_size: int | None = setting(None, kind="int", low=1, nullable=True)
    workers: int = setting(0, kind="int", low=0)
    prefetch: int = setting(4, kind="int", low=1)
    max_tokens: int = setting(64, kind="int", low=1)

    def __post_init__(self) -> None:
        if self.val_dataset is not None and self.holdout_fraction > 0:
            raise ConfigError(
                f"data.holdout_fraction: {self.holdout_fraction} with data.val_dataset "
                f"{self.val_dataset!r}: validation comes from val_dataset and all of "
                f"{self.dataset!r} is trained on, so holdout_fraction must be 0")
        if self.augment_device is not None and self.source == "memory":
            raise ConfigError(f"data.augment_device: {self.augment_device!r} with data.source memory, "
                              "which keeps epoch 0's samples augmented once; use source local or remote")


@dataclass(frozen=True)
class OptimizerConfig:
    """``name`` from ``training.optim``; ``lr`` and every other key go to ``create_optimizer``."""

    name: str = setting("adamw", kind="string")
    lr: float | None = setting(None, kind="float", low=0, low_open=True, nullable=True)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleConfig:
    """``name`` from ``training.schedules``; other keys go to ``schedule_factor``."""

    name: str = setting("cosine", kind="string")
    warmup_steps: int = setting(0, kind="int", low=0)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RegularizationConfig:
    """An explicit penalty ``strength * R(W)`` over weights (see ``training.regularization``)."""

    penalty: Literal["none", "l2", "l1", "elastic_net"] = setting(
        "none", kind="choice", choices=("none", "l2", "l1", "elastic_net"))
    strength: float = setting(0.0, kind="float", low=0)
    beta: float = setting(1.0, kind="float", low=0)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Stop when ``metric`` has not improved for ``patience`` epochs (null: never stop early).
    ``metric`` is also what ``best.pt`` follows; ``val_miou`` (mean IoU) for segmentation runs,
    ``val_map`` (COCO mAP@[.5:.95]) for detection runs."""

    patience: int | None = setting(None, kind="int", low=0, nullable=True)
    metric: Literal["val_loss", "val_accuracy", "val_miou", "val_map"] = setting(
        "val_loss", kind="choice", choices=("val_loss", "val_accuracy", "val_miou", "val_map"))
    min_delta: float = setting(0.0, kind="float", low=0)


@dataclass(frozen=True)
class TrainConfig:
    """A whole run.

    Attributes:
        device: ``auto`` (cuda when present, else cpu), ``cpu`` or ``cuda``.
        amp: mixed precision on CUDA (``bf16``/``fp16``); ignored with a note on CPU.
        grad_clip: clip the global gradient norm to this value (null: no clipping).
        out_dir: where metrics, checkpoints and plots go.
        tensorboard: also write TensorBoard event files.
        metrics_port: serve the input wait to Prometheus on this port + the local rank (0: a
            free port); null: not served.
    """

    seed: int = setting(0, kind="int", low=0, high=2**64 - 1)
    epochs: int = setting(5, kind="int", low=1)
    device: Literal["auto", "cpu", "cuda"] = setting("auto", kind="choice",
                                                     choices=("auto", "cpu", "cuda"))
    amp: Literal["none", "bf16", "fp16"] = setting("none", kind="choice",
                                                   choices=("none", "bf16", "fp16"))
    channels_last: bool = setting(False, kind="bool")
    grad_clip: float | None = setting(None, kind="float", low=0, low_open=True, nullable=True)
    out_dir: str = setting("runs/train", kind="string")
    tensorboard: bool = setting(True, kind="bool")
    checkpoint_every: int = setting(1, kind="int", low=1)
    metrics_port: int | None = setting(None, kind="int", low=0, high=65535, nullable=True)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)

    def __post_init__(self) -> None:
        if self.early_stopping.patience is not None and self.data.val_dataset is None \
                and self.data.holdout_fraction == 0:
            raise ConfigError("early_stopping.patience: early stopping needs validation data; "
                              "set data.val_dataset or a data.holdout_fraction above 0")


def load_config(source: str | Path | Mapping[str, Any] | None = None,
                overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a run config from a YAML file or a mapping, with dotted ``overrides`` on top.

    Args:
        source: a YAML path, a mapping, or None for every default.
        overrides: ``{"optimizer.lr": 0.01, "epochs": 2}`` applied after the file.

    Raises:
        ConfigError: unreadable file, unknown field, wrong type or out-of-range value.
    """
    if source is None:
        raw: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        raw = _plain(source)
    else:
        try:
            raw = yaml.safe_load(Path(source).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {source}: {exc}") from None
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{dotted}: {part} is not a section")
        node[leaf] = value
    config: TrainConfig = build(TrainConfig, raw)
    return config


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) if isinstance(v, Mapping) else v for k, v in mapping.items()}


def to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as plain data (what ``load_config`` reads back to an equal config)."""
    return dataclasses.asdict(config)
