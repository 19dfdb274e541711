"""``augsvc-train`` (and ``python -m training``): train, lr-find, eval, experiment, demo."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from augsvc.errors import AugsvcError
from training.config import ConfigError, TrainConfig, load_config

__all__ = ["main"]


def _overrides(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes key=value (e.g. optimizer.lr=0.01), got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)  # numbers, booleans, lists, null as in YAML
    return out


def _config(args: argparse.Namespace) -> TrainConfig:
    overrides = _overrides(args.set or [])
    if getattr(args, "out", None):
        overrides["out_dir"] = args.out
    if getattr(args, "device", None):
        overrides["device"] = args.device
    return load_config(args.config, overrides)


def _train(args: argparse.Namespace) -> int:
    from training.plots import plot_curves, plot_gallery
    from training.trainer import Trainer

    config = _config(args)
    trainer = Trainer(config, progress=None if not args.quiet else False)
    resume = Path(args.resume) if args.resume else None
    if resume is None and args.resume_last and (Path(config.out_dir) / "last.pt").exists():
        resume = Path(config.out_dir) / "last.pt"
    if resume is not None:
        trainer.load(resume)
        print(f"resumed from {resume} after epoch {trainer.start_epoch}", flush=True)
    if trainer.rank == 0:
        print(f"training {config.model.name} on {config.data.dataset} ({config.data.source}, "
              f"{trainer.info.train_size} train / {trainer.info.holdout_size} "
              f"{'validation' if config.data.val_dataset else 'holdout'}) on "
              f"{trainer.device}" + (f" x {trainer.world} processes" if trainer.world > 1 else ""),
              flush=True)
    result = trainer.fit()
    if trainer.rank == 0:
        plot_curves(result.history, result.out_dir / "curves.png",
                    title=f"{config.model.name} on {config.data.dataset}",
                    best_epoch=result.best_epoch)
        if trainer.info.kind == "image" and trainer.info.task != "detection":
            images, labels = trainer.source.gallery(0)
            plot_gallery(images, labels, trainer.info.class_names, result.out_dir / "gallery.png")
        final = result.final
        miou = "".join(f"  {k} {final[k]:.4f}" for k in ("val_miou", "val_map") if k in final)
        print(f"final: val_accuracy {final['val_accuracy']:.4f}  val_loss {final['val_loss']:.4f}"
              f"{miou}  ({len(result.history)} epochs"
              f"{', stopped early' if result.stopped_early else ''})")
        if result.best_epoch is not None:
            print(f"best: epoch {result.best_epoch}  {result.metric} {result.best_value:.4f}"
                  + (f"  ({result.best_path})" if result.best_path is not None else
                     "  (reached before the resume; its best.pt is in that run's folder)"))
        for what, skipped in (("", result.skipped), (" of data.val_dataset", result.val_skipped)):
            if skipped:
                print(f"skipped: {len(skipped)} sample(s){what} could not be read and were left "
                      "out of every batch that planned them:", flush=True)
                for index, reason in sorted(skipped.items())[:20]:
                    print(f"  {index}: {reason}")
        best = ", best.pt" if result.best_path is not None else ""
        print(f"outputs: {result.out_dir}/ (metrics.csv, curves.png, last.pt{best}, tensorboard/)")
    trainer.source.close()
    return 0


def _lr_find(args: argparse.Namespace) -> int:
    from training.lr_find import lr_find
    from training.plots import plot_lr_find
    from training.trainer import Trainer

    config = _config(args)
    trainer = Trainer(config, progress=False)
    result = lr_find(trainer, lo=args.lo, hi=args.hi, steps=args.steps, progress=not args.quiet)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_lr_find(result.lrs, result.losses, result.suggestion, out / "lr_find.png")
    (out / "lr_find.json").write_text(json.dumps(
        {"lrs": result.lrs, "losses": result.losses, "suggestion": result.suggestion}) + "\n")
    print(f"suggested lr: {result.suggestion:.3g}   plot: {out / 'lr_find.png'}")
    trainer.source.close()
    return 0


def _eval(args: argparse.Namespace) -> int:
    import torch

    from training.trainer import Trainer

    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    config = load_config(state["config"], _overrides(args.set or []))
    trainer = Trainer(config, progress=False)
    trainer.load(args.checkpoint)
    metrics = trainer.evaluate()
    print(json.dumps({"checkpoint": str(args.checkpoint), "epoch": trainer.start_epoch, **metrics}))
    trainer.source.close()
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from training.experiments import EXPERIMENTS, list_experiments, run_experiment

    names = list_experiments() if args.name == "all" else [args.name]
    for name in names:
        # a single experiment gets --mlm as given (and rejects it if it has no such option)
        single = args.name != "all" or "mlm" in EXPERIMENTS[name].options
        report = run_experiment(name, Path(args.out) / name, full=args.full, smoke=args.smoke,
                                seeds=args.seeds, **({"mlm": args.mlm} if single else {}))
        print(f"{name}: {report}", flush=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from training.demo import run_demo

    run_demo(args.out, epochs=args.epochs, workers=args.workers)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="augsvc-train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="run config (YAML); defaults: CNN on digits")
    common.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config field, e.g. --set optimizer.lr=0.01 (repeatable)")
    common.add_argument("--device", choices=["auto", "cpu", "cuda"])
    common.add_argument("--out", help="output folder (config out_dir)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    train = sub.add_parser("train", parents=[common], help="train a model")
    train.add_argument("--resume", help="continue from this checkpoint")
    train.add_argument("--resume-last", action="store_true",
                       help="continue from OUT/last.pt when it exists")
    train.set_defaults(run=_train)
    find = sub.add_parser("lr-find", parents=[common], help="LR range test with a plot")
    find.add_argument("--lo", type=float, default=1e-5)
    find.add_argument("--hi", type=float, default=1.0)
    find.add_argument("--steps", type=int, default=100)
    find.set_defaults(run=_lr_find)
    evaluate = sub.add_parser("eval", help="evaluate a checkpoint on its holdout")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--set", action="append", metavar="KEY=VALUE")
    evaluate.set_defaults(run=_eval)
    experiment = sub.add_parser("experiment", help="run a reproducible experiment and write its report")
    experiment.add_argument("name", help="optimizers, regularization, normalization, initialization, "
                            "text_augmentation, or all (training.experiments.EXPERIMENTS)")
    experiment.add_argument("--full", action="store_true", help="more seeds (text: also all data)")
    experiment.add_argument("--smoke", action="store_true", help="a tiny budget that checks the machinery")
    experiment.add_argument("--seeds", type=int, help="number of seeds (overrides the mode's default)")
    experiment.add_argument("--out", default="runs/experiments", help="parent folder of OUT/NAME/")
    experiment.add_argument("--mlm", help="masked LM for the contextual text arm (default $AUGSVC_MLM)")
    experiment.set_defaults(run=_experiment)
    demo = sub.add_parser("demo", help="the main job: start an augsvc server, train a CNN on the "
                          "digits it streams, write a report (`make run`)")
    demo.add_argument("--out", default="runs", help="runs go to OUT/<timestamp>/")
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("--workers", type=int, default=None, help="StreamEpoch worker processes")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for config errors, with the message)."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ConfigError, AugsvcError, ValueError) as exc:
        print(f"augsvc-train: error: {exc}", file=sys.stderr)
        return 2
