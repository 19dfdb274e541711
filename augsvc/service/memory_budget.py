"""Memory a server process may use: a hard ceiling from the kernel and a budget requests reserve.

Two lines of defence against a request that would take the process down:

1. **The budget** (:class:`MemoryBudget`): before it runs, a request reserves what it will hold
   (decoded inputs, the largest image its pipeline can make, its reply), from a bound computed
   before any work. A request larger than the whole budget can never run (LimitError,
   RESOURCE_EXHAUSTED); one that does not fit next to the requests in flight is asked to come
   back (BusyError, UNAVAILABLE with a retry hint).
2. **The ceiling** (:func:`apply_ceiling`): ``RLIMIT_DATA`` set to ``--max-memory``, so an
   allocation the accounting missed fails inside the request (MemoryError, answered
   RESOURCE_EXHAUSTED) instead of the kernel's OOM killer ending the process and every stream
   on it. Batch worker processes inherit it.
"""

from __future__ import annotations

import os
import re
import resource
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from augsvc.errors import BusyError, LimitError

__all__ = ["MemoryBudget", "apply_ceiling", "machine_memory", "memory_ceiling", "parse_memory",
           "process_status_bytes"]

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
          "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12,
          "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
AUTO_FRACTION = 0.8
"""Share of the machine's memory ``auto`` gives the server's processes together."""
MIN_CEILING = 256 * 2**20
"""Below this a Python process with the service's libraries cannot run at all."""


def parse_memory(text: str) -> int | str | None:
    """``"auto"``, ``"off"`` (also ``"0"``), or a size in bytes from text like ``8GiB``/``512MB``;
    None when the text is none of these."""
    value = str(text).strip().lower()
    if value in ("auto", "off"):
        return value
    match = _SIZE.match(value)
    if match is None or match.group(2) not in _UNITS:
        return None
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size == 0:
        return "off"
    return size if size >= MIN_CEILING else None


def machine_memory() -> int:
    """Bytes of memory this process can have: the machine's, or its container's (cgroup) if less."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def memory_ceiling(setting: str, processes: int = 1) -> int | None:
    """The bytes each process may use for a ``max_memory`` setting, or None for no ceiling.

    ``auto`` shares 80% of :func:`machine_memory` among the server processes; the rest is left
    to the batch workers' steady state, the page cache and the rest of the machine.
    """
    parsed = parse_memory(setting)
    if parsed is None:
        raise ValueError(f"max_memory {setting!r} is not auto, off or a size such as 8GiB")
    if parsed == "off":
        return None
    if parsed == "auto":
        return max(MIN_CEILING, int(machine_memory() * AUTO_FRACTION) // max(1, processes))
    assert isinstance(parsed, int)
    return parsed


def apply_ceiling(limit: int | None) -> None:
    """Set this process's ``RLIMIT_DATA`` (inherited by the processes it starts) to ``limit``.

    ``RLIMIT_DATA`` counts the private writable memory a process maps (heap, anonymous maps,
    thread stacks), reserved or touched; shared-memory batch slots do not count. Past it, an
    allocation fails (numpy and Python raise MemoryError, OpenCV an error) instead of growing
    the process until the OOM killer ends it.
    """
    if limit is None:
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def process_status_bytes(key: str, pid: int | str = "self") -> int:
    """A memory figure of ``/proc/<pid>/status`` in bytes: ``VmData`` (what RLIMIT_DATA counts),
    ``VmRSS``, ``VmHWM`` (peak RSS); 0 where /proc or the process is missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class MemoryBudget:
    """Bytes that requests in flight may reserve, out of a process's ceiling.

    Args:
        total: bytes requests may hold together; None: no budget (every reservation succeeds).
        retry_after: the retry hint of a refusal for now, in seconds.
    """

    def __init__(self, total: int | None, retry_after: float = 1.0) -> None:
        self.total = total
        self.retry_after = retry_after
        self.reserved = 0
        self._lock = threading.Lock()

    @classmethod
    def for_ceiling(cls, ceiling: int | None) -> MemoryBudget:
        """The budget under a process ceiling: what the process does not hold already, halved.

        Half, because a request holds more than its bound says (the library's temporaries, the
        serialized reply beside the reply message) and the process needs room besides requests.
        """
        if ceiling is None:
            return cls(None)
        return cls(max(0, ceiling - process_status_bytes("VmData")) // 2)

    @contextmanager
    def reserve(self, nbytes: int, what: str = "the request") -> Iterator[None]:
        """Hold ``nbytes`` of the budget while the block runs.

        Raises:
            LimitError: ``nbytes`` is more than the whole budget: it can never run here.
            BusyError: it does not fit next to the requests in flight now.
        """
        if self.total is None:
            yield
            return
        if nbytes > self.total:
            raise LimitError(f"{what} needs about {_mib(nbytes)} of memory, more than this "
                             f"server's budget of {_mib(self.total)} (--max-memory)")
        with self._lock:
            if self.reserved + nbytes > self.total:
                raise BusyError(f"{what} needs about {_mib(nbytes)} of memory and "
                                f"{_mib(self.total - self.reserved)} is free now",
                                self.retry_after)
            self.reserved += nbytes
        try:
            yield
        finally:
            with self._lock:
                self.reserved -= nbytes


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:.0f} MiB"
