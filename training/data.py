"""What the trainer's batch sources share: the BatchSource interface, DataInfo, the vocabulary.

Every source follows the same epoch plan (``augsvc.plan.EpochPlan``): the training part is
shuffled by (seed, epoch) and each sample is augmented as the plan's augment index. So a local run
and a remote run of the same config see the same bytes in the same order, and a resumed run sees
what the interrupted one would have. The sources are in ``training.local`` and ``training.remote``
and are picked by name in ``training.sources``.

Batches are ``(x, y)``: images as uint8 ``(B, C, H, W)`` tensors (the trainer scales them on the
device), texts as int64 token ids ``(B, L)`` with 0 as padding; ``y`` holds int64 class indices
``(B,)``, or for a segmentation dataset (``DataInfo.task``) class maps ``(B, H, W)``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from augsvc.plan import part_indices
from training.config import ConfigError, DataConfig

__all__ = ["Batch", "BatchSource", "DataInfo", "DecodedBatch", "Vocabulary", "check_val_dataset",
           "split_parts"]

Batch = tuple[torch.Tensor, torch.Tensor]
DecodedBatch = tuple[torch.Tensor, torch.Tensor, list[int]]
"""x (decoded uint8 images, not augmented), y, and each sample's augment index in the epoch."""


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its inputs.

    ``holdout_size`` counts the validation samples: the holdout part of ``data.dataset``, or
    every sample of ``data.val_dataset`` when the run has one (0: no validation).
    """

    kind: str  # "image" or "text"
    class_names: tuple[str, ...]
    train_size: int
    holdout_size: int
    in_channels: int = 0
    image_size: int = 0
    vocab_size: int = 0
    task: str = "classification"  # or "segmentation": y is a class map per image

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class Vocabulary:
    """Lower-cased word tokens -> ids (0 padding, 1 reserved), most frequent first."""

    PATTERN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

    def __init__(self, texts: Sequence[str], max_size: int = 20000) -> None:
        counts = Counter(token for text in texts for token in self.tokens(text))
        ranked = sorted(counts, key=lambda t: (-counts[t], t))[: max_size - 2]
        self.ids = {token: k + 2 for k, token in enumerate(ranked)}

    def __len__(self) -> int:
        return len(self.ids) + 2

    @classmethod
    def tokens(cls, text: str) -> list[str]:
        return cls.PATTERN.findall(text.lower())

    def encode(self, texts: Sequence[str], max_tokens: int) -> torch.Tensor:
        """(B, L) int64 ids, padded with 0 to the longest text (at most ``max_tokens``).

        Words outside the vocabulary are dropped: an "unknown" id never seen in training would
        keep a random embedding and shift every prediction it appears in. A text with no known
        word is all padding (models treat such rows as empty).
        """
        rows = [[self.ids[t] for t in self.tokens(text) if t in self.ids][:max_tokens] for text in texts]
        out = torch.zeros((len(rows), max(1, *(len(r) for r in rows))), dtype=torch.int64)
        for k, row in enumerate(rows):
            out[k, : len(row)] = torch.tensor(row)
        return out


class BatchSource(ABC):
    """Training batches per epoch, and the holdout batches for validation."""

    info: DataInfo

    @abstractmethod
    def train_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                      num_shards: int = 1) -> Iterator[Batch]:
        """The batches of shard ``shard`` of ``num_shards`` of ``epoch``, from ``start_batch`` on."""

    @abstractmethod
    def holdout_batches(self) -> Iterator[Batch]:
        """The validation batches (the holdout part, or all of ``data.val_dataset``): not
        augmented, only given the run's ``eval_augment`` (deterministic resizing and cropping)
        when it has one. No batches when there is no validation data."""

    @abstractmethod
    def num_train_batches(self, *, shard: int = 0, num_shards: int = 1) -> int:
        """Batches per training epoch in one shard (shard 0 is the longest)."""

    def decoded_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                        num_shards: int = 1) -> Iterator[DecodedBatch]:
        """The batches of :meth:`train_batches` before augmentation, with each sample's augment
        index: what ``data.augment_device`` augments on a torch device.

        Raises:
            ConfigError: this source cannot deliver them.
        """
        raise ConfigError(f"data.augment_device: the {type(self).__name__} batch source cannot "
                          "deliver un-augmented batches; use data.source local or remote")

    @property
    def skipped(self) -> dict[int, str]:
        """Planned samples that could not be read so far (corrupt files), by dataset index: the
        run's summary lists them. Empty for sources that read nothing from files."""
        return self.__dict__.setdefault("_skipped", {})  # type: ignore[no-any-return]

    @property
    def val_skipped(self) -> dict[int, str]:
        """Samples of ``data.val_dataset`` that could not be read, by that dataset's index (kept
        apart from ``skipped``: the indices count in another dataset)."""
        return self.__dict__.setdefault("_val_skipped", {})  # type: ignore[no-any-return]

    def note_skipped(self, skipped: Iterable[tuple[int, str]], *, val: bool = False) -> None:
        """Remember samples a batch left out because they could not be read (``val``: samples
        of ``data.val_dataset``)."""
        (self.val_skipped if val else self.skipped).update(skipped)

    def gallery(self, epoch: int, count: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``count`` training samples of ``epoch``, as the model sees them."""
        xs, ys, seen = [], [], 0
        for x, y in self.train_batches(epoch):
            xs.append(x)
            ys.append(y)
            seen += len(y)
            if seen >= count:
                break
        return torch.cat(xs)[:count], torch.cat(ys)[:count]

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release threads and connections."""


def split_parts(size: int, config: DataConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training part after ``train_size``, holdout part) of a ``size``-sample dataset: the
    same indices the service's StreamEpoch uses for PART_TRAIN (with ``limit``) and PART_HOLDOUT.
    With ``holdout_fraction`` 0 (always so with ``val_dataset``) the holdout part is empty.

    Raises:
        ConfigError: ``train_size`` is more than the training part holds.
    """
    fraction = config.holdout_fraction
    train = part_indices(size, part="train", holdout_fraction=fraction, seed=seed)
    if config.train_size is not None:
        if config.train_size > len(train):
            raise ConfigError(f"data.train_size: {config.train_size} is more than the "
                              f"{len(train)} training samples of {config.dataset}")
        train = part_indices(size, part="train", holdout_fraction=fraction, seed=seed,
                             limit=config.train_size)
    return train, part_indices(size, part="holdout", holdout_fraction=fraction, seed=seed)


def check_val_dataset(config: DataConfig, kind: str, class_names: Sequence[str], val_kind: str,
                      val_class_names: Sequence[str], *, task: str = "classification",
                      val_task: str = "classification") -> None:
    """Check that ``data.val_dataset`` can validate a model trained on ``data.dataset``: the same
    kind of samples, the same task (class labels or class maps) and the same class names in the
    same order, so a label means one class.

    Raises:
        ConfigError: naming both datasets and what differs.
    """
    if val_kind != kind:
        raise ConfigError(f"data.val_dataset: {config.val_dataset} holds {val_kind} samples but "
                          f"data.dataset {config.dataset} holds {kind} samples")
    if val_task != task:
        raise ConfigError(f"data.val_dataset: {config.val_dataset} is a {val_task} dataset but "
                          f"data.dataset {config.dataset} is a {task} dataset")
    if tuple(val_class_names) != tuple(class_names):
        raise ConfigError(f"data.val_dataset: the class names of {config.val_dataset} "
                          f"{list(val_class_names)} differ from those of data.dataset "
                          f"{config.dataset} {list(class_names)}; labels would mean different "
                          "classes")
