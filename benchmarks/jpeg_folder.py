"""A folder of JPEGs through the usual training-input pipelines: images/s over whole epochs.

Every row does the same work on the same folder: decode, random_resized_crop to 224x224 (scale
0.08-1, ratio 3/4-4/3, linear), horizontal flip p=0.5, brightness/contrast p=0.5, batches of 64, 2
workers, warm page cache (an untimed epoch per row first). Rows read one epoch each in ABBA order,
``--rounds`` times; each ratio is to row 1 in the same round.

1. DataLoader + cv2 + albumentations: the baseline a user writes.
2. augsvc in-process: ``AugmentedImageDataset(ImageFolderDataset(root))`` in the same DataLoader.
3. augsvc StreamEpoch: ``augsvc serve --epoch-workers 2``; one client turns batches into tensors.
4. NVIDIA DALI CPU pipeline: only where ``nvidia.dali`` imports (a baseline, not a dependency).
5. decode only: cv2 decode + RGB conversion of every file in a Pool(2), no augmentation (the floor).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import itertools
import json
import math
import multiprocessing
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

# Run as a file (python benchmarks/x.py) the script's folder is on sys.path, not the repository
# root that `benchmarks.` needs (python -m puts the current folder, the root, there itself).
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    PHOTOS,
    cpu_summary,
    gc_paused,
    load_average,
    one_thread_per_process,
    render,
    timed,
    versions,
)

# Run, not imported: one thread per process before numpy, OpenCV and torch load and size their
# thread pools; the server, DataLoader workers and pool processes started below inherit it.
if __name__ == "__main__":
    one_thread_per_process()

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from augsvc.client import AugmentClient
from augsvc.datasets.files import ImageFolderDataset
from augsvc.image.dataset import AugmentedImageDataset
from benchmarks.service_workloads import serve

SEED = 0
BATCH = 64
WORKERS = 2
QUALITY = 90
DATA_VERSION = 1  # bump when the way the images are made changes: cached folders are remade
SPEC: dict[str, Any] = {"transforms": [{"name": "random_resized_crop", "height": 224, "width": 224},
                                       {"name": "horizontal_flip", "p": 0.5},
                                       {"name": "brightness_contrast", "p": 0.5}]}
NOISE = {"imagenet": 6, "12mp": 10}  # +- this much uniform noise per pixel: files not trivially small


# --------------------------------------------------------------------------- the data

def _crop_to(photo: np.ndarray, width: int, height: int, fraction: float,
             rng: np.random.Generator) -> np.ndarray:
    """A random window of ``photo`` with the aspect of width x height, ``fraction`` of the largest."""
    h, w = photo.shape[:2]
    scale = min(h / height, w / width) * fraction
    ch, cw = max(1, int(height * scale)), max(1, int(width * scale))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return photo[y:y + ch, x:x + cw]


def _make_image(kind: str, k: int, photos: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Image ``k`` of a dataset, RGB: ImageNet-like sides of 300..500 px, or 12 MP phone photos."""
    photo = photos[k % len(photos)]
    if kind == "imagenet":
        width, height = (int(v) for v in rng.integers(300, 501, 2))
        crop = _crop_to(photo, width, height, float(rng.uniform(0.5, 1.0)), rng)
        shrink = crop.shape[0] >= height
        image = cv2.resize(crop, (width, height),
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    else:
        width, height = (3000, 4000) if k % 8 == 7 else (4000, 3000)  # a few portrait ones
        crop = _crop_to(photo, width, height, 1.0, rng)
        image = cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-NOISE[kind], NOISE[kind] + 1, image.shape, dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def ensure_dataset(cache: Path, kind: str, count: int) -> Path:
    """The folder of ``count`` JPEGs of ``kind`` (2 class subfolders) under ``cache``, made once;
    made again when the marker beside it records other parameters."""
    import skimage.data
    root = cache / f"{kind}-{count}"
    marker = cache / f"{kind}-{count}.json"
    params = {"kind": kind, "count": count, "seed": SEED, "quality": QUALITY,
              "noise": NOISE[kind], "version": DATA_VERSION}
    with contextlib.suppress(OSError, ValueError):
        if json.loads(marker.read_text()) == params and root.is_dir():
            return root
    print(f"making {count} {kind} JPEGs in {root} ...", flush=True)
    marker.unlink(missing_ok=True)  # written again only once every file is there
    shutil.rmtree(root, ignore_errors=True)
    photos = [np.ascontiguousarray(getattr(skimage.data, name)()[..., :3]) for name in PHOTOS]
    rng = np.random.default_rng(SEED)
    for k in range(count):
        path = root / f"class{k % 2}" / f"{k:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        bgr = cv2.cvtColor(_make_image(kind, k, photos, rng), cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, QUALITY]):
            raise OSError(f"cannot write {path}")
    marker.write_text(json.dumps(params))
    return root


def jpeg_files(root: Path) -> tuple[list[str], list[int]]:
    """(paths, labels) of the folder's JPEGs, labelled by sorted class subfolder."""
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    pairs = [(str(f), label) for label, c in enumerate(classes) for f in sorted(c.glob("*.jpg"))]
    return [p for p, _ in pairs], [label for _, label in pairs]


# --------------------------------------------------------------------------- the rows

@dataclass
class Row:
    """A way to read the folder: ``run(epoch)`` reads one whole epoch and gives the images read."""

    label: str
    run: Callable[[int], int] | None = None
    note: str = ""  # why the row did not run, when it did not
    seconds: list[float] = field(default_factory=list)  # per round
    images: list[int] = field(default_factory=list)  # per round


def _one_cv2_thread(_: int = 0) -> None:
    cv2.setNumThreads(1)


def read_rgb(path: str) -> np.ndarray:
    """A JPEG file as an RGB array, as a user reads it with OpenCV."""
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class CvAlbumentationsFolder(Dataset[tuple[torch.Tensor, int]]):
    """The baseline's dataset: cv2 reads the file, albumentations augments it."""

    def __init__(self, root: Path) -> None:
        self.paths, self.labels = jpeg_files(root)
        self.compose = A.Compose([A.RandomResizedCrop(size=(224, 224)), A.HorizontalFlip(p=0.5),
                                  A.RandomBrightnessContrast(p=0.5)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.compose(image=read_rgb(self.paths[index]))["image"]
        return torch.from_numpy(image).permute(2, 0, 1), self.labels[index]


def _shut_down(loader: DataLoader[Any]) -> None:
    """Stop a DataLoader's persistent workers now rather than whenever it is collected."""
    getattr(getattr(loader, "_iterator", None), "_shutdown_workers", lambda: None)()


def loader_row(label: str, dataset: Dataset[Any], stack: contextlib.ExitStack) -> Row:
    """A row that iterates ``dataset`` through a DataLoader as a user would tune it on a CPU."""
    loader: DataLoader[Any] = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=WORKERS,
                                         persistent_workers=True, pin_memory=False,
                                         worker_init_fn=_one_cv2_thread)
    stack.callback(_shut_down, loader)

    def run(epoch: int) -> int:
        if isinstance(dataset, AugmentedImageDataset):
            # Persistent workers keep the copy of the dataset they started with, so this reaches
            # only the main process's copy: draws repeat across epochs, the speed does not change.
            dataset.set_epoch(epoch)
        return sum(len(labels) for _, labels in loader)

    return Row(label, run)


def stream_row(root: Path, stack: contextlib.ExitStack) -> Row:
    """A row that streams epochs from ``augsvc serve --epoch-workers 2`` serving the folder."""
    server = stack.enter_context(serve(["--epoch-workers", str(WORKERS)], datasets={"jpegs": str(root)}))
    client = stack.enter_context(AugmentClient(server.address, timeout=600))
    client.wait_ready()

    def run(epoch: int) -> int:
        images = 0
        for batch in client.stream_epoch("jpegs", SPEC, seed=SEED, epoch=epoch, batch_size=BATCH,
                                         stall_timeout=None):  # 12 MP batches can take long
            stacked = batch.stacked if batch.stacked is not None else np.stack(batch.samples)
            torch.from_numpy(stacked).permute(0, 3, 1, 2), torch.from_numpy(batch.labels)
            images += len(batch.samples)
        return images

    return Row("augsvc StreamEpoch", run)


def dali() -> ModuleType | str:
    """``nvidia.dali``, or why it cannot be used."""
    try:
        return importlib.import_module("nvidia.dali")
    except Exception as exc:  # not installed, or a library it needs is missing
        return f"nvidia.dali does not import ({type(exc).__name__}: {exc})"


def _wait_until_idle(step: float = 0.01, limit: float = 60.0) -> None:
    """Return once this process's threads stop using CPU (DALI's, running batches ahead)."""
    for _ in range(int(limit / step)):
        start = time.process_time()
        time.sleep(step)
        if time.process_time() - start < step / 10:
            return


def dali_row(root: Path, count: int, stack: contextlib.ExitStack) -> Row:
    """A row for DALI's CPU pipeline, or one that says why it cannot run."""
    label = "NVIDIA DALI CPU pipeline"
    module = dali()
    if isinstance(module, str):
        return Row(label, note=module)
    fn, types = importlib.import_module("nvidia.dali.fn"), importlib.import_module("nvidia.dali.types")

    @module.pipeline_def(batch_size=BATCH, num_threads=WORKERS, device_id=None, seed=SEED)
    def pipeline() -> Any:
        jpegs, labels = fn.readers.file(file_root=str(root), random_shuffle=True)
        images = fn.decoders.image_random_crop(jpegs, device="cpu", output_type=types.RGB)
        # Linear without antialiasing, as cv2.INTER_LINEAR resizes in the other rows.
        images = fn.resize(images, resize_x=224, resize_y=224, antialias=False)
        images = fn.flip(images, horizontal=fn.random.coin_flip())
        # RandomBrightnessContrast at p=0.5: image * (1 + c) + 255 * b, with b, c in [-0.2, 0.2].
        apply = fn.random.coin_flip()
        return fn.brightness_contrast(images, brightness_shift=apply * fn.random.uniform(range=(-0.2, 0.2)),
                                      contrast=1.0 + apply * fn.random.uniform(range=(-0.2, 0.2)),
                                      contrast_center=0.0), labels

    try:
        pipes = [pipeline()]  # a list, so that closing can drop the pipeline
        pipes[0].build()
    except Exception as exc:
        return Row(label, note=f"cannot run here ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    stack.callback(pipes.clear)  # the pipeline's threads stop when it is collected
    batches = math.ceil(count / BATCH)

    def run(epoch: int) -> int:
        # DALI's reader wraps around instead of ending a short last batch, and its executor keeps
        # running batches ahead. So: as many whole batches as the other rows' epoch has, all
        # counted, and the clock runs until the batches it started ahead are done too (a pass
        # starts with as many ready as it leaves ready: the steady state of many epochs).
        for _ in range(batches):
            images, labels = pipes[0].run()
            torch.from_numpy(images.as_array()).permute(0, 3, 1, 2), torch.from_numpy(labels.as_array())
        _wait_until_idle()
        return batches * BATCH

    return Row(label, run, note=f"{batches} whole batch(es) of {BATCH} per epoch, all counted")


def _decode(path: str) -> int:
    return int(read_rgb(path).size > 0)


def decode_row(root: Path, stack: contextlib.ExitStack) -> Row:
    """The floor: decode every file in 2 processes, nothing else."""
    paths, _ = jpeg_files(root)
    pool = stack.enter_context(multiprocessing.Pool(WORKERS, initializer=_one_cv2_thread))
    return Row(f"decode only (cv2, {WORKERS} processes)",
               lambda epoch: sum(pool.imap_unordered(_decode, paths, chunksize=8)))


def make_rows(root: Path, count: int, stack: contextlib.ExitStack) -> list[Row]:
    """Rows 1-5 in table order. What forks (DataLoader workers, the pool) starts before what runs
    threads (the gRPC client, DALI): forking a threaded process is unsafe."""
    baseline = loader_row("DataLoader + cv2 + albumentations", CvAlbumentationsFolder(root), stack)
    folder = cast(Sequence[Any], ImageFolderDataset(root))  # indexable with len: what it takes
    in_process = loader_row("augsvc in-process", AugmentedImageDataset(folder, SPEC, seed=SEED), stack)
    for row in (baseline, in_process):
        assert row.run is not None
        row.run(0)  # starts the workers, warms the page cache; untimed
    decode = decode_row(root, stack)  # its processes start with the pool
    rows = [baseline, in_process, stream_row(root, stack), dali_row(root, count, stack), decode]
    for row in rows[2:]:
        if row.run is not None:
            row.run(0)
    return rows


# --------------------------------------------------------------------------- measuring

def measure(rows: list[Row], rounds: int) -> None:
    """Each round: every row that runs reads one epoch, in ABBA order; seconds and images per round."""
    live = [r for r in rows if r.run is not None]
    epochs = itertools.count(1)  # a new epoch for every pass (0 was the warm-up)
    for _ in range(rounds):
        for row in live:
            row.seconds.append(0.0)
            row.images.append(0)
        for row in [*live, *reversed(live)]:
            assert row.run is not None
            with gc_paused():
                seconds, images = timed(functools.partial(row.run, next(epochs)))
            row.seconds[-1] += seconds
            row.images[-1] += images


COLUMNS = ("row", "note", "img/s", "vs row 1 (median round)", "round ratios")


def table(rows: list[Row], markdown: bool) -> str:
    """The results: total img/s per row and its per-round ratios to row 1."""
    base = [i / s for i, s in zip(rows[0].images, rows[0].seconds, strict=True)]
    out = []
    for row in rows:
        if row.run is None or not row.seconds:
            out.append([row.label, row.note, "-", "-", "-"])
            continue
        ratios = [i / s / b for i, s, b in zip(row.images, row.seconds, base, strict=True)]
        out.append([row.label, row.note, f"{sum(row.images) / sum(row.seconds):,.1f}",
                    f"{statistics.median(ratios):.3f}", " ".join(f"{r:.3f}" for r in ratios)])
    return render(COLUMNS, out, markdown, left=2)


def bench(cache: Path, kind: str, count: int, rounds: int, markdown: bool) -> None:
    """Make (or reuse) one dataset, set up every row, measure, print its table."""
    root = ensure_dataset(cache, kind, count)
    megabytes = sum(p.stat().st_size for p in root.rglob("*.jpg")) / 1e6
    what = "sides 300-500 px" if kind == "imagenet" else "4000x3000 (1 in 8 portrait)"
    full, last = divmod(count, BATCH)
    batches = " + ".join([f"{full} x {BATCH}"] * bool(full) + [f"1 x {last}"] * bool(last))
    print(f"\n{kind}: {count} JPEGs, {what}, quality {QUALITY}, {megabytes:,.1f} MB in {root}; "
          f"{WORKERS} workers, {rounds} ABBA round(s) of one epoch per row; an epoch is {batches} "
          "images (a DataLoader worker builds each whole batch)", flush=True)
    with contextlib.ExitStack() as stack:
        rows = make_rows(root, count, stack)
        measure(rows, rounds)
    print(table(rows, markdown), flush=True)


def header() -> str:
    """Versions, CPU and load in one line."""
    module = dali()
    libraries = {"albumentations": A, "opencv": cv2, "torch": torch,
                 **({} if isinstance(module, str) else {"dali": module})}
    return (f"{versions(**libraries)}; CPU: {cpu_summary('1 thread per process')}; "
            f"load average {load_average()}")


def main(argv: list[str] | None = None) -> None:
    """Parse options, run each dataset asked for, print the header and one table per dataset."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", choices=("imagenet", "12mp", "both"), default="both",
                    help="which folder(s): ImageNet-sized JPEGs, 12 MP phone photos, or both (default)")
    ap.add_argument("--count", type=int, default=2000, help="ImageNet-sized JPEGs (default 2000)")
    ap.add_argument("--count-12mp", type=int, default=128,
                    help="12 MP JPEGs (default 128: two whole batches, one per worker)")
    ap.add_argument("--rounds", type=int, default=2, help="ABBA rounds (default 2)")
    ap.add_argument("--data", type=Path, default=Path("/tmp/augsvc-bench-jpeg"),
                    help="where the JPEG folders are made once and kept (default /tmp/augsvc-bench-jpeg)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 + 16 JPEGs, 1 round")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = ap.parse_args(argv)
    if args.quick:
        args.count, args.count_12mp, args.rounds = 200, 16, 1
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    print(header())
    command = sys.orig_argv if argv is None else [sys.executable, "-m", "benchmarks.jpeg_folder", *argv]
    print("command:", shlex.join(command), flush=True)
    if args.photos in ("imagenet", "both"):
        bench(args.data, "imagenet", args.count, args.rounds, args.markdown)
    if args.photos in ("12mp", "both"):
        bench(args.data, "12mp", args.count_12mp, args.rounds, args.markdown)


if __name__ == "__main__":
    main()
