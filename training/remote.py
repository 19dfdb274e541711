"""The remote batch source: the service's StreamEpoch, through the client's prefetching dataset.

The server holds the dataset and augments it; this side only asks for (seed, epoch, shard) and
receives the same batches ``LocalSource`` would build, so a run can switch sources freely.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from augsvc.client import AugmentClient
from augsvc.client.datasets import RemoteEpochDataset
from augsvc.client.prefetch import Prefetch
from augsvc.errors import AugsvcError
from augsvc.image.tensors import stack_images
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
from training.detection import streamed_boxes
from training.segmentation import dataset_task, streamed_masks

__all__ = ["RemoteSource"]


class RemoteSource(BatchSource):
    """Training batches streamed from ``config.addresses`` (round_robin over replicas).

    Validation streams the holdout part of ``config.dataset``, or all of ``config.val_dataset``
    (StreamEpoch part=all, epoch 0) when the run has one.

    Raises:
        ConfigError: no server answers, it does not have ``config.dataset`` (or
            ``config.val_dataset``), or the validation dataset does not match the training one.
    """

    def __init__(self, config: DataConfig, seed: int, *, pin_memory: bool = False,
                 wait: float = 30.0) -> None:
        del pin_memory  # the sources' common signature; streamed batches stay in pageable memory
        self.config, self.seed = config, seed
        self.verified_samples = 0  # training samples checked against the epoch plan so far
        self.client_options: dict[str, Any] = {"token": config.token, "tls": config.tls}
        self.client = AugmentClient(config.addresses, **self.client_options)
        self._dataset: RemoteEpochDataset | None = None  # streams through self.client
        self._ahead: tuple[tuple[int, int, int, int, bool], Prefetch] | None = None  # next epoch
        try:
            self.client.wait_ready(timeout=wait)
        except Exception:
            raise ConfigError(f"data.addresses: no augsvc server answered at {config.addresses} "
                              f"within {wait:.0f} s (start one with `augsvc serve`)") from None
        found = {d["name"]: d for d in self.client.list_datasets()}
        meta = found.get(config.dataset)
        if meta is None:
            raise ConfigError(f"data.dataset: the server has no dataset {config.dataset!r}; it has "
                              f"{', '.join(sorted(found))}")
        self.size = int(meta["size"])
        self.train, holdout = split_parts(self.size, config, seed)  # what the server will stream
        self.train_count = len(self.train)
        classes = tuple(meta["class_names"])
        holdout_size = len(holdout)
        if config.val_dataset is not None:
            val = found.get(config.val_dataset)
            if val is None:
                raise ConfigError(f"data.val_dataset: the server has no dataset "
                                  f"{config.val_dataset!r}; it has {', '.join(sorted(found))}")
            check_val_dataset(config, meta["kind"], classes, val["kind"], val["class_names"])
            holdout_size = int(val["size"])
        self.vocab: Vocabulary | None = None
        if meta["kind"] == "text":
            texts = [t for b in self._stream("train", None, epoch=0) for t in b.samples]
            self.vocab = Vocabulary(texts)
            self.info = DataInfo("text", classes, self.train_count, holdout_size,
                                 vocab_size=len(self.vocab))
        else:
            probe, task = self._probe(config.augment)
            if config.val_dataset is not None:  # checked above but for its task: labels or maps
                _, val_task = self._probe(None, dataset=config.val_dataset)
                check_val_dataset(config, meta["kind"], classes, meta["kind"], classes,
                                  task=task, val_task=val_task)
            self.info = DataInfo("image", classes, self.train_count, holdout_size,
                                 in_channels=1 if probe.ndim == 2 else probe.shape[2],
                                 image_size=int(probe.shape[0]), task=task)

    def _probe(self, spec: Any, dataset: str | None = None) -> tuple[np.ndarray, str]:
        """The first training sample that can be read, as the model will see it, and the task
        its target (or none) says the dataset is for; ``dataset``: the first sample of that
        (validation) dataset instead."""
        part = "train" if dataset is None else "all"
        for batch in self._stream(part, spec, epoch=0, batch_size=1, dataset=dataset):
            if batch.samples:
                keys = sorted(batch.targets[0]) if batch.targets else []
                return np.asarray(batch.samples[0]), dataset_task(keys, dataset or
                                                                  self.config.dataset)
            self.note_skipped(batch.skipped, val=dataset is not None)
        field, what, skipped = ("dataset", "training sample", self.skipped) if dataset is None \
            else ("val_dataset", "sample", self.val_skipped)
        raise ConfigError(f"data.{field}: no {what} of {dataset or self.config.dataset} can be "
                          f"read: {next(iter(skipped.values()), 'the part is empty')}")

    def _stream(self, part: str, spec: Any, *, epoch: int, batch_size: int | None = None,
                dataset: str | None = None) -> Any:
        limit = (self.config.train_size or 0) if part == "train" else 0
        return self.client.stream_epoch(
            dataset or self.config.dataset, spec, seed=self.seed, epoch=epoch,
            batch_size=batch_size or self.config.batch_size, part=part,
            holdout_fraction=self.config.holdout_fraction, limit=limit)

    def encode(self, samples: list[Any]) -> torch.Tensor:
        if self.vocab is not None:
            return self.vocab.encode(samples, self.config.max_tokens)
        return stack_images(samples)

    def plan(self, epoch: int, *, shard: int = 0, num_shards: int = 1) -> EpochPlan:
        """The epoch plan the server streams for this shard (the same as ``LocalSource``'s)."""
        return EpochPlan(self.size, self.seed, epoch, self.config.batch_size, self.train, shard,
                         num_shards)

    def num_train_batches(self, *, shard: int = 0, num_shards: int = 1) -> int:
        return self.plan(0, shard=shard, num_shards=num_shards).num_batches

    def train_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                      num_shards: int = 1) -> Iterator[Batch]:
        for x, y, _ in self._train(epoch, start_batch, shard, num_shards, decoded=False):
            yield x, y

    def decoded_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                        num_shards: int = 1) -> Iterator[DecodedBatch]:
        """``train_batches`` streamed with no spec (decoded uint8 images, not augmented), with
        each sample's augment index: what ``data.augment_device`` augments on the device."""
        plan = self.plan(epoch, shard=shard, num_shards=num_shards)
        for x, y, indices in self._train(epoch, start_batch, shard, num_shards, decoded=True):
            yield x, y, plan.augment_indices(indices.tolist())

    def _train(self, epoch: int, start_batch: int, shard: int, num_shards: int, *,
               decoded: bool) -> Iterator[tuple[Any, Any, torch.Tensor]]:
        stream = self._open(epoch, start_batch, shard, num_shards, decoded)
        remaining = self.num_train_batches(shard=shard, num_shards=num_shards) - start_batch
        received: list[torch.Tensor] = []
        batches = 0
        try:
            for x, y, indices, skipped, targets in stream:  # EpochItem
                received += [indices, torch.as_tensor([i for i, _ in skipped], dtype=torch.int64)]
                self.note_skipped(skipped)
                batches += 1
                if batches == remaining:  # the last batch: start the next epoch's stream
                    self._ahead = ((epoch + 1, 0, shard, num_shards, decoded),
                                   self._open(epoch + 1, 0, shard, num_shards, decoded))
                if len(y) and self.info.task == "segmentation":
                    yield x, streamed_masks(x, targets), indices
                elif len(y) and self.info.task == "detection":
                    yield x, streamed_boxes(x, targets), indices
                elif len(y):
                    yield (self.encode(x) if self.vocab is not None else x), y, indices
        finally:
            stream.close()
        self._check_exactly_once(epoch, start_batch, shard, num_shards, received)

    def _open(self, epoch: int, start_batch: int, shard: int, num_shards: int,
              decoded: bool = False) -> Prefetch:
        """The epoch's stream: the one opened ahead if it is that one, else a new one.
        ``decoded``: streamed with no spec (``decoded_batches``)."""
        key = (epoch, start_batch, shard, num_shards, decoded)
        spec = None if decoded else self.config.augment
        if self._ahead is not None:
            ahead_key, ahead = self._ahead
            self._ahead = None
            if ahead_key == key:
                return ahead
            ahead.close()  # not what the trainer asked for (a resume, another shard)
        if self._dataset is None or self._dataset.shard() != (shard, num_shards) \
                or self._dataset.spec is not spec:
            self._dataset = RemoteEpochDataset(
                self.config.addresses, self.config.dataset, spec, seed=self.seed,
                batch_size=self.config.batch_size, part="train",
                holdout_fraction=self.config.holdout_fraction, limit=self.config.train_size or 0,
                prefetch=self.config.prefetch, rank=shard, world_size=num_shards,
                with_indices=True, client_options=self.client_options)
        self._dataset.set_epoch(epoch, start_batch)
        return self._dataset.open(self.client)

    def _check_exactly_once(self, epoch: int, start_batch: int, shard: int, num_shards: int,
                            received: list[torch.Tensor]) -> None:
        """Compare what arrived with the epoch plan: every planned sample once, delivered or
        reported skipped, nothing else.

        Raises:
            AugsvcError: a sample was lost or repeated (a server or network fault got through).
        """
        plan = self.plan(epoch, shard=shard, num_shards=num_shards)
        planned = np.concatenate([np.zeros(0, np.int64), *plan.batches(start_batch)])
        got = torch.cat(received).numpy() if received else np.zeros(0, np.int64)
        if not np.array_equal(np.sort(got), np.sort(planned)):
            lost = np.setdiff1d(planned, got).size
            repeated = got.size - np.unique(got).size
            raise AugsvcError(f"epoch {epoch}: {lost} planned samples never arrived and {repeated} "
                              "arrived more than once")
        self.verified_samples += got.size

    def holdout_batches(self) -> Iterator[Batch]:
        if not self.info.holdout_size:
            return  # no validation data: the trainer's metrics are NaN
        val = self.config.val_dataset
        batches = self._stream("holdout", self.config.eval_augment, epoch=0) if val is None \
            else self._stream("all", self.config.eval_augment, epoch=0, dataset=val)
        for batch in batches:
            self.note_skipped(batch.skipped, val=val is not None)
            if batch.samples and self.info.task == "segmentation":
                yield self.encode(batch.samples), streamed_masks(None, batch.targets)
            elif batch.samples and self.info.task == "detection":
                yield self.encode(batch.samples), streamed_boxes(batch.samples, batch.targets)  # type: ignore[misc]
            elif batch.samples:
                yield self.encode(batch.samples), torch.from_numpy(batch.labels)

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead[1].close()
            self._ahead = None
        self.client.close()
