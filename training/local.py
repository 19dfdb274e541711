"""Batches built in this process by the library: a DataLoader over the epoch plan, or in memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from augsvc.datasets import open_dataset
from augsvc.image.pipeline import ImagePipeline
from augsvc.image.tensors import stack_images
from augsvc.kinds import augment_batch, jpeg_scales, make_pipeline
from augsvc.plan import EpochPlan
from training.config import ConfigError, DataConfig
from training.data import (
    Batch,
    BatchSource,
    DataInfo,
    DecodedBatch,
    Vocabulary,
    check_val_dataset,
    split_parts,
)
from training.detection import boxes_of
from training.segmentation import dataset_task, stack_masks

__all__ = ["LocalSource", "MemorySource"]


class _Parts:
    """The dataset, its training part (after ``train_size``), and the validation samples: the
    holdout part of ``dataset``, or every index of ``data.val_dataset`` (``val``) when set.

    Raises:
        ConfigError: ``val_dataset`` cannot be opened or does not match ``dataset``.
    """

    def __init__(self, config: DataConfig, seed: int) -> None:
        self.dataset = open_dataset(config.dataset)
        self.task = dataset_task(self.dataset.info.targets, config.dataset)
        self.train, self.holdout = split_parts(len(self.dataset), config, seed)
        self.val = self.dataset  # the dataset ``holdout`` indexes
        if config.val_dataset is not None:
            try:
                self.val = open_dataset(config.val_dataset)
            except (ValueError, OSError) as exc:
                raise ConfigError(f"data.val_dataset: {exc}") from exc
            info, val_info = self.dataset.info, self.val.info
            check_val_dataset(config, info.kind, info.class_names, val_info.kind,
                              val_info.class_names, task=self.task,
                              val_task=dataset_task(val_info.targets, config.val_dataset))
            self.holdout = np.arange(len(self.val), dtype=np.int64)


_Item = tuple[Any, torch.Tensor, tuple[tuple[int, str], ...], list[int]]


class _EpochBatches(Dataset[_Item]):
    """Batch ``b`` of a plan, built (and augmented) in whichever DataLoader worker asks, with the
    samples it skipped (files that cannot be read) as (index, reason) and the augment index of
    each sample it kept; x is None when none is left. With ``segmentation`` the labels are the
    samples' class maps, with ``detection`` their box dicts, moved with their images."""

    def __init__(self, dataset: Any, plan: EpochPlan, *, pipeline: Any, encode: Any,
                 start_batch: int = 0, segmentation: bool = False, detection: bool = False) -> None:
        self.dataset, self.plan, self.pipeline, self.encode = dataset, plan, pipeline, encode
        self.segmentation, self.detection = segmentation, detection
        self.batches = list(plan.batches(start_batch))

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> _Item:
        # JPEGs the pipeline's first step shrinks anyway are decoded smaller, as the service does.
        plan = self.plan
        taken = self.dataset.take(self.batches[b], jpeg_scales(
            self.pipeline, plan.seed, lambda index: plan.augment_indices([index])[0]))
        skipped = tuple((s.index, s.reason) for s in taken.skipped)
        indices = plan.augment_indices(taken.indices)
        samples, targets = augment_batch(self.pipeline, taken.samples, taken.targets,
                                         seed=plan.seed, indices=indices, sources=taken.sources)
        labels: Any = torch.as_tensor(np.asarray(taken.labels), dtype=torch.int64)
        if self.segmentation:
            labels = stack_masks([t.mask for t in targets or []])
        elif self.detection:
            labels = boxes_of(samples, targets or [])
        return (self.encode(samples) if samples else None), labels, skipped, indices


