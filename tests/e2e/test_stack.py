"""The whole product as processes: real `augsvc serve` servers, the real `augsvc-train` CLI.

Also the docker-compose stack without a Docker engine: the file is valid against the Compose
specification, and its commands, with only hosts, ports and paths swapped, run here as processes.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from augsvc.service.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
CHANCE = 0.1  # ten digit classes


def _local(command: list[str]) -> list[str]:
    """A compose command as a local process: the console scripts through this interpreter."""
    scripts = {"augsvc": ["-m", "augsvc.cli"], "augsvc-train": ["-m", "training"]}
    return [sys.executable, *scripts[command[0]], *command[1:]]


def _swap(command: list[str], values: dict[str, str]) -> list[str]:
    """Replace the value after each flag in ``values`` (hosts, ports, paths of the container)."""
    out = list(command)
    for flag, value in values.items():
        out[out.index(flag) + 1] = value
    return out


def _train(args: list[str], out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(_local(["augsvc-train", "train", *args, "--out", str(out), "-q"]),
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _metrics(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "metrics.csv").open()))


def _served(server: ServerProcess, method: str) -> int:
    return sum(json.loads(line).get("method", "").endswith(method) for line in server.logs)


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(ROOT / "docker-compose.yml")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    services = COMPOSE["services"]
    assert services["trainer"]["depends_on"]["augsvc"]["condition"] == "service_healthy"
    assert services["augsvc"]["healthcheck"]["test"][1:3] == ["augsvc", "health"]
    gpu = services["trainer-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    assert "ports" not in services["augsvc"]  # replicas cannot share a host port; clients use DNS


@pytest.mark.slow
def test_compose_equivalent_two_replicas_and_a_trainer(tmp_path: Path) -> None:
    services: dict[str, Any] = COMPOSE["services"]
    serve = _swap(services["augsvc"]["command"], {"--host": "127.0.0.1", "--port": "0",
                                                  "--metrics-port": "0"})
    assert serve[:2] == ["augsvc", "serve"]
    replicas = [ServerProcess(serve[2:]) for _ in range(2)]
    try:
        addresses = ",".join(r.address for r in replicas)
        train = _swap(services["trainer"]["command"], {
            "--config": str(ROOT / "configs" / "compose.yaml"), "--out": str(tmp_path)})
        train[train.index("data.addresses=[augsvc:50051]")] = f"data.addresses=[{addresses}]"
        result = subprocess.run(_local([*train, "--set", "epochs=1", "-q"]), cwd=ROOT, env=ENV,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        rows = _metrics(tmp_path)
        assert len(rows) == 1 and float(rows[0]["val_accuracy"]) > CHANCE + 0.3
    finally:
        codes = [r.stop() for r in replicas]
    assert codes == [0, 0]  # SIGTERM: a clean exit
    # Read after stop(), which returns once every log line is in (a fixed sleep could miss the
    # last ones on a busy machine).
    assert all(_served(r, "StreamEpoch") >= 1 for r in replicas)  # round_robin used both


@pytest.mark.slow
def test_cli_server_and_trainer_learn_digits(tmp_path: Path) -> None:
    server = ServerProcess(["--epoch-workers", "1"])
    try:
        trainer = _train(["--config", str(ROOT / "configs" / "compose.yaml"),
                          "--set", f"data.addresses=[{server.address}]", "--set", "epochs=2"], tmp_path)
        _, err = trainer.communicate(timeout=600)
        assert trainer.returncode == 0, err[-3000:]
    finally:
        assert server.stop() == 0
    rows = _metrics(tmp_path)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[-1]["val_accuracy"]) >= CHANCE + 0.6  # stated margin: 0.7 or better


def _in_flight(server: ServerProcess, method: str) -> float:
    """Calls of ``method`` started but not finished, from the server's Prometheus metrics."""
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    count = 0.0
    for line in text.splitlines():
        if f'grpc_method="{method}"' in line and not line.startswith("#"):
            if line.startswith("grpc_server_started_total"):
                count += float(line.rsplit(" ", 1)[1])
            elif line.startswith("grpc_server_handled_total"):
                count -= float(line.rsplit(" ", 1)[1])
    return count


@pytest.mark.slow
def test_replica_killed_mid_epoch_and_the_trainer_sees_every_sample_once(tmp_path: Path) -> None:
    # Kill whichever replica is streaming epoch 2 (its metrics show the call in flight); the
    # client resumes on the other. RemoteSource checks every epoch against the plan and fails the
    # run on a lost or repeated sample, so exit 0 means every sample arrived exactly once.
    replicas = [ServerProcess(["--epoch-workers", "1", "--metrics-port", "0"]) for _ in range(2)]
    killed = None
    try:
        trainer = _train(["--config", str(ROOT / "configs" / "compose.yaml"), "--set",
                          f"data.addresses=[{replicas[0].address},{replicas[1].address}]",
                          "--set", "epochs=3"], tmp_path)
        assert trainer.stdout is not None
        line = trainer.stdout.readline()  # "training cnn on digits ..."
        while line and not line.startswith("epoch 1/3"):
            line = trainer.stdout.readline()
        assert line.startswith("epoch 1/3"), "the trainer ended before its first epoch"
        deadline = time.monotonic() + 10
        while killed is None and time.monotonic() < deadline:
            busy = [r for r in replicas if _in_flight(r, "StreamEpoch") > 0]
            if len(busy) == 1:
                killed = busy[0]
                killed.process.send_signal(signal.SIGKILL)
                killed.process.wait()
            time.sleep(0.02)
        assert killed is not None, "no replica was streaming epoch 2"
        _, err = trainer.communicate(timeout=600)
        assert trainer.returncode == 0, err[-3000:]
        assert "broke (UNAVAILABLE); resuming at batch" in err  # the stream did move replicas
    finally:
        codes = [r.stop() for r in replicas]
    survivor = replicas[1] if killed is replicas[0] else replicas[0]
    assert codes[replicas.index(survivor)] == 0
    rows = _metrics(tmp_path)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert float(rows[-1]["val_accuracy"]) > CHANCE + 0.3


def test_health_command_used_by_the_compose_healthcheck(capsys: pytest.CaptureFixture[str]) -> None:
    from augsvc.cli import main
    from augsvc.service.server import build_server

    server, port = build_server("127.0.0.1:0")
    server.start()
    try:
        assert main(["health", f"127.0.0.1:{port}"]) == 0
        assert capsys.readouterr().out.strip() == "SERVING"
    finally:
        server.stop(0)
    assert main(["health", f"127.0.0.1:{port}", "--timeout", "0.5"]) == 1  # nobody there now
    err = capsys.readouterr().err
    assert "UNAVAILABLE" in err or "DEADLINE_EXCEEDED" in err


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_epoch_workers_end_with_a_killed_server() -> None:
    server = ServerProcess(["--epoch-workers", "2"])
    workers = _children(server.process.pid)
    assert len(workers) >= 2  # the two batch workers (and the resource tracker)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]]
    assert alive == []
