"""Single-thread image throughput of augsvc's ImagePipeline vs raw albumentations, same params."""

from __future__ import annotations

import argparse
import copy
import gc
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a file (python benchmarks/x.py) the script's folder is on sys.path, not the repository
# root that `benchmarks.` needs (python -m puts the current folder, the root, there itself).
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    SIZE,
    cpu_summary,
    gc_paused,
    one_thread_per_process,
    photo_crops,
    render,
    timed,
    versions,
)

# Run, not imported: one thread per process before numpy and OpenCV load and size their thread pools.
if __name__ == "__main__":
    one_thread_per_process()

import albumentations as A
import cv2
import numpy as np

from augsvc.image import IMAGE_TRANSFORMS, ImagePipeline
from augsvc.image.presets import image_preset
from augsvc.spec import TransformNode


def _one(name: str, **params: Any) -> dict[str, Any]:
    return {"transforms": [{"name": name, "p": 1.0, **params}]}


def rows(size: int = SIZE) -> list[tuple[str, dict[str, Any]]]:
    """(label, spec) per benchmark row: each seed transform alone at p=1, a cheap pipeline, then
    the full seed7. Crops take 7/8 of the side (224 of 256), so seed7 runs at any size."""
    seed7 = copy.deepcopy(image_preset("seed7"))
    assert seed7 is not None
    crop = size * 7 // 8
    for node in seed7["transforms"]:
        if node["name"] == "random_crop":
            node["height"] = node["width"] = crop
    cheap = {"transforms": [{"name": "horizontal_flip", "p": 0.5},
                            {"name": "brightness_contrast", "p": 0.5}]}
    return [
        ("horizontal_flip", _one("horizontal_flip")),
        ("vertical_flip", _one("vertical_flip")),
        (f"random_crop {crop}x{crop}", _one("random_crop", height=crop, width=crop)),
        ("brightness_contrast", _one("brightness_contrast")),
        ("hue_saturation_value", _one("hue_saturation_value")),
        ("median_blur [3,5]", _one("median_blur", blur_limit=[3, 5])),
        ("gamma", _one("gamma")),
        ("shift_scale_rotate", _one("shift_scale_rotate")),
        ("cheap: flip + brightness_contrast", cheap),
        ("seed7 (full pipeline)", seed7),
    ]


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


def seconds_over(fn: Callable[[np.ndarray, int], Any], images: list[np.ndarray], start: int) -> float:
    """Seconds to call ``fn(image, start + k)`` for every image (GC paused)."""

    def run() -> None:
        for k, image in enumerate(images):
            fn(image, start + k)

    with gc_paused():
        return timed(run)[0]


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
        t_raw = seconds_over(raw, images, 0)
        t_aug = seconds_over(aug, images, counter)
        t_seeded = seconds_over(albu_seeded, images, counter) if seeded else 0.0
        t_seeded += seconds_over(albu_seeded, images, counter + n) if seeded else 0.0
        t_aug += seconds_over(aug, images, counter + n)
        t_raw += seconds_over(raw, images, 0)
        counter += 2 * n
        totals.raw += t_raw
        totals.augsvc += t_aug
        totals.seeded += t_seeded
        totals.round_ratios.append(t_raw / t_aug)
    return totals


def header() -> str:
    """Versions and CPU in one line."""
    return f"{versions(albumentations=A, opencv=cv2, numpy=np)}; CPU: {cpu_summary('1 thread')}"


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


def main(argv: list[str] | None = None) -> None:
    """Parse options, run every row, print the header and the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=20000,
                    help="calls per side per row, split over rounds (default 20000)")
    ap.add_argument("--rounds", type=int, default=10, help="ABBA rounds per row (default 10)")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (400 samples, 2 rounds)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--size", type=int, default=SIZE,
                    help=f"image side in pixels (default {SIZE}); smaller sizes resize the crops")
    ap.add_argument("--no-seeded", action="store_true",
                    help="skip the albumentations set_random_seed baseline")
    args = ap.parse_args(argv)
    samples, rounds = (400, 2) if args.quick else (args.samples, args.rounds)
    per_pass = max(1, samples // (2 * rounds))
    cv2.setNumThreads(1)
    pool = photo_crops(min(per_pass, 240))  # distinct crops (about 47 MB), cycled below
    if args.size != SIZE:
        pool = [cv2.resize(p, (args.size, args.size), interpolation=cv2.INTER_AREA) for p in pool]
    images = [pool[k % len(pool)] for k in range(per_pass)]
    gc.freeze()  # long-lived objects (torch et al.) out of the collector: gc.collect() takes µs
    print(header())
    print(f"{args.size}x{args.size} RGB uint8 photo crops; {2 * rounds * per_pass} samples per side per row, "
          f"{rounds} rounds of raw/augsvc/albu-seeded x2 (ABCCBA)", flush=True)
    table = []
    for label, spec in rows(args.size):
        totals = bench_row(spec, images, rounds, seeded=not args.no_seeded)
        table.append(format_row(label, totals, 2 * rounds * per_pass))
    print(render(COLUMNS, table, args.markdown))


if __name__ == "__main__":
    main()