class LocalSource(BatchSource):
    """The library in-process, one batch per DataLoader item (``workers`` processes)."""

    def __init__(self, config: DataConfig, seed: int, *, pin_memory: bool = False) -> None:
        self.config, self.seed, self.pin_memory = config, seed, pin_memory
        self.parts = _Parts(config, seed)
        kind = self.parts.dataset.info.kind
        self.pipeline = make_pipeline(kind, config.augment) if config.augment is not None else None
        self.eval_pipeline = make_pipeline(kind, config.eval_augment) \
            if config.eval_augment is not None else None
        self.vocab: Vocabulary | None = None
        if kind == "text":
            texts, _ = self.parts.dataset.samples(self.parts.train)
            self.vocab = Vocabulary([str(t) for t in texts])
            self.info = DataInfo("text", self.parts.dataset.info.class_names, len(self.parts.train),
                                 len(self.parts.holdout), vocab_size=len(self.vocab))
        else:
            first = self.parts.dataset.take(self.parts.train[:8])  # the first that reads
            if not first.samples:
                raise ConfigError(f"data.dataset: none of the first training samples of "
                                  f"{config.dataset} can be read: {first.skipped[0].reason}")
            probe = np.asarray(first.samples[0])
            if isinstance(self.pipeline, ImagePipeline):
                probe = self.pipeline(probe, seed=seed, index=0).image
            self.info = DataInfo("image", self.parts.dataset.info.class_names, len(self.parts.train),
                                 len(self.parts.holdout), in_channels=1 if probe.ndim == 2
                                 else probe.shape[2], image_size=int(probe.shape[0]),
                                 task=self.parts.task)

    @property
    def segmentation(self) -> bool:
        """Whether labels are class maps (a segmentation dataset)."""
        return self.info.task == "segmentation"

    def encode(self, samples: Sequence[Any]) -> torch.Tensor:
        if self.vocab is not None:
            return self.vocab.encode(samples, self.config.max_tokens)
        return stack_images(samples)

    def plan(self, epoch: int, *, shard: int = 0, num_shards: int = 1) -> EpochPlan:
        """The epoch plan of the training part, for one shard."""
        return EpochPlan(len(self.parts.dataset), self.seed, epoch, self.config.batch_size,
                         self.parts.train, shard, num_shards)

    def num_train_batches(self, *, shard: int = 0, num_shards: int = 1) -> int:
        return self.plan(0, shard=shard, num_shards=num_shards).num_batches

    def _loader(self, dataset: Dataset[_Item]) -> DataLoader[_Item]:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=self.config.workers,
                          pin_memory=self.pin_memory, generator=generator,
                          persistent_workers=False)

    def train_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                      num_shards: int = 1) -> Iterator[Batch]:
        for x, y, _ in self._train(epoch, start_batch, shard, num_shards, self.pipeline):
            yield x, y

    def decoded_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                        num_shards: int = 1) -> Iterator[DecodedBatch]:
        """``train_batches`` not augmented (decoded uint8 images), with each sample's augment
        index: what ``data.augment_device`` augments on the device (``training.device_augment``)."""
        return self._train(epoch, start_batch, shard, num_shards, None)

    def _train(self, epoch: int, start_batch: int, shard: int, num_shards: int,
               pipeline: Any) -> Iterator[DecodedBatch]:
        plan = self.plan(epoch, shard=shard, num_shards=num_shards)
        yield from self._batches(_EpochBatches(self.parts.dataset, plan, pipeline=pipeline,
                                               encode=self.encode, start_batch=start_batch,
                                               segmentation=self.segmentation,
                                               detection=self.info.task == "detection"))

    def holdout_batches(self) -> Iterator[Batch]:
        if not len(self.parts.holdout):
            return  # no validation data: the trainer's metrics are NaN
        plan = EpochPlan(len(self.parts.val), self.seed, 0, self.config.batch_size,
                         self.parts.holdout, shuffle=False)
        for x, y, _ in self._batches(
                _EpochBatches(self.parts.val, plan, pipeline=self.eval_pipeline, encode=self.encode,
                              segmentation=self.segmentation, detection=self.info.task == "detection"),
                val=self.parts.val is not self.parts.dataset):
            yield x, y

    def _batches(self, dataset: _EpochBatches, *, val: bool = False) -> Iterator[DecodedBatch]:
        """The non-empty batches of ``dataset`` with their augment indices; what they skipped is
        remembered (``val``: as samples of ``data.val_dataset``)."""
        for x, y, skipped, indices in self._loader(dataset):
            self.note_skipped(skipped, val=val)
            if x is not None:
                yield x, y, indices


class MemorySource(LocalSource):
    """Every training sample augmented once (epoch 0's draws) and kept as tensors."""

    def __init__(self, config: DataConfig, seed: int, *, pin_memory: bool = False) -> None:
        super().__init__(config, seed, pin_memory=pin_memory)
        if self.info.task == "detection":
            raise ConfigError("data.source: memory keeps class labels and class maps; a detection "
                              "dataset needs source local or remote")
        # every training sample once, in part order, with epoch 0's draws
        plan = EpochPlan(len(self.parts.dataset), seed, 0, 256, self.parts.train, shuffle=False)
        dataset = _EpochBatches(self.parts.dataset, plan, pipeline=self.pipeline,
                                encode=self.encode, segmentation=self.segmentation)
        items = [dataset[b] for b in range(len(dataset))]
        unread = [skipped for _, _, batch, _ in items for skipped in batch]
        if unread:
            raise ConfigError(f"data.source: memory needs every training sample; {len(unread)} "
                              f"cannot be read (the first: {unread[0][1]}); use source local")
        xs, ys = zip(*((x, y) for x, y, *_ in items), strict=True)
        if self.vocab is not None:
            width = max(x.shape[1] for x in xs)
            xs = tuple(torch.nn.functional.pad(x, (0, width - x.shape[1])) for x in xs)
        self.x, self.y = torch.cat(xs), torch.cat(ys)
        if pin_memory:
            self.x, self.y = self.x.pin_memory(), self.y.pin_memory()

    def train_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                      num_shards: int = 1) -> Iterator[Batch]:
        for positions in self.plan(epoch, shard=shard, num_shards=num_shards).positions(start_batch):
            index = torch.as_tensor(np.array(positions))  # the plan arrays are read-only
            yield self.x[index], self.y[index]
