"""Smoke runs of every experiment: the report, CSVs and plots appear, and the numbers are sane."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from training.cli import _parser, main
from training.experiments import EXPERIMENTS, command_line, list_experiments, run_experiment
from training.experiments.common import steps_to_target, trailing_mean
from training.experiments.normalization import stable
from training.experiments.optimizers import OPTIMIZERS
from training.experiments.regularization import ARMS as REG_ARMS
from training.experiments.report import mean_std, pm
from training.experiments.text_augmentation import NO_MLM, n_aug_for

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Run an experiment's smoke version once per module; returns its folder."""
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            folder = tmp_path_factory.mktemp(name)
            with pytest.MonkeyPatch.context() as mp:
                mp.delenv("AUGSVC_MLM", raising=False)  # the contextual arm must say it did not run
                report = run_experiment(name, folder, smoke=True)
            assert report == folder / "report.md"
            done[name] = folder
        return done[name]

    return get


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


@pytest.mark.slow
@pytest.mark.parametrize("name", list_experiments())
def test_smoke_run_writes_report_plots_and_sane_numbers(name: str, smoke: Callable[[str], Path]) -> None:
    folder = smoke(name)
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert f"Command: `augsvc-train experiment {name} --smoke`" in report
    linked = [line.split("](")[1].rstrip(")") for line in report.splitlines() if line.startswith("- [")]
    pngs = [f for f in linked if f.endswith(".png")]
    csvs = [f for f in linked if f.endswith(".csv")]
    assert pngs and csvs
    for png in pngs:
        data = (folder / png).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, png  # a real plot, not an empty canvas
        assert f"]({png})" in report.split("## Files")[0], f"{png} is not embedded"
    for name_csv in csvs:
        rows = _rows(folder / name_csv)
        assert rows, name_csv
        for row in rows:
            for key, value in row.items():
                number = _number(value)
                if number is None:
                    continue
                if "loss" in key and math.isnan(number):
                    continue  # a diverged run's losses are recorded as NaN on purpose
                assert math.isfinite(number), (name_csv, key, value)
                if "accuracy" in key or key in ("holdout_oov",):
                    assert 0.0 <= number <= 1.0, (name_csv, key, value)


@pytest.mark.slow
def test_optimizers_smoke_has_every_optimizer_with_a_positive_rate(smoke: Callable[[str], Path]) -> None:
    rows = _rows(smoke("optimizers") / "summary.csv")
    assert {r["optimizer"] for r in rows} == set(OPTIMIZERS)
    assert all(0 < float(r["lr"]) < 10 for r in rows)
    assert len({r["optimizer"] for r in _rows(smoke("optimizers") / "lr_find.csv")}) == len(OPTIMIZERS)


@pytest.mark.slow
def test_initialization_smoke_matches_the_variance_theory(smoke: Callable[[str], Path]) -> None:
    rows = _rows(smoke("initialization") / "activation_variance.csv")
    by_init: dict[str, list[float]] = {}
    for row in rows:
        by_init.setdefault(row["init"], []).append(float(row["variance"]))
    assert len(by_init["zeros"]) == 7  # six hidden Linear layers and the head
    assert all(v == 0.0 for v in by_init["zeros"])  # exactly zero from layer 1 on: no symmetry breaking
    assert by_init["small_normal"][-1] < 1e-3 * by_init["kaiming"][-1]  # N(0, 0.01²) vanishes
    assert 0.1 < by_init["kaiming"][3] / by_init["kaiming"][0] < 10  # kaiming keeps the scale
    losses = _rows(smoke("initialization") / "losses.csv")
    zeros = [float(r["loss"]) for r in losses if r["init"] == "zeros"]
    assert max(zeros) - min(zeros) < 0.05  # nothing but the head bias can learn


@pytest.mark.slow
def test_normalization_smoke_sweeps_every_norm(smoke: Callable[[str], Path]) -> None:
    sweep = _rows(smoke("normalization") / "lr_sweep.csv")
    assert {r["norm"] for r in sweep} == {"none", "batch", "layer"}
    assert {r["stable"] for r in sweep} <= {"True", "False"}


@pytest.mark.slow
def test_regularization_smoke_records_clean_train_and_holdout_per_epoch(
        smoke: Callable[[str], Path]) -> None:
    rows = _rows(smoke("regularization") / "history.csv")
    assert {r["arm"] for r in rows} == set(REG_ARMS)
    assert {r["epoch"] for r in rows} == {"1", "2"}
    assert all(r["clean_train_accuracy"] and r["val_accuracy"] for r in rows)


