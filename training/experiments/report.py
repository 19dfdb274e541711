"""The report writer: CSV files, PNG plots and a ``report.md`` that embeds them, in one folder.

An experiment builds a :class:`Report`, adds paragraphs, tables, CSVs and figures in reading
order, then calls :meth:`Report.write`; the header records the exact command, the settings and
the wall time, so a report says how to reproduce itself.
"""

from __future__ import annotations

import csv
import math
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["DPI", "Report", "mean_std", "pm", "write_csv"]

DPI = 90  # small PNGs (they are committed under docs/experiments/)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std of the finite values (NaN, NaN when none is finite)."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return math.nan, math.nan
    return float(finite.mean()), float(finite.std())


def pm(values: Sequence[float], digits: int = 3, *, scale: float = 1.0) -> str:
    """``"mean ± std"`` of ``values * scale`` for a table cell; ``"—"`` when nothing is finite."""
    mean, std = mean_std([v * scale for v in values])
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Rows of dicts to a CSV with the first row's keys as header (floats at full precision)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        fields = list(rows[0]) if rows else []
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


class Report:
    """One experiment's folder: ``report.md`` plus the CSVs and PNGs it links to.

    Args:
        name: the experiment's registry name (used in the command line).
        title: the report's heading.
        out_dir: the folder (created).
        settings: what was run (seeds, budgets, models), listed under the heading.
        command: the command that reproduces the run.
    """

    def __init__(self, name: str, title: str, out_dir: Path, *, settings: Mapping[str, Any],
                 command: str) -> None:
        self.name, self.title, self.out_dir = name, title, Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.settings = dict(settings)
        self.command = command
        self.body: list[str] = []
        self.files: list[str] = []
        self.start = time.perf_counter()

    def section(self, heading: str) -> None:
        self.body.append(f"## {heading}\n")

    def text(self, paragraph: str) -> None:
        self.body.append(paragraph.strip() + "\n")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A markdown table; cells are written with ``str``."""
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        self.body.append("\n".join(lines) + "\n")

    def csv(self, filename: str, rows: Sequence[Mapping[str, Any]]) -> Path:
        """Write a CSV next to the report and list it among the files."""
        self.files.append(filename)
        return write_csv(self.out_dir / filename, rows)

    def figure(self, fig: plt.Figure, filename: str, caption: str) -> Path:
        """Save ``fig`` as a PNG (closing it) and embed it here."""
        path = self.out_dir / filename
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        self.files.append(filename)
        self.body.append(f"![{caption}]({filename})\n\n*{caption}*\n")
        return path

    def write(self) -> Path:
        """Write ``report.md`` (header, body, file list) and return its path."""
        seconds = time.perf_counter() - self.start
        header = [f"# {self.title}\n", f"Command: `{self.command}`\n",
                  f"Run time: {seconds:.0f} s on {platform.machine()} "
                  f"({torch.get_num_threads()} torch thread(s), torch {torch.__version__}).\n",
                  "Settings:\n", *(f"- {k}: {v}" for k, v in self.settings.items()), ""]
        footer = ["## Files\n", *(f"- [{f}]({f})" for f in self.files), ""]
        path = self.out_dir / "report.md"
        path.write_text("\n".join([*header, *self.body, *footer]) + "\n", encoding="utf-8")
        return path
