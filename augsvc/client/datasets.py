"""torch IterableDatasets over the service, for training loops (DDP ranks x DataLoader workers).

``RemoteEpochDataset`` wraps :func:`~augsvc.client.stream_epoch`: a background thread keeps
``prefetch`` batches ready, and the shard is chosen from the DDP rank and the DataLoader worker so
that ``world_size x num_workers`` streams split the epoch between them without overlap.
``RemoteAugmentDataset`` augments a local dataset remotely, batch by batch.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from augsvc.client.augmenter import AugmentClient, Pending
from augsvc.client.epochs import EpochBatch, stream_epoch
from augsvc.client.prefetch import Prefetch
from augsvc.image.tensors import stack_images, to_tensor
from augsvc.plan import EpochPlan

__all__ = ["EpochItem", "RemoteAugmentDataset", "RemoteEpochDataset", "worker_shard"]

_log = logging.getLogger("augsvc.client")


class EpochItem(NamedTuple):
    """A batch with its report: the dataset indices of its samples, and the planned samples the
    server skipped as (index, reason). ``indices`` and the skipped indices are the batch's plan."""

    x: Any
    labels: torch.Tensor
    indices: torch.Tensor
    skipped: tuple[tuple[int, str], ...]
    targets: list[dict[str, torch.Tensor]] | None = None


def worker_shard(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(shard, num_shards) for this DDP rank and DataLoader worker: rank r, worker w of W is shard
    ``r * W + w`` of ``world_size * W``. Rank and world size default to ``torch.distributed``'s."""
    if rank is None or world_size is None:
        dist = torch.distributed
        ready = dist.is_available() and dist.is_initialized()
        rank = dist.get_rank() if ready else 0
        world_size = dist.get_world_size() if ready else 1
    worker = get_worker_info()
    workers, worker_id = (worker.num_workers, worker.id) if worker is not None else (1, 0)
    return rank * workers + worker_id, world_size * workers


class RemoteEpochDataset(IterableDataset[Any]):
    """Batches of a server-side dataset, augmented by the service, for a torch training loop.

    Items are whole batches ``(x, labels)``; ``(x, targets)`` for detection and segmentation
    datasets, with ``targets`` a list of dicts of tensors per image (``boxes``, ``labels``,
    ``masks`` (N, H, W) or ``mask`` (H, W): what torchvision's detection models take) and ``x`` a
    list of CxHxW tensors when the images differ in size; or :class:`EpochItem` ``(x, labels,
    indices, skipped, targets)`` with ``with_indices``. Otherwise x is a uint8 ``(B, C, H, W)``
    tensor for images and a list of strings for text; use ``DataLoader(ds, batch_size=None)`` or
    iterate directly. Samples the server could not read (corrupt files) are logged as warnings
    (logger ``augsvc.client``) and listed in ``skipped`` as (index, reason); a batch left with no
    sample is not yielded unless ``with_indices`` is set (its report still arrives).

    Args:
        addresses: one server or several replicas.
        dataset, spec, seed, batch_size, part, holdout_fraction, limit: as in :func:`stream_epoch`.
        prefetch: batches kept ready ahead of the consumer by a background thread.
        rank, world_size: the DDP position; default: from ``torch.distributed`` when initialised.
        stall_timeout: seconds without a batch before the stream resumes on another replica,
            None to wait forever (:func:`stream_epoch`).
        client_options: keyword arguments for :class:`~augsvc.client.AugmentClient` (token, tls,
            keepalive).

    Call :meth:`set_epoch` before each epoch.
    """

    def __init__(self, addresses: str | Sequence[str], dataset: str, spec: Any = None, *,
                 seed: int, batch_size: int, epoch: int = 0, part: str = "all",
                 holdout_fraction: float = 0.0, limit: int = 0, prefetch: int = 4,
                 rank: int | None = None, world_size: int | None = None,
                 with_indices: bool = False, client_options: dict[str, Any] | None = None,
                 stall_timeout: float | None = 30.0) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch must be >= 1, got {prefetch}")
        if stall_timeout is not None and not stall_timeout > 0:
            raise ValueError(f"stall_timeout must be > 0 seconds or None, got {stall_timeout}")
        self.addresses, self.dataset, self.spec = addresses, dataset, spec
        self.seed, self.batch_size, self.epoch = seed, batch_size, epoch
        self.part, self.holdout_fraction, self.limit = part, holdout_fraction, limit
        self.prefetch, self.rank, self.world_size = prefetch, rank, world_size
        self.client_options = client_options or {}
        self.with_indices = with_indices
        self.stall_timeout = stall_timeout
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Stream ``epoch`` next, from batch ``start_batch`` of this stream's shard."""
        self.epoch, self.start_batch = epoch, start_batch

    def shard(self) -> tuple[int, int]:
        """(shard, num_shards) of this process and DataLoader worker."""
        return worker_shard(self.rank, self.world_size)

    def open(self, client: AugmentClient) -> Prefetch:
        """Start streaming the current epoch through ``client`` now; iterate the result.

        Opening the next epoch while the current one finishes hides the stream's start-up (the
        server builds its first batches meanwhile), and a client kept across epochs saves a
        connection per epoch. Close the result if it is not consumed to the end.
        """
        shard, num_shards = self.shard()
        epoch, start_batch = self.epoch, self.start_batch

        def batches() -> Iterator[EpochBatch]:  # runs on the thread: reads no mutable state
            return stream_epoch(
                client, self.dataset, self.spec, seed=self.seed, epoch=epoch,
                batch_size=self.batch_size, shard=shard, num_shards=num_shards,
                start_batch=start_batch, part=self.part,
                holdout_fraction=self.holdout_fraction, limit=self.limit,
                stall_timeout=self.stall_timeout)

        return Prefetch(batches, self._item, self.prefetch)

    def __iter__(self) -> Iterator[Any]:
        # A connection per iteration, made where it is used: a gRPC channel must not cross the
        # fork into DataLoader workers.
        client = AugmentClient(self.addresses, **self.client_options)
        batches = self.open(client)
        try:
            for item in batches:
                if self.with_indices or len(item[1]):
                    yield item
        finally:
            batches.close()
            client.close()

    def _item(self, batch: EpochBatch) -> Any:
        """A received batch as the dataset's item (runs on the prefetch thread)."""
        labels = torch.from_numpy(batch.labels)
        if batch.stacked is not None:  # (N, H, W[, C]) -> (N, C, H, W), one copy
            stacked = batch.stacked if batch.stacked.ndim == 4 else batch.stacked[..., None]
            x: Any = torch.from_numpy(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2)))
        elif batch.targets is not None and len({s.shape for s in batch.samples}) > 1:
            x = [to_tensor(s) for s in batch.samples]  # detection models take images of any size
        elif batch.samples and isinstance(batch.samples[0], np.ndarray):
            x = stack_images(batch.samples)
        else:
            x = batch.samples
        targets = None if batch.targets is None else \
            [{name: torch.from_numpy(value) for name, value in t.items()} for t in batch.targets]
        if batch.skipped:
            _log.warning("%s: the server skipped %d unreadable sample(s) of batch %d: %s",
                         self.dataset, len(batch.skipped), batch.batch_index,
                         "; ".join(f"{i}: {why}" for i, why in batch.skipped[:3]))
        if self.with_indices:
            return EpochItem(x, labels, torch.from_numpy(batch.indices), batch.skipped, targets)
        return (x, labels) if targets is None else (x, targets)

