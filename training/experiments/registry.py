"""The experiments by name: one entry each, ``run_experiment(name, ...)`` as a thin lookup.

``augsvc-train experiment NAME`` writes ``runs/experiments/NAME/`` (report.md, CSVs, PNGs).
Default settings fit a small CPU machine (minutes); ``full`` runs more seeds (and, for text,
the full training set); ``smoke`` runs a tiny budget for the test suite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augsvc.errors import ConfigError, unknown_name
from training.experiments import initialization, normalization, optimizers, regularization, text_augmentation
from training.experiments.common import one_thread

__all__ = ["EXPERIMENTS", "ExperimentInfo", "command_line", "list_experiments", "run_experiment"]


@dataclass(frozen=True)
class ExperimentInfo:
    """One registry entry.

    Attributes:
        name: registry name (and the output folder's name).
        description: one line on what it measures.
        run: ``run(out_dir, *, full, smoke, seeds, command, **options) -> report path``, where
            ``seeds`` is the number of seeds and ``command`` the line that reproduces the run.
        seeds: default number of seeds; ``full_seeds`` with ``full=True``.
        options: extra keyword options ``run`` accepts (e.g. ``mlm``).
    """

    name: str
    description: str
    run: Callable[..., Path]
    seeds: int
    full_seeds: int
    options: tuple[str, ...] = ()


EXPERIMENTS: dict[str, ExperimentInfo] = {info.name: info for info in (
    ExperimentInfo("optimizers", "SGD, momentum, Nesterov, Adagrad, RMSProp, Adam, AdamW on one MLP and "
                   "budget, each at its LR-range-test rate: loss curves, final loss, accuracy, steps to "
                   "a target loss", optimizers.run, 3, 5),
    ExperimentInfo("regularization", "200 training digits: baseline vs +augmentation vs +dropout vs +L2 "
                   "vs +all; train and holdout accuracy per epoch and the final gap",
                   regularization.run, 3, 5),
    ExperimentInfo("normalization", "none vs batch vs layer norm: loss vs steps at a fixed LR and the "
                   "largest stable LR", normalization.run, 3, 5),
    ExperimentInfo("initialization", "zeros vs N(0, 0.01²) vs Xavier vs Kaiming: activation variance by "
                   "layer and training curves", initialization.run, 3, 5),
    ExperimentInfo("text_augmentation", "WordNet glosses -> lexicographer file at 500 / 2,000 (/ all) "
                   "sentences: none vs synonym vs embedding vs contextual vs chain vs EDA",
                   text_augmentation.run, 3, 5, options=("mlm",)),
)}


def list_experiments() -> list[str]:
    """Registered experiment names, in the order of the issue (not sorted)."""
    return list(EXPERIMENTS)


def command_line(name: str, *, full: bool = False, smoke: bool = False, seeds: int | None = None,
                 **options: Any) -> str:
    """The ``augsvc-train`` command that reproduces a run."""
    parts = ["augsvc-train", "experiment", name]
    parts += ["--full"] * full + ["--smoke"] * smoke + ([f"--seeds {seeds}"] if seeds else [])
    parts += [f"--{key} {value}" for key, value in options.items() if value is not None]
    return " ".join(parts)


def run_experiment(name: str, out_dir: str | Path | None = None, *, full: bool = False,
                   smoke: bool = False, seeds: int | None = None, **options: Any) -> Path:
    """Run the experiment ``name`` and return the path of its ``report.md``.

    Args:
        name: a name from :func:`list_experiments`.
        out_dir: the output folder (default ``runs/experiments/NAME``).
        full: more seeds (and more data where the experiment has it).
        smoke: a tiny budget (1 seed, a few steps) that only checks the machinery.
        seeds: the number of seeds, overriding the default of the mode.
        options: experiment-specific options (``ExperimentInfo.options``); None values are ignored.

    Raises:
        ValueError: unknown name (with a suggestion), ``seeds`` < 1, or an option the experiment
            does not take.
    """
    info = EXPERIMENTS.get(name)
    if info is None:
        raise ConfigError(unknown_name('experiment', name, list_experiments()))
    if seeds is not None and seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(info.options))
    if unknown:
        raise ValueError(f"experiment {name} has no option(s) {unknown}; "
                         f"known: {list(info.options) or 'none'}")
    folder = Path(out_dir) if out_dir is not None else Path("runs/experiments") / name
    count = seeds or (1 if smoke else info.full_seeds if full else info.seeds)
    with one_thread():  # tiny models: faster on a busy machine, and the same numbers every run
        return info.run(folder, full=full, smoke=smoke, seeds=count,
                        command=command_line(name, full=full, smoke=smoke, seeds=seeds, **given), **given)
