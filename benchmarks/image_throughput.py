"""Single-thread image throughput of augsvc's ImagePipeline vs raw albumentations, same params."""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["NUMEXPR_NUM_THREADS"] = "1"
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import argparse
import gc
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import albumentations as A
import cv2
import numpy as np
import skimage.data
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

from augsvc.image import IMAGE_TRANSFORMS, ImagePipeline
from augsvc.image.presets import image_preset
from augsvc.spec import TransformNode

cv2.setNumThreads(1)

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
SIZE = 256


def _one(name: str, **params: Any) -> dict[str, Any]:
    return {"transforms": [{"name": name, "p": 1.0, **params}]}


def rows() -> list[tuple[str, dict[str, Any]]]:
    """(label, spec) per benchmark row: each seed transform alone at p=1, then the full seed7."""
    seed7 = image_preset("seed7")
    assert seed7 is not None
    return [
        ("horizontal_flip", _one("horizontal_flip")),
        ("vertical_flip", _one("vertical_flip")),
        ("random_crop 224x224", _one("random_crop", height=224, width=224)),
        ("brightness_contrast", _one("brightness_contrast")),
        ("hue_saturation_value", _one("hue_saturation_value")),
        ("median_blur [3,5]", _one("median_blur", blur_limit=[3, 5])),
        ("gamma", _one("gamma")),
        ("shift_scale_rotate", _one("shift_scale_rotate")),
        ("seed7 (full pipeline)", seed7),
    ]


