"""The trainer's batch sources by name (``data.source`` in the run config)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from training.config import ConfigError, DataConfig
from training.data import BatchSource
from training.device_augment import device_augmented
from training.local import LocalSource, MemorySource
from training.remote import RemoteSource

__all__ = ["SOURCES", "create_source"]

SOURCES: Mapping[str, Callable[..., BatchSource]] = {
    "local": LocalSource,  # the library in this process, a DataLoader over the epoch plan
    "memory": MemorySource,  # the local source's epoch 0 kept as tensors: small studies
    "remote": RemoteSource,  # the service's StreamEpoch
}


def create_source(config: DataConfig, seed: int, *, pin_memory: bool = False) -> BatchSource:
    """The batch source ``config.source`` names.

    Raises:
        ConfigError: an unknown source or dataset, a bad augmentation spec, or an unreachable
            service; a ``data.augment_device`` the source or spec cannot follow.
    """
    make = SOURCES.get(config.source)
    if make is None:
        raise ConfigError(f"data.source: unknown source {config.source!r}; sources: "
                          f"{', '.join(sorted(SOURCES))}")
    try:
        source = make(config, seed, pin_memory=pin_memory)
    except ConfigError:
        raise
    except (ValueError, OSError) as exc:
        raise ConfigError(f"data: {exc}") from exc
    return device_augmented(source, config, seed)  # the source itself unless data.augment_device
