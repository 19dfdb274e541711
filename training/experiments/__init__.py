"""Reproducible experiments on real data, each one command writing a report with plots."""

from training.experiments.registry import (
    EXPERIMENTS,
    ExperimentInfo,
    command_line,
    list_experiments,
    run_experiment,
)

__all__ = ["EXPERIMENTS", "ExperimentInfo", "command_line", "list_experiments", "run_experiment"]
