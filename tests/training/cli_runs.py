"""Running ``augsvc-train train`` from a test: a run config written out, its metrics read back."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from training.cli import main


def train_cli(tmp_path: Path, run: dict[str, Any], name: str, dataset: str, *extra: str,
              **data: Any) -> list[dict[str, str]]:
    """Train ``run`` on ``dataset`` (``data`` overrides its data section) into ``tmp_path/name``
    through the CLI, asserting it exits 0; the rows of its metrics.csv."""
    config = tmp_path / f"{name}.json"  # JSON is YAML
    config.write_text(json.dumps({**run, "out_dir": str(tmp_path / name),
                                  "data": {**run["data"], "dataset": dataset, **data}}))
    assert main(["train", "--config", str(config), "-q", *extra]) == 0
    return list(csv.DictReader((tmp_path / name / "metrics.csv").open()))
