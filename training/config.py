"""One YAML file per run: every section a frozen dataclass, every field validated with its path.

A config reads like the run it describes::

    seed: 0
    epochs: 5
    model: {name: cnn, norm: batch, dropout: 0.1}
    data: {dataset: digits, source: local, augment: digits, batch_size: 64}
    optimizer: {name: adamw, lr: 0.002}
    schedule: {name: cosine, warmup_steps: 20}

Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the field
(``optimizer.lr``), the value and what is allowed. Options a registry owns (a model's width, an
optimizer's betas) are checked by building the object once in :func:`validate`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = ["ConfigError", "DataConfig", "EarlyStoppingConfig", "ModelConfig", "OptimizerConfig",
           "RegularizationConfig", "ScheduleConfig", "TrainConfig", "load_config", "to_dict"]


class ConfigError(ValueError):
    """A run config that cannot be used; the message names the field."""


@dataclass(frozen=True)
class ModelConfig:
    """``name`` from ``training.models``; every other key goes to ``create_model``."""

    name: str = "cnn"
    init: str | None = "kaiming"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """Where batches come from.

    Attributes:
        dataset: a built-in dataset name or a path (folder of class folders, .npz, text lines).
        source: ``local`` (library + DataLoader), ``remote`` (the service's StreamEpoch) or
            ``memory`` (augmented once, kept as tensors).
        addresses: service addresses for ``remote`` (several: round_robin over replicas).
        token: the service's bearer token, when it requires one.
        tls: a CA certificate (PEM path) to reach a TLS service; null for plaintext.
        augment: an image/text pipeline spec or a preset name; null for none.
        holdout_fraction: the share held out for validation.
        train_size: keep only this many training samples (null: all of them).
        workers: DataLoader worker processes for ``local``.
        prefetch: batches a remote stream keeps ready ahead of the trainer.
        max_tokens: text datasets: longest token sequence kept.
    """

    dataset: str = "digits"
    source: Literal["local", "remote", "memory"] = "local"
    addresses: list[str] = field(default_factory=lambda: ["127.0.0.1:50051"])
    token: str | None = None
    tls: str | None = None
    augment: Any = None
    batch_size: int = 64
    holdout_fraction: float = 0.2
    train_size: int | None = None
    workers: int = 0
    prefetch: int = 4
    max_tokens: int = 64


@dataclass(frozen=True)
class OptimizerConfig:
    """``name`` from ``training.optim``; ``lr`` and every other key go to ``create_optimizer``."""

    name: str = "adamw"
    lr: float | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleConfig:
    """``name`` from ``training.schedules``; other keys go to ``schedule_factor``."""

    name: str = "cosine"
    warmup_steps: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RegularizationConfig:
    """An explicit penalty ``strength * R(W)`` over weights (see ``training.regularization``)."""

    penalty: Literal["none", "l2", "l1", "elastic_net"] = "none"
    strength: float = 0.0
    beta: float = 1.0


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Stop when ``metric`` has not improved for ``patience`` epochs (null: never stop early)."""

    patience: int | None = None
    metric: Literal["val_loss", "val_accuracy"] = "val_loss"
    min_delta: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    """A whole run.

    Attributes:
        device: ``auto`` (cuda when present, else cpu), ``cpu`` or ``cuda``.
        amp: mixed precision on CUDA (``bf16``/``fp16``); ignored with a note on CPU.
        grad_clip: clip the global gradient norm to this value (null: no clipping).
        out_dir: where metrics, checkpoints and plots go.
        tensorboard: also write TensorBoard event files.
    """

    seed: int = 0
    epochs: int = 5
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = False
    grad_clip: float | None = None
    out_dir: str = "runs/train"
    tensorboard: bool = True
    checkpoint_every: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


# Lower bounds checked after the types: (section class, field) -> (minimum, inclusive).
_MINIMUM: dict[tuple[type, str], tuple[float, bool]] = {
    (TrainConfig, "seed"): (0, True), (TrainConfig, "epochs"): (1, True),
    (TrainConfig, "grad_clip"): (0, False), (TrainConfig, "checkpoint_every"): (1, True),
    (DataConfig, "batch_size"): (1, True), (DataConfig, "train_size"): (1, True),
    (DataConfig, "workers"): (0, True), (DataConfig, "prefetch"): (1, True),
    (DataConfig, "max_tokens"): (1, True), (DataConfig, "holdout_fraction"): (0, False),
    (OptimizerConfig, "lr"): (0, False), (ScheduleConfig, "warmup_steps"): (0, True),
    (RegularizationConfig, "strength"): (0, True), (RegularizationConfig, "beta"): (0, True),
    (EarlyStoppingConfig, "patience"): (0, True), (EarlyStoppingConfig, "min_delta"): (0, True),
}


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        for option in typing.get_args(tp):
            if option is type(None):
                continue
            try:
                return _coerce(value, option, path)
            except ConfigError:
                continue
    elif origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif dataclasses.is_dataclass(tp):
        return _build(tp, value, path)  # type: ignore[arg-type]
    elif origin is list:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [_coerce(v, typing.get_args(tp)[0], f"{path}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, Mapping):
            return dict(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, tp):
        return value
    raise ConfigError(f"{path}: {value!r} is not {_describe(tp)}")


def _build(cls: type, raw: Any, path: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    free = "options" in fields  # sections whose extra keys belong to a registry entry
    values: dict[str, Any] = {}
    options: dict[str, Any] = dict(raw.get("options") or {}) if free else {}
    for key, value in raw.items():
        where = f"{path}.{key}" if path else str(key)
        if key in fields and key != "options":
            values[key] = _coerce(value, hints[key], where)
        elif free and key != "options":
            options[key] = value
        elif key != "options" or not free:
            close = difflib.get_close_matches(str(key), sorted(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown field{hint}; known: {', '.join(sorted(fields))}")
    if free:
        values["options"] = options
    for name, value in values.items():
        bound = _MINIMUM.get((cls, name))
        if bound is not None and value is not None:
            low, inclusive = bound
            if value < low or (value == low and not inclusive):
                where = f"{path}.{name}" if path else name
                raise ConfigError(f"{where}: {value!r} must be {'>=' if inclusive else '>'} {low}")
    return cls(**values)


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
    config: TrainConfig = _build(TrainConfig, raw, "")
    if config.data.holdout_fraction >= 1:
        raise ConfigError(f"data.holdout_fraction: {config.data.holdout_fraction} must be < 1")
    return config


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) if isinstance(v, Mapping) else v for k, v in mapping.items()}


def to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as plain data (what ``load_config`` reads back to an equal config)."""
    return dataclasses.asdict(config)