class RemoteAugmentDataset(IterableDataset[Any]):
    """A local dataset augmented by the service: this process reads, the servers augment.

    Each epoch visits ``base`` in the order of its :class:`~augsvc.plan.EpochPlan` (seed, epoch,
    and the shard of this DDP rank and DataLoader worker) and sends each batch as one
    AugmentImages call with the plan's augment indices (``epoch * len(base) + i``), so the result
    equals ``AugmentedImageDataset`` in-process. ``prefetch`` calls are kept in flight; with
    several addresses they are spread over the replicas by round_robin.

    Args:
        addresses: one server or several replicas.
        base: indexable with ``len``: HxW(xC) uint8 arrays or ``(image, label)`` pairs.
        spec: the augmentation spec or a server preset name.
        seed: the run's seed (batch order and augmentation).
        batch_size: samples per call and per item.
        shuffle: False visits ``base`` in order (still sharded).
        client_options: keyword arguments for :class:`~augsvc.client.AugmentClient`.

    Items are ``(x, labels)`` (uint8 ``(B, C, H, W)`` and int64) for labelled data, else ``x``.
    """

    def __init__(self, addresses: str | Sequence[str], base: Sequence[Any], spec: Any, *,
                 seed: int, batch_size: int, epoch: int = 0, shuffle: bool = True,
                 prefetch: int = 4, rank: int | None = None, world_size: int | None = None,
                 client_options: dict[str, Any] | None = None) -> None:
        if prefetch < 1 or batch_size < 1:
            raise ValueError(f"prefetch and batch_size must be >= 1, got {prefetch}, {batch_size}")
        self.addresses, self.base, self.spec = addresses, base, spec
        self.seed, self.batch_size, self.epoch, self.shuffle = seed, batch_size, epoch, shuffle
        self.prefetch, self.rank, self.world_size = prefetch, rank, world_size
        self.client_options = client_options or {}

    def set_epoch(self, epoch: int) -> None:
        """Visit and augment as ``epoch`` from the next iteration on."""
        self.epoch = epoch

    def shard(self) -> tuple[int, int]:
        """(shard, num_shards) of this process and DataLoader worker."""
        return worker_shard(self.rank, self.world_size)

    def plan(self) -> EpochPlan:
        """This epoch's plan for this process and DataLoader worker."""
        shard, num_shards = self.shard()
        return EpochPlan(len(self.base), self.seed, self.epoch, self.batch_size, shard=shard,
                         num_shards=num_shards, shuffle=self.shuffle)

    def __iter__(self) -> Iterator[Any]:
        client = AugmentClient(self.addresses, **self.client_options)
        pending: deque[tuple[Pending[Any], list[Any] | None]] = deque()
        plan = self.plan()
        batches = plan.batches()

        def submit() -> None:
            indices = next(batches, None)
            if indices is None:
                return
            items = [self.base[int(i)] for i in indices]
            labelled = bool(items) and isinstance(items[0], tuple)
            images = [np.asarray(item[0] if labelled else item) for item in items]
            call = client.augment_images_async(images, self.spec, seed=self.seed,
                                               indices=plan.augment_indices(indices))
            pending.append((call, [item[1] for item in items] if labelled else None))

        try:
            for _ in range(self.prefetch):
                submit()
            while pending:
                call, labels = pending.popleft()
                results = call.result()
                submit()
                x = stack_images([r.image for r in results])
                yield x if labels is None else (x, torch.as_tensor(labels, dtype=torch.int64))
        finally:
            for call, _ in pending:
                call.cancel()
            client.close()
