"""Where a run computes: the device, inputs moved onto it, and the DDP process group."""

from __future__ import annotations

import os

import torch

from augsvc.errors import ConfigError

__all__ = ["distributed", "resolve_device", "to_inputs"]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when present, else cpu. Raises ConfigError for cuda without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' asked for, but torch sees no GPU (use auto or cpu)")
    return torch.device(name)


def to_inputs(x: torch.Tensor, device: torch.device, *, channels_last: bool = False) -> torch.Tensor:
    """Move a batch to ``device`` (non-blocking from pinned memory); uint8 images -> [-1, 1]."""
    x = x.to(device, non_blocking=True)
    if x.dtype == torch.uint8:
        x = x.float().div_(127.5).sub_(1.0)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
    return x


def distributed() -> tuple[int, int]:
    """(rank, world size) under torchrun, initialising the process group once; (0, 1) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()
