"""Batches for the trainer: local (library + DataLoader), remote (the service's StreamEpoch), memory.

Every source follows the same epoch plan (``augsvc.datasets``): the training part is shuffled by
(seed, epoch) and dataset sample ``i`` is augmented as global index ``epoch * size + i``. So a
local run and a remote run of the same config see the same bytes in the same order, and a
resumed run sees what the interrupted one would have.

Batches are ``(x, y)``: images as uint8 ``(B, C, H, W)`` tensors (the trainer scales them on the
device), texts as int64 token ids ``(B, L)`` with 0 as padding.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from augsvc.datasets import augment_index, epoch_batches, num_batches, open_dataset, part_indices
from augsvc.image.dataset import stack_images
from augsvc.image.pipeline import ImagePipeline
from augsvc.text.pipeline import TextPipeline
from training.config import ConfigError, DataConfig

__all__ = ["BatchSource", "DataInfo", "Vocabulary", "create_source", "split_parts"]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its inputs."""

    kind: str  # "image" or "text"
    class_names: tuple[str, ...]
    train_size: int
    holdout_size: int
    in_channels: int = 0
    image_size: int = 0
    vocab_size: int = 0

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
        """The validation batches (never augmented), in a fixed order."""

    @abstractmethod
    def num_train_batches(self, *, shard: int = 0, num_shards: int = 1) -> int:
        """Batches per training epoch in one shard (shard 0 is the longest)."""

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


def _pipeline(kind: str, spec: Any) -> ImagePipeline | TextPipeline | None:
    if spec is None:
        return None
    return ImagePipeline(spec) if kind == "image" else TextPipeline(spec)  # both take preset names


def split_parts(size: int, config: DataConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training part after ``train_size``, holdout part) of a ``size``-sample dataset: the
    same indices the service's StreamEpoch uses for PART_TRAIN (with ``limit``) and PART_HOLDOUT.

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


class _Parts:
    """The dataset, its training part (after ``train_size``) and its holdout part."""

    def __init__(self, config: DataConfig, seed: int) -> None:
        self.dataset = open_dataset(config.dataset)
        self.train, self.holdout = split_parts(len(self.dataset), config, seed)


class _EpochBatches(Dataset[Batch]):
    """Batch ``b`` of one epoch, built (and augmented) in whichever DataLoader worker asks."""

    def __init__(self, dataset: Any, part: np.ndarray, plan: list[np.ndarray], *, pipeline: Any,
                 encode: Any, seed: int, epoch: int) -> None:
        self.dataset, self.part, self.plan = dataset, part, plan
        self.pipeline, self.encode, self.seed, self.epoch = pipeline, encode, seed, epoch

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, b: int) -> Batch:
        indices = self.part[self.plan[b]]  # plan positions -> dataset indices
        samples, labels = self.dataset.samples(indices)
        if self.pipeline is not None:
            size = len(self.dataset)
            where = [augment_index(self.epoch, int(i), size) for i in indices]
            results = self.pipeline.batch(samples, seed=self.seed, indices=where)
            samples = [r.image if hasattr(r, "image") else r.text for r in results]
        return self.encode(samples), torch.as_tensor(np.asarray(labels), dtype=torch.int64)


