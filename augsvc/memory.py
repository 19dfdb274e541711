"""Keep large buffers in the heap, so batch-sized allocations do not page-fault every time.

glibc serves a large ``malloc`` with a fresh ``mmap`` and gives it back on ``free``. A 9.6 MB
image batch is copied several times on its way through the service (worker output, gRPC
message, socket buffers), and each fresh mapping is faulted in and zeroed page by page: in the
service benchmark that kernel time was about a quarter of the CPU spent per batch. Raising the
mmap threshold and the trim threshold makes freed batch buffers stay in the heap for the next
batch. The cost is memory the process keeps after a peak (at most a few batches' worth here).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["reuse_large_buffers"]

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

# Largest mmap threshold glibc accepts on 64-bit systems (HEAP_MAX_SIZE / 2).
_MMAP_THRESHOLD = 32 * 1024 * 1024
_TRIM_THRESHOLD = 1024 * 1024 * 1024
_TOP_PAD = 64 * 1024 * 1024


@functools.cache
def reuse_large_buffers() -> bool:
    """Tune this process's glibc allocator to reuse batch-sized buffers (once per process).

    Returns:
        True when the settings took effect; False where the C library has no ``mallopt``
        (musl, macOS), where nothing changes.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in (
        (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
        (_M_TOP_PAD, _TOP_PAD)))
