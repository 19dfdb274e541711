"""``data.augment_device``: the training augmentation on a torch device instead of in the source.

The split point is explicit: the source only reads and decodes, and everything in
``data.augment`` runs on the device.

- The source (``local``: the DataLoader; ``remote``: the service's StreamEpoch asked with no spec)
  delivers the training images as stored, decoded to uint8 ``(B, C, H, W)`` batches (so the
  dataset's images must all be of one size), with each sample's augment index in the epoch
  (:meth:`~training.data.BatchSource.decoded_batches`).
- :class:`DeviceAugmentSource` moves each batch to ``augment_device`` and applies the whole
  training spec there with :class:`~augsvc.image.torch_batch.TorchBatchPipeline`, with the run's
  seed and those indices: the draws the CPU path makes, so a batch equals the CPU path's (bit for
  bit; ``shift_scale_rotate`` within that backend's documented tolerance).
- The trainer then converts it to float on its own device as it does every batch
  (``training.devices.to_inputs``).

The holdout (``data.eval_augment``) is still prepared by the source. The device work happens when
the trainer asks for its next batch, so it counts in ``input_wait``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from augsvc.errors import SpecError
from augsvc.image.torch_batch import SUPPORTED, TorchBatchPipeline
from training.config import ConfigError, DataConfig
from training.data import Batch, BatchSource
from training.devices import resolve_device

__all__ = ["DeviceAugmentSource", "device_augmented", "resolve_augment_device"]

_FLOATS = ("normalize", "Normalize")  # float32 out: the trainer scales uint8 images itself


def resolve_augment_device(name: str) -> torch.device:
    """``auto`` -> cuda when present, else cpu.

    Raises:
        ConfigError: ``cuda`` without a GPU.
    """
    try:
        return resolve_device(name)
    except ConfigError:
        raise ConfigError("data.augment_device: 'cuda' asked for, but torch sees no GPU "
                          "(use auto or cpu)") from None


def device_augmented(source: BatchSource, config: DataConfig, seed: int) -> BatchSource:
    """``source`` with its training augmentation moved to ``config.augment_device``; ``source``
    itself when that is null or there is no ``data.augment`` (nothing to move).

    Raises:
        ConfigError: what the device path cannot do (see :class:`DeviceAugmentSource`); the
            source is closed first.
    """
    if config.augment_device is None or config.augment is None:
        return source
    try:
        return DeviceAugmentSource(source, config, seed)
    except ConfigError:
        source.close()
        raise


class DeviceAugmentSource(BatchSource):
    """The training batches of ``inner``, augmented on ``config.augment_device``.

    ``inner`` was built from the whole config, so its ``info`` (the image size after
    augmentation), holdout and epoch plan are the CPU path's; only its training batches are taken
    un-augmented, through ``inner.decoded_batches``.

    Raises:
        ConfigError: a text, segmentation or detection dataset (the batch backend augments images
            only), images with other than 1 or 3 channels, a spec with transforms the backend
            does not support (named) or with ``normalize``, ``cuda`` without a GPU.
    """

    def __init__(self, inner: BatchSource, config: DataConfig, seed: int) -> None:
        assert config.augment_device is not None
        self.inner, self.seed = inner, seed
        self.device = resolve_augment_device(config.augment_device)
        self.info = info = inner.info
        where = "data.augment_device"
        if info.kind != "image":
            raise ConfigError(f"{where}: augments images; {config.dataset} is a {info.kind} "
                              "dataset (set data.augment_device null)")
        if info.task != "classification":
            raise ConfigError(f"{where}: the torch batch backend augments images only, not the "
                              f"targets of the {info.task} dataset {config.dataset}; set "
                              "data.augment_device null")
        if info.in_channels not in (1, 3):
            raise ConfigError(f"{where}: the torch batch backend takes 1 or 3 channels, "
                              f"{config.dataset} has {info.in_channels}")
        try:
            self.pipeline = TorchBatchPipeline(config.augment)
        except SpecError as exc:
            raise ConfigError(f"{where}: data.augment: {exc}; or set data.augment_device null to "
                              "augment in the source on the CPU") from None
        floats = [n for n in self.pipeline.pipeline.transform_names if n in _FLOATS]
        if floats:
            rest = ", ".join(name for name in SUPPORTED if name not in _FLOATS)
            raise ConfigError(f"{where}: data.augment has {floats[0]}, which makes float32 images; "
                              "the trainer scales uint8 images itself (the CPU path refuses "
                              f"float images too); allowed: a flat list of {rest}")

    def train_batches(self, epoch: int, start_batch: int = 0, *, shard: int = 0,
                      num_shards: int = 1) -> Iterator[Batch]:
        for x, y, indices in self.inner.decoded_batches(epoch, start_batch, shard=shard,
                                                        num_shards=num_shards):
            x = x.to(self.device, non_blocking=True)  # from pinned memory when the trainer is on cuda
            yield self.pipeline(x, seed=self.seed, indices=indices), y

    def holdout_batches(self) -> Iterator[Batch]:
        return self.inner.holdout_batches()

    def num_train_batches(self, *, shard: int = 0, num_shards: int = 1) -> int:
        return self.inner.num_train_batches(shard=shard, num_shards=num_shards)

    @property
    def skipped(self) -> dict[int, str]:
        return self.inner.skipped

    @property
    def val_skipped(self) -> dict[int, str]:
        return self.inner.val_skipped

    def gallery(self, epoch: int, count: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = super().gallery(epoch, count)
        return images.cpu(), labels  # plotted on the host

    def close(self) -> None:
        self.inner.close()
