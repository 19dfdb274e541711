"""The trainer's input wait: the time spent inside the batch iterator, counted exactly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import training.timing as timing
from training.timing import Waited


def test_waited_adds_up_the_time_spent_getting_each_item(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])

    def slow_source() -> Iterator[int]:
        for k in range(3):
            clock[0] += 2.0  # producing an item takes 2 s of the consumer's time
            yield k

    items = Waited(slow_source())
    for item in items:
        clock[0] += 5.0  # the consumer's own work is not waiting
        assert item in (0, 1, 2)
    assert items.seconds == 6.0  # three waits of 2 s, and the last, empty next() took none


def test_a_run_reports_its_input_wait(tmp_path) -> None:
    from training.config import load_config
    from training.trainer import Trainer

    config = load_config({"seed": 0, "epochs": 1, "device": "cpu", "tensorboard": False,
                          "out_dir": str(tmp_path), "model": {"name": "mlp", "width": 16},
                          "data": {"train_size": 128, "batch_size": 64}})
    result = Trainer(config, progress=False).fit()
    assert 0.0 < result.history[0]["input_wait"] < 1.0
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert "input_wait" in header.split(",")


def test_the_input_wait_is_served_to_prometheus_when_asked(tmp_path) -> None:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from training.config import load_config
    from training.trainer import Trainer

    run = {"seed": 0, "epochs": 1, "device": "cpu", "tensorboard": False, "out_dir": str(tmp_path),
           "model": {"name": "mlp", "width": 16}, "data": {"train_size": 128, "batch_size": 64}}
    assert Trainer(load_config(run), progress=False).exporter is None  # off unless asked for
    trainer = Trainer(load_config({**run, "metrics_port": 0}), progress=False)
    assert trainer.exporter is not None
    try:
        result = trainer.fit()
        text = urllib.request.urlopen(f"http://127.0.0.1:{trainer.exporter.port}/metrics",
                                      timeout=30).read().decode()
    finally:
        trainer.exporter.close()
    waited = {tuple(s.labels.items()): s.value for family in text_string_to_metric_families(text)
              for s in family.samples if s.name == "augsvc_trainer_input_wait_seconds_total"}
    seconds = result.history[0]["seconds"] * result.history[0]["input_wait"]
    assert waited[(("rank", "0"),)] == pytest.approx(seconds, rel=1e-6)  # the same waits, summed