def make_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` random 256x256 RGB crops of scikit-image's sample photos (fixed seed)."""
    rng = np.random.default_rng(seed)
    photos = [getattr(skimage.data, name)() for name in PHOTOS]
    out = []
    for k in range(count):
        photo = photos[k % len(photos)]
        y = int(rng.integers(0, photo.shape[0] - SIZE + 1))
        x = int(rng.integers(0, photo.shape[1] - SIZE + 1))
        out.append(np.ascontiguousarray(photo[y:y + SIZE, x:x + SIZE, :3]))
    return out


def raw_compose(pipe: ImagePipeline) -> A.Compose:
    """Plain ``A.Compose`` of the very transforms (class and arguments) ``pipe`` builds."""
    assert pipe.spec is not None
    nodes = [n for n in pipe.spec.nodes if isinstance(n, TransformNode)]
    assert len(nodes) == len(pipe.spec.nodes), "flat specs only"
    # The plain albumentations class (not augsvc's alpha-keeping or stricter subclasses).
    infos = [IMAGE_TRANSFORMS[n.name] for n in nodes]
    return A.Compose([i.albu(**i.to_albu(n.params), p=n.p) for i, n in zip(infos, nodes, strict=True)])


@dataclass
class Totals:
    """Seconds spent per side, summed over all rounds, plus each round's augsvc/raw ratio."""

    raw: float = 0.0
    augsvc: float = 0.0
    seeded: float = 0.0
    round_ratios: list[float] = field(default_factory=list)


def timed(fn: Callable[[np.ndarray, int], Any], images: list[np.ndarray], start: int) -> float:
    """Seconds to call ``fn(image, start + k)`` for every image (GC paused, as timeit does)."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for k, image in enumerate(images):
            fn(image, start + k)
        return time.perf_counter() - t0
    finally:
        gc.enable()


def bench_row(spec: dict[str, Any], images: list[np.ndarray], rounds: int, seeded: bool) -> Totals:
    """Interleave raw / augsvc (/ albumentations-seeded) passes as ABCCBA, ``rounds`` times."""
    pipe = ImagePipeline(spec)
    compose, other = raw_compose(pipe), raw_compose(pipe)
    compose.set_random_state(np.random.default_rng(1), random.Random(1))

    def raw(image: np.ndarray, _: int) -> Any:
        return compose(image=image)["image"]

    def aug(image: np.ndarray, index: int) -> Any:
        return pipe(image, seed=0, index=index).image

    def albu_seeded(image: np.ndarray, index: int) -> Any:
        other.set_random_seed(index)
        return other(image=image)["image"]

    for k, image in enumerate(images[:20]):  # warm-up, indices never reused below
        raw(image, k), aug(image, 10**9 + k), albu_seeded(image, 10**9 + k)
    totals, n, counter = Totals(), len(images), 0
    for _ in range(rounds):
        t_raw = timed(raw, images, 0)
        t_aug = timed(aug, images, counter)
        t_seeded = timed(albu_seeded, images, counter) if seeded else 0.0
        t_seeded += timed(albu_seeded, images, counter + n) if seeded else 0.0
        t_aug += timed(aug, images, counter + n)
        t_raw += timed(raw, images, 0)
        counter += 2 * n
        totals.raw += t_raw
        totals.augsvc += t_aug
        totals.seeded += t_seeded
        totals.round_ratios.append(t_raw / t_aug)
    return totals


def header() -> str:
    """Versions and CPU in one line."""
    cpu = cpu_name()
    return (f"albumentations {A.__version__}, opencv {cv2.__version__}, numpy {np.__version__}, "
            f"python {platform.python_version()}; CPU: {cpu} ({os.cpu_count()} cores, 1 thread)")


COLUMNS = ("transform", "raw img/s", "augsvc img/s", "augsvc/raw", "median round ratio",
           "augsvc overhead µs/img", "albu-seeded img/s", "augsvc/albu-seeded")


def format_row(label: str, t: Totals, samples: int) -> list[str]:
    """One table row from the totals (``samples`` calls per side)."""
    raw_ips, aug_ips = samples / t.raw, samples / t.augsvc
    seeded = [f"{samples / t.seeded:,.0f}", f"{aug_ips * t.seeded / samples:.3f}"] \
        if t.seeded else ["-", "-"]
    return [label, f"{raw_ips:,.0f}", f"{aug_ips:,.0f}", f"{aug_ips / raw_ips:.3f}",
            f"{statistics.median(t.round_ratios):.3f}",
            f"{(t.augsvc - t.raw) / samples * 1e6:+.1f}", *seeded]


def render(table: list[list[str]], markdown: bool) -> str:
    """The table as Markdown or aligned plain text."""
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in table])
    widths = [max(len(r[i]) for r in [list(COLUMNS), *table]) for i in range(len(COLUMNS))]
    fmt = [list(COLUMNS), ["-" * w for w in widths], *table]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in fmt)


def main(argv: list[str] | None = None) -> None:
    """Parse options, run every row, print the header and the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=20000,
                    help="calls per side per row, split over rounds (default 20000)")
    ap.add_argument("--rounds", type=int, default=10, help="ABBA rounds per row (default 10)")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (400 samples, 2 rounds)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--no-seeded", action="store_true",
                    help="skip the albumentations set_random_seed baseline")
    args = ap.parse_args(argv)
    samples, rounds = (400, 2) if args.quick else (args.samples, args.rounds)
    per_pass = max(1, samples // (2 * rounds))
    pool = make_images(min(per_pass, 240))  # distinct crops (about 47 MB), cycled below
    images = [pool[k % len(pool)] for k in range(per_pass)]
    gc.freeze()  # long-lived objects (torch et al.) out of the collector: gc.collect() takes µs
    print(header())
    print(f"{SIZE}x{SIZE} RGB uint8 photo crops; {2 * rounds * per_pass} samples per side per row, "
          f"{rounds} rounds of raw/augsvc/albu-seeded x2 (ABCCBA)", flush=True)
    table = []
    for label, spec in rows():
        totals = bench_row(spec, images, rounds, seeded=not args.no_seeded)
        table.append(format_row(label, totals, 2 * rounds * per_pass))
    print(render(table, args.markdown))


if __name__ == "__main__":
    main()
