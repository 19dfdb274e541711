"""What the benchmark scripts share: the header facts, the table, the clocks, the photo crops.

Imports only the standard library at module level (numpy lazily, in ``photo_crops``), so that a
script can import it before ``one_thread_per_process`` sets the variables numpy and the rest read
when they load.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]  # the repository root
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
SIZE = 256  # photo crops are SIZE x SIZE
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# OpenMP (torch), OpenBLAS, MKL, numexpr and OpenCV size their thread pools from these on load.
ONE_THREAD = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                            "NUMEXPR_NUM_THREADS", "OPENCV_FOR_THREADS_NUM"), "1")


def one_thread_per_process() -> None:
    """One thread per process in this process and every process it starts later, and no PyPI
    update check from albumentations (a network call on import). Takes effect only before those
    libraries load: scripts call it first thing when run, never when imported."""
    os.environ.update(ONE_THREAD)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


# --------------------------------------------------------------------------- the header line

def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def cpu_summary(note: str = "") -> str:
    """``<CPU model> (<n> cores[, note])``: what the numbers of a CPU benchmark depend on."""
    return f"{cpu_name()} ({os.cpu_count()} cores{', ' + note if note else ''})"


def versions(**libraries: ModuleType) -> str:
    """``name version, ..., python X.Y.Z``, for each library as named by the keyword, in order."""
    return ", ".join([*(f"{name} {module.__version__}" for name, module in libraries.items()),
                      f"python {platform.python_version()}"])


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other jobs on a shared machine skew wall times."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# --------------------------------------------------------------------------- the table

def render(columns: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool, left: int = 1) -> str:
    """A table as Markdown or aligned plain text; the first ``left`` columns are text."""
    if markdown:
        lines = ["| " + " | ".join(columns) + " |",
                 "|" + "|".join(["---"] * left + ["---:"] * (len(columns) - left)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    table = [list(columns), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    table.insert(1, ["-" * w for w in widths])
    return "\n".join("  ".join(c.ljust(w) if i < left else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in table)


# --------------------------------------------------------------------------- clocks

def timed(run: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of ``run()``."""
    t0 = time.perf_counter()
    out = run()
    return time.perf_counter() - t0, out


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Collect, then keep the collector off inside, as timeit does: a collection in the middle of
    a timed pass lands on whichever side happens to trigger it."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its descendants, from /proc
    (live ones, and ended ones their parent has waited for).

    Both sides of a comparison are children of this process (server, DataLoader workers), and
    only one side works at a time, so the difference over a pass is that side's CPU cost, which
    other jobs on a shared machine do not inflate the way they inflate wall time.
    """
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    text = f.read()
            except OSError:  # ended meanwhile
                continue
            fields = text[text.rindex(")") + 2:].split()
            parents[int(entry)] = int(fields[1])
            # utime + stime, and cutime + cstime: children that ended and were waited for
            used[int(entry)] = sum(int(v) for v in fields[11:15]) / CLOCK_TICKS
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += used.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


# --------------------------------------------------------------------------- data

def photo_crops(count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` random SIZE x SIZE RGB crops of scikit-image's sample photos (fixed seed):
    real images, offline, the same in every benchmark."""
    import numpy as np
    import skimage.data

    rng = np.random.default_rng(seed)
    photos = [getattr(skimage.data, name)() for name in PHOTOS]
    out = []
    for k in range(count):
        photo = photos[k % len(photos)]
        y = int(rng.integers(0, photo.shape[0] - SIZE + 1))
        x = int(rng.integers(0, photo.shape[1] - SIZE + 1))
        out.append(np.ascontiguousarray(photo[y:y + SIZE, x:x + SIZE, :3]))
    return out
