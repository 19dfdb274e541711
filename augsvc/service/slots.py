"""Shared-memory slots that batch workers write finished image batches into, lent one per batch.

A batch in a slot reaches the server process without being pickled through the pool's pipe, and
the server copies it once, straight into the reply's wire bytes. A slot is lent as a ``Lease``,
and a lease has one way back: ``Lease.end``, which returns the slot once nothing can write into it
any more, whether its batch was sent, failed, or was abandoned while a worker still builds it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from concurrent.futures import Future
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

__all__ = ["Lease", "SizeKey", "SlotPool"]

SizeKey = tuple[str, str | None, int]
"""(source, spec JSON, batch_size): the batches of one such stream are all about one size."""


class SlotPool:
    """Shared-memory buffers reused across batches and streams, and the batch sizes seen so far.

    At most ``budget`` bytes are held, and never more than half of what is free in the
    shared-memory file system (Docker gives /dev/shm 64 MB unless told otherwise); a batch that
    finds no slot travels pickled, as it would without slots.
    """

    def __init__(self, budget: int = 512 * 1024 * 1024) -> None:
        self.budget = budget
        self._free: list[SharedMemory] = []
        self._held = 0
        self._sizes: dict[SizeKey, int] = {}  # largest stacked batch seen, by kind of stream
        self._lock = threading.Lock()  # request threads take and give slots concurrently

    def learn(self, key: SizeKey, nbytes: int) -> None:
        """Remember a batch of ``nbytes`` for ``key``: its later batches get slots that fit it.
        Slots are sized by what was seen, since a batch's size is known only once it is built."""
        with self._lock:
            self._sizes[key] = max(nbytes, self._sizes.get(key, 0))

    def lease(self, key: SizeKey) -> Lease | None:
        """A slot for the next batch of ``key``, or None: no size learned yet, or no room."""
        size = self._sizes.get(key)
        slot = self.take(size) if size is not None else None
        return Lease(self, slot) if slot is not None else None

    def take(self, size: int) -> SharedMemory | None:
        """A free slot of at least ``size`` bytes, a new one if the budget allows, else None."""
        with self._lock:
            fits = [slot for slot in self._free if slot.size >= size]
            if fits:
                slot = min(fits, key=lambda s: s.size)
                self._free.remove(slot)
                return slot
            while self._free and self._held + size > self.budget:  # too small: make room
                self._drop(self._free.pop(0))
            if self._held + size > self.budget or not _shm_room(size):
                return None
            slot = SharedMemory(create=True, size=size)
            if not _reserve(slot):
                slot.close()
                slot.unlink()
                return None
            self._held += slot.size
            return slot

    def give(self, slot: SharedMemory) -> None:
        """Return a slot once nothing writes into it any more."""
        with self._lock:
            self._free.append(slot)

    def close(self) -> None:
        with self._lock:
            while self._free:
                self._drop(self._free.pop())

    def _drop(self, slot: SharedMemory) -> None:
        self._held -= slot.size
        slot.unlink()
        with contextlib.suppress(BufferError):  # a reply still views it: unmapped when it goes
            slot.close()


class Lease:
    """One slot lent to one batch, from ``SlotPool.lease``; ``end`` gives it back."""

    def __init__(self, pool: SlotPool, slot: SharedMemory) -> None:
        self._pool = pool
        self._slot = slot

    @property
    def where(self) -> tuple[str, int]:
        """(name, size): what a worker needs to open the slot and know what fits."""
        return self._slot.name, self._slot.size

    def view(self, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        """The batch a worker wrote into the slot, without a copy (valid until ``end``)."""
        return np.ndarray(shape, dtype, buffer=self._slot.buf)

    def end(self, future: Future[Any] | None) -> None:
        """Give the slot back once nothing can write into it any more: now when ``future``, the
        batch lent it, is done or cancelled, or was never started (None), else when its worker
        finishes (a slot handed out while a worker still writes would mix two batches)."""
        if future is None:
            self._pool.give(self._slot)
        else:
            future.add_done_callback(self._give)  # runs at once on a future that is done

    def _give(self, _done: Future[Any]) -> None:
        self._pool.give(self._slot)


def _reserve(slot: SharedMemory) -> bool:
    """Allocate the slot's memory now. The shared-memory file system hands pages out on first
    write, and a worker whose write finds it full dies of SIGBUS; reserving up front turns that
    into a slot refused here (False), and the batch travels pickled."""
    fd = getattr(slot, "_fd", -1)  # POSIX SharedMemory keeps its descriptor open
    if fd < 0 or not hasattr(os, "posix_fallocate"):
        return True  # nothing to reserve with (macOS, Windows): as before
    try:
        os.posix_fallocate(fd, 0, slot.size)
    except OSError:
        return False
    return True


def _shm_room(size: int) -> bool:
    try:
        return shutil.disk_usage("/dev/shm").free >= 2 * size
    except OSError:
        return True  # no /dev/shm (macOS): SharedMemory uses the system's own store
