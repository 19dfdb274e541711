"""Shared fixtures: deterministic structured images; one torch thread per test process."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from augsvc.service.epochs import EpochStreamer
from augsvc.service.observe import CallObserver
from augsvc.service.server import build_server

# pytest-xdist already runs one process per core; torch's own thread pool on top of that spins
# on a busy machine (a 64x64 batch norm went from 0.3 ms to 20 ms), so tests use one thread.
torch.set_num_threads(1)


def structured_image(height: int = 64, width: int = 80, channels: int = 3,
                     seed: int = 0) -> np.ndarray:
    """Gradients plus a few rectangles: geometry and colour changes are visible, not noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) * 127 / (width + height)], -1)
    for _ in range(3):
        y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
        base[y0:y0 + height // 4, x0:x0 + width // 4] = rng.integers(0, 256, 3)
    image = base.astype(np.uint8)
    if channels == 1:
        return image[..., 0].copy()
    if channels == 4:
        alpha = (np.arange(width)[None, :] * 255 // width).repeat(height, 0).astype(np.uint8)
        return np.concatenate([image, alpha[..., None]], -1)
    return image


@pytest.fixture
def rgb() -> np.ndarray:
    return structured_image()


def wait_for(condition: Callable[[], object], timeout: float, what: str = "timed out waiting") -> None:
    """Poll ``condition`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@contextlib.contextmanager
def serving(datasets: Mapping[str, Path | str], workers: int = 0,
            observers: Sequence[CallObserver] = ()) -> Iterator[str]:
    """A real server in this process that streams ``datasets`` by name (besides the built-ins),
    with ``workers`` epoch workers, telling ``observers`` of every call; yields its address and
    stops it after."""
    epochs = EpochStreamer({name: str(path) for name, path in datasets.items()}, workers=workers)
    server, port = build_server("127.0.0.1:0", epochs=epochs, observers=observers)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)
