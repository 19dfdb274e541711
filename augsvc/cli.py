"""The ``augsvc`` command line: augment folders, draw galleries, list transforms, explore."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from augsvc.errors import AugsvcError

__all__ = ["main"]


def _cmd_augment(args: argparse.Namespace) -> int:
    from augsvc.image.io import IMAGE_SUFFIXES, read_image, write_image
    from augsvc.image.pipeline import ImagePipeline

    pipeline = ImagePipeline(args.spec)  # a preset name, JSON/YAML text or a spec file
    in_dir, out_dir = Path(args.in_dir), Path(args.out_dir)
    if not in_dir.is_dir():
        raise AugsvcError(f"input folder not found: {in_dir}")
    files = sorted(p for p in in_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise AugsvcError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {in_dir}")
    if in_dir.resolve() == out_dir.resolve():
        raise AugsvcError("OUT_DIR must differ from IN_DIR (files keep their names)")
    if args.params:
        Path(args.params).parent.mkdir(parents=True, exist_ok=True)
    params_file = open(args.params, "w", encoding="utf-8") if args.params else None  # noqa: SIM115
    failed: list[tuple[Path, str]] = []
    written = 0
    try:
        for k, path in enumerate(tqdm(files, desc="augment", unit="img", disable=None)):
            rel = path.relative_to(in_dir)
            try:
                image = read_image(path)
                for copy in range(args.num):
                    # Sample index: file position x copies + copy, so results do not depend on
                    # which other files could be read.
                    index = k * args.num + copy
                    out = pipeline(image, seed=args.seed, index=index,
                                   return_params=params_file is not None)
                    name = rel if args.num == 1 else rel.with_stem(f"{rel.stem}_{copy}")
                    write_image(out_dir / name, out.image)
                    written += 1
                    if params_file is not None:
                        params_file.write(json.dumps({"file": str(name), "index": index,
                                                      "params": out.params}) + "\n")
            except AugsvcError as exc:
                failed.append((path, str(exc)))
                tqdm.write(f"skipped {path}: {exc}", file=sys.stderr)
    finally:
        if params_file is not None:
            params_file.close()
    print(f"wrote {written} images to {out_dir}" + (f"; {len(failed)} files failed" if failed else ""),
          file=sys.stderr)
    return 1 if failed else 0


def _cmd_gallery(args: argparse.Namespace) -> int:
    from augsvc.image.gallery import make_gallery
    from augsvc.image.io import IMAGE_SUFFIXES, read_image, write_image
    from augsvc.image.samples import sample_photos

    if args.images:
        folder = Path(args.images)
        if not folder.is_dir():
            raise AugsvcError(f"input folder not found: {folder}")
        # the same files as `augment` (class folders included), labelled by their relative path
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise AugsvcError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
        images = []
        for path in paths:
            try:
                images.append((path.relative_to(folder).as_posix(), read_image(path)))
            except AugsvcError as exc:
                print(f"skipped {path}: {exc}", file=sys.stderr)
            if len(images) == args.max_images:
                break
        if not images:
            raise AugsvcError(f"no readable images under {folder}")
    else:
        photos = sample_photos(["astronaut", "coffee", "chelsea", "logo"][: args.max_images])
        images = list(photos.items())
    grid = make_gallery(images, args.spec, n=args.num, seed=args.seed,
                        cell=args.cell)
    write_image(args.out, grid)
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})", file=sys.stderr)
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from augsvc.datasets import open_dataset
    from augsvc.datasets.check import check_dataset

    options = {"channels": args.channels} if args.channels else {}
    report = check_dataset(open_dataset(args.path, **options))
    if args.json:
        print(json.dumps({"name": report.name, "size": report.size, "ok": report.ok,
                          "unreadable": report.unreadable, "oversized": report.oversized,
                          "odd": report.odd}, indent=2))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _cmd_samples(args: argparse.Namespace) -> int:
    from augsvc.image.io import write_image
    from augsvc.image.samples import sample_photos

    for name, image in sample_photos().items():
        write_image(Path(args.out_dir) / f"{name}.png", image)
    print(f"wrote {len(sample_photos())} sample photos to {args.out_dir}", file=sys.stderr)
    return 0


def _cmd_text(args: argparse.Namespace) -> int:
    from augsvc.text.pipeline import TextPipeline

    pipeline = TextPipeline(args.spec)  # a preset name, JSON/YAML text or a spec file
    start = 0
    with tqdm(desc="text", unit="line", disable=None) as progress:
        for batch in _arrived_lines(sys.stdin, args.batch_size):
            # A line's result depends on its index only, so batches of any split give the same.
            for out in pipeline.batch(batch, seed=args.seed, start=start, n=args.num,
                                      return_ops=args.ops):
                record: dict[str, Any] = {"index": out.index, "variant": out.variant,
                                          "text": out.text}
                if args.ops:
                    record["ops"] = out.ops
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            start += len(batch)
            progress.update(len(batch))
    return 0


def _arrived_lines(stream: Iterable[str], batch_size: int) -> Iterator[list[str]]:
    """The input's lines (without their LF or CRLF) in batches of those that have arrived, at
    most ``batch_size``: a line typed or piped in slowly is answered at once, a file still goes
    through in full batches (the transforms batch their model passes)."""
    arrived: queue.Queue[str | None] = queue.Queue(maxsize=4 * batch_size)

    def read() -> None:
        for line in stream:
            arrived.put(line.removesuffix("\n").removesuffix("\r"))
        arrived.put(None)

    threading.Thread(target=read, name="augsvc-stdin", daemon=True).start()
    while (first := arrived.get()) is not None:
        batch = [first]
        while len(batch) < batch_size:
            try:
                line = arrived.get_nowait()
            except queue.Empty:
                break
            if line is None:
                yield batch
                return
            batch.append(line)
        yield batch


def _cmd_serve(args: argparse.Namespace) -> int:
    import dataclasses
    import os

    from augsvc.service.config import ServeConfig, load_config
    from augsvc.service.supervisor import run

    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(ServeConfig)}
    return run(load_config(flags, os.environ, args.config))


def _cmd_health(args: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if args.tls:
        credentials = grpc.ssl_channel_credentials(Path(args.tls).read_bytes())
        channel = grpc.secure_channel(args.address, credentials)
    else:
        channel = grpc.insecure_channel(args.address)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"augsvc health: {args.address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def _cmd_explore(args: argparse.Namespace) -> int:
    from augsvc.explore.command import run_explore

    return run_explore(args)


def _cmd_transforms(args: argparse.Namespace) -> int:
    if args.domain == "image":
        from augsvc.image.registry import IMAGE_TRANSFORMS as registry
    else:
        from augsvc.text.registry import TEXT_GROUPS, TEXT_TRANSFORMS

        registry = {**TEXT_TRANSFORMS, **TEXT_GROUPS}  # type: ignore[dict-item]
    infos = [registry[n].describe() for n in sorted(registry)]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    for info in infos:
        targets = f"; targets: {', '.join(info['targets'])}" if "targets" in info else ""
        print(f"{info['name']}  (p={info['default_p']}{targets})")
        print(f"    {info['doc']}")
        for param in info["params"]:
            default = "required" if param["required"] else f"default {json.dumps(param['default'])}"
            print(f"    - {param['name']}: {param['allowed']}; {default}. {param['doc']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="augsvc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("augment", help="augment every image in a folder")
    p.add_argument("--spec", default="default", help="pipeline file (JSON/YAML) or preset name")
    p.add_argument("--seed", type=int, default=None, help="seed (omit for fresh randomness)")
    p.add_argument("-n", "--num", type=int, default=1, help="augmented copies per image")
    p.add_argument("--params", help="write applied parameters per output file as JSON lines")
    p.add_argument("in_dir", metavar="IN_DIR")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.set_defaults(func=_cmd_augment)

    p = sub.add_parser("gallery", help="draw a labelled grid PNG of augmentations")
    p.add_argument("--spec", default="default", help="pipeline file (JSON/YAML) or preset name")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-n", "--num", type=int, default=4, help="augmented samples per row")
    p.add_argument("--images", help="folder of images, searched recursively like augment's IN_DIR "
                   "(default: bundled sample photos)")
    p.add_argument("--max-images", type=int, default=4)
    p.add_argument("--cell", type=int, default=160, help="tile size in pixels")
    p.add_argument("-o", "--out", default="gallery.png")
    p.set_defaults(func=_cmd_gallery)

    p = sub.add_parser("samples", help="write the bundled sample photos as PNG files")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.set_defaults(func=_cmd_samples)

    p = sub.add_parser("text", help="augment text lines from stdin, JSON lines to stdout")
    p.add_argument("--spec", required=True, help="text pipeline file (JSON/YAML) or preset name")
    p.add_argument("--seed", type=int, default=None, help="seed (omit for fresh randomness)")
    p.add_argument("-n", "--num", type=int, default=1, help="augmentations per line")
    p.add_argument("--ops", action="store_true", help="include the edits made to each line")
    p.add_argument("--batch-size", type=int, default=64, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_text)

    from augsvc.service.config import add_serve_arguments

    p = sub.add_parser("serve", help="run the gRPC augmentation service",
                       description="Serve augsvc.v1.Augmenter, health and reflection until SIGTERM. "
                       "Settings: flags > AUGSVC_* environment > --config YAML > defaults.")
    add_serve_arguments(p)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("health", help="exit 0 when a server's health service says SERVING")
    p.add_argument("address", nargs="?", default="127.0.0.1:50051")
    p.add_argument("--service", default="", help="service name ('' is the whole server)")
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--tls", metavar="CA_PEM", help="connect with TLS, trusting this CA certificate")
    p.set_defaults(func=_cmd_health)

    p = sub.add_parser("datasets", help="check a dataset before training: unreadable, oversized "
                       "and odd files")
    p.add_argument("action", choices=("check",))
    p.add_argument("path", help="a dataset path (image or segmentation folder, .npz, COCO .json, "
                   "text lines or table) or a built-in name")
    p.add_argument("--channels", choices=("rgb", "gray", "keep"), default=None,
                   help="an image folder's channel policy (default rgb)")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(func=_cmd_datasets)

    from augsvc.explore.command import add_explore_arguments

    p = sub.add_parser("explore", help="a local web page to try pipelines on images and text",
                       description="Serve a page where a spec, a seed and an image (or sentences) "
                       "give a grid of augmentations with the parameters each one drew.")
    add_explore_arguments(p)
    p.set_defaults(func=_cmd_explore)

    p = sub.add_parser("transforms", help="list transforms with their parameters")
    p.add_argument("domain", nargs="?", choices=("image", "text"), default="image")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_transforms)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "num", 1) < 1:
        print("augsvc: error: -n must be >= 1", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except AugsvcError as exc:
        print(f"augsvc: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and friends
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
