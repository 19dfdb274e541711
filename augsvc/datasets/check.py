"""``augsvc datasets check``: read every sample of a dataset before training, and say what is odd.

Each image file is read the way training reads it (limits, orientation, channel policy), so what
this reports unreadable is exactly what an epoch would skip. Files that read but need converting
(gray, RGBA, palette, CMYK, 16-bit, turned by EXIF) are listed too: they are fine under the
``rgb`` policy, and worth knowing about under ``keep``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from augsvc.datasets.base import Dataset
from augsvc.datasets.files import ImageFolderDataset
from augsvc.errors import InputError
from augsvc.image.io import exif_orientation

__all__ = ["CheckReport", "check_dataset"]

_MODES = {"L": "gray", "LA": "gray with alpha", "RGBA": "RGBA", "P": "palette", "PA": "palette",
          "CMYK": "CMYK", "I;16": "16-bit", "I;16B": "16-bit", "I": "32-bit integer",
          "F": "32-bit float", "1": "1-bit"}


@dataclass
class CheckReport:
    """What a check found: every sample is readable, unreadable, or oversized."""

    name: str
    size: int
    unreadable: dict[int, str] = field(default_factory=dict)  # index -> why
    oversized: dict[int, str] = field(default_factory=dict)
    odd: dict[str, list[str]] = field(default_factory=dict)  # what is odd -> files

    @property
    def ok(self) -> bool:
        """Whether every sample can be read."""
        return not self.unreadable and not self.oversized

    def lines(self, examples: int = 5) -> Iterator[str]:
        """The report for people: counts, then the problems, then the odd files."""
        bad = len(self.unreadable) + len(self.oversized)
        yield f"{self.name}: {self.size} samples, {self.size - bad} readable, " \
              f"{len(self.unreadable)} unreadable, {len(self.oversized)} over the size limits"
        for title, found in (("unreadable", self.unreadable), ("over the limits", self.oversized)):
            for index, reason in sorted(found.items()):
                yield f"  {title}: {index}: {reason}"
        for what, files in sorted(self.odd.items()):
            shown = ", ".join(files[:examples]) + (", ..." if len(files) > examples else "")
            yield f"  {len(files)} {what}: {shown}"


def check_dataset(dataset: Dataset, *, progress: bool | None = None) -> CheckReport:
    """Read every sample of ``dataset``; see :class:`CheckReport`.

    Args:
        progress: show a progress bar (None: when stderr is a terminal).
    """
    report = CheckReport(dataset.info.name, len(dataset))
    folder = dataset if isinstance(dataset, ImageFolderDataset) else None
    odd: dict[str, list[str]] = {}
    for index in tqdm(range(len(dataset)), desc="check", unit="sample",
                      disable=None if progress is None else not progress):
        if folder is not None:
            for what in _odd(folder.paths[index]):
                odd.setdefault(what, []).append(str(folder.paths[index].relative_to(folder.root)))
        try:
            dataset.sample(index)
        except InputError as exc:
            found = report.oversized if "over the limit" in str(exc) else report.unreadable
            found[index] = str(exc)
    report.odd = dict(sorted(odd.items(), key=lambda kv: -len(kv[1])))
    return report


def _odd(path: Path) -> list[str]:
    """What needs converting in an image file, from its header (nothing decoded)."""
    from PIL import Image

    try:
        data = path.read_bytes()  # once, for the mode and the orientation
        with Image.open(io.BytesIO(data)) as im:
            mode = im.mode
    except Exception:  # unreadable: the read that follows says why
        return []
    found = [f"{_MODES[mode]} ({mode})"] if mode in _MODES else []
    if exif_orientation(data) != 1:
        found.append("turned upright by their EXIF orientation")
    return found