@pytest.mark.slow
def test_text_smoke_augments_n_aug_copies_and_skips_contextual_without_a_model(
        smoke: Callable[[str], Path]) -> None:
    rows = _rows(smoke("text_augmentation") / "results.csv")
    contextual = [r for r in rows if r["arm"] == "contextual"]
    assert contextual and all(r["status"] == NO_MLM for r in contextual)
    assert not any(r["val_accuracy"] for r in contextual)  # no number is made up for it
    for row in rows:
        if row["status"] == "ok":
            assert int(row["train_samples"]) == int(row["size"]) * (1 + int(row["n_aug"]))
    assert NO_MLM in (smoke("text_augmentation") / "report.md").read_text(encoding="utf-8")


def test_normalization_smoke_is_reproducible(tmp_path: Path) -> None:
    first = run_experiment("normalization", tmp_path / "a", smoke=True).parent
    second = run_experiment("normalization", tmp_path / "b", smoke=True).parent
    for name in ("losses.csv", "lr_sweep.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_registry_rejects_unknown_names_options_and_seeds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="did you mean 'optimizers'"):
        run_experiment("optimizer", tmp_path)
    with pytest.raises(ValueError, match="no option"):
        run_experiment("optimizers", tmp_path, mlm="bert-base-uncased")
    with pytest.raises(ValueError, match="seeds"):
        run_experiment("optimizers", tmp_path, seeds=0)
    assert not any(tmp_path.iterdir())


def test_every_experiment_is_in_the_cli_help_and_has_sane_seed_counts() -> None:
    help_text = _parser().format_help() + next(
        a for a in _parser()._subparsers._group_actions[0].choices.values()  # type: ignore[union-attr]
        if a.prog.endswith("experiment")).format_help()
    for name, info in EXPERIMENTS.items():
        assert name in help_text
        assert 1 <= info.seeds <= info.full_seeds
    assert EXPERIMENTS["optimizers"].seeds >= 3  # the issue asks for mean ± std over >= 3 seeds


def test_command_line_reproduces_the_flags() -> None:
    assert command_line("optimizers") == "augsvc-train experiment optimizers"
    assert command_line("text_augmentation", full=True, seeds=4, mlm="/m") == \
        "augsvc-train experiment text_augmentation --full --seeds 4 --mlm /m"


def test_cli_runs_an_experiment_and_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    assert main(["experiment", "initialization", "--smoke", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "initialization" / "report.md").exists()
    assert "initialization:" in capsys.readouterr().out
    assert main(["experiment", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err
    assert main(["experiment", "optimizers", "--mlm", "x", "--out", str(tmp_path)]) == 2


def test_helpers() -> None:
    assert mean_std([1.0, 3.0, math.nan]) == (2.0, 1.0)
    assert pm([0.5, 0.7], 1, scale=100) == "60.0 ± 10.0"
    assert pm([math.nan]) == "—"
    assert list(trailing_mean([4.0, 2.0, 0.0], 2)) == [4.0, 3.0, 1.0]
    assert steps_to_target([4.0, 2.0, 0.0], 1.0, 2) == 3
    assert steps_to_target([4.0, 2.0], 1.0, 2) is None
    assert stable([2.0] + [0.5] * 30) and not stable([2.0, math.nan] + [0.5] * 30)
    assert not stable([2.0] * 31)
    assert [n_aug_for(n) for n in (500, 2000, 11200)] == [16, 8, 4]


@pytest.mark.slow
def test_text_smoke_runs_the_contextual_arm_with_a_masked_lm(tmp_path: Path) -> None:
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    words = ["a", "an", "the", "of", "or", "and", "in", "to", "with", "that", "is", "used", "for",
             "any", "small", "large", "plant", "animal", "body", "food", "person", "place"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, ",", ".", ";"]
    folder = tmp_path / "tiny-bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=64,
                                       max_position_embeddings=512))
    model.save_pretrained(folder)
    BertTokenizer(vocab=str(folder / "vocab.txt")).save_pretrained(folder)
    run_experiment("text_augmentation", tmp_path / "out", smoke=True, mlm=str(folder))
    rows = _rows(tmp_path / "out" / "results.csv")
    contextual = [r for r in rows if r["arm"] == "contextual"]
    assert contextual and all(r["status"] == "ok" for r in contextual)
    for row in contextual:
        assert 0.0 <= float(row["val_accuracy"]) <= 1.0
        assert int(row["train_samples"]) == int(row["size"]) * (1 + int(row["n_aug"]))