class LocalSource(BatchSource):
    """The library in-process, one batch per DataLoader item (``workers`` processes)."""

    def __init__(self, config: DataConfig, seed: int, *, pin_memory: bool = False) -> None:
        self.config, self.seed, self.pin_memory = config, seed, pin_memory
        self.parts = _Parts(config, seed)
        kind = self.parts.dataset.info.kind
        self.pipeline = _pipeline(kind, config.augment)
        self.vocab: Vocabulary | None = None
        if kind == "text":
            texts, _ = self.parts.dataset.samples(self.parts.train)
            self.vocab = Vocabulary([str(t) for t in texts])
            self.info = DataInfo("text", self.parts.dataset.info.class_names, len(self.parts.train),
                                 len(self.parts.holdout), vocab_size=len(self.vocab))
        else:
            first, _ = self.parts.dataset.samples(self.parts.train[:1])
            probe = np.asarray(first[0])
            if isinstance(self.pipeline, ImagePipeline):
                probe = self.pipeline(probe, seed=seed, index=0).image
            self.info = DataInfo("image", self.parts.dataset.info.class_names, len(self.parts.train),
                                 len(self.parts.holdout), in_channels=1 if probe.ndim == 2
                                 else probe.shape[2], image_size=int(probe.shape[0]))

    def encode(self, samples: Sequence[Any]) -> torch.Tensor:
        if self.vocab is not None:
            return self.vocab.encode(samples, self.config.max_tokens)
        return stack_images(samples)

    def num_train_batches(self, *, shard: int = 0, num_shards: int = 1) -> int:
        return num_batches(len(self.parts.train), batch_size=self.config.batch_size, shard=shard,
                           num_shards=num_shards)

    def _loader(self, dataset: Dataset[Batch]) -> DataLoader[Batch]:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=self.config.workers,
                          pin_memory=self.pin_memory, generator=generator,
                          persistent_workers=False)

    def train_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                      num_shards: int = 1) -> Iterator[Batch]:
        plan = list(epoch_batches(len(self.parts.train), seed=self.seed, epoch=epoch,
                                  batch_size=self.config.batch_size, shard=shard,
                                  num_shards=num_shards, start_batch=start_batch))
        yield from self._loader(_EpochBatches(
            self.parts.dataset, self.parts.train, plan, pipeline=self.pipeline, encode=self.encode,
            seed=self.seed, epoch=epoch))

    def holdout_batches(self) -> Iterator[Batch]:
        size = self.config.batch_size
        plan = [np.arange(k, min(k + size, len(self.parts.holdout)))
                for k in range(0, len(self.parts.holdout), size)]
        yield from self._loader(_EpochBatches(
            self.parts.dataset, self.parts.holdout, plan, pipeline=None, encode=self.encode,
            seed=self.seed, epoch=0))


class MemorySource(LocalSource):
    """Every training sample augmented once (epoch 0's draws) and kept as tensors."""

    def __init__(self, config: DataConfig, seed: int, *, pin_memory: bool = False) -> None:
        super().__init__(config, seed, pin_memory=pin_memory)
        order = np.arange(len(self.parts.train))
        dataset = _EpochBatches(self.parts.dataset, self.parts.train,
                                [order[k: k + 256] for k in range(0, len(order), 256)],
                                pipeline=self.pipeline, encode=self.encode, seed=seed, epoch=0)
        xs, ys = zip(*(dataset[b] for b in range(len(dataset))), strict=True)
        if self.vocab is not None:
            width = max(x.shape[1] for x in xs)
            xs = tuple(torch.nn.functional.pad(x, (0, width - x.shape[1])) for x in xs)
        self.x, self.y = torch.cat(xs), torch.cat(ys)
        if pin_memory:
            self.x, self.y = self.x.pin_memory(), self.y.pin_memory()

    def train_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                      num_shards: int = 1) -> Iterator[Batch]:
        for positions in epoch_batches(len(self.parts.train), seed=self.seed, epoch=epoch,
                                       batch_size=self.config.batch_size, shard=shard,
                                       num_shards=num_shards, start_batch=start_batch):
            index = torch.as_tensor(np.array(positions))  # the plan arrays are read-only
            yield self.x[index], self.y[index]


def create_source(config: DataConfig, seed: int, *, pin_memory: bool = False) -> BatchSource:
    """The batch source ``config.source`` names.

    Raises:
        ConfigError: an unknown dataset, a bad augmentation spec, or an unreachable service.
    """
    try:
        if config.source == "remote":
            from training.remote import RemoteSource  # the gRPC client only when asked for

            return RemoteSource(config, seed)
        if config.source == "memory":
            return MemorySource(config, seed, pin_memory=pin_memory)
        return LocalSource(config, seed, pin_memory=pin_memory)
    except ConfigError:
        raise
    except (ValueError, OSError) as exc:
        raise ConfigError(f"data: {exc}") from exc
