"""``augsvc explore`` from the command line: it prints its address, serves, and stops on Ctrl-C."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from augsvc.cli import main

ROOT = Path(__file__).resolve().parents[2]


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The process's first line of output, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                return process.stdout.readline()
            assert process.poll() is None, "augsvc explore exited before printing its address"
    raise AssertionError("augsvc explore printed no address")


@pytest.mark.slow
def test_explore_prints_its_address_serves_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen([sys.executable, "-m", "augsvc.cli", "explore", "--port", "0",
                                "--token", "t0ken"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = first_line(process, 120)
        assert line.startswith("augsvc explore: http://127.0.0.1:") and "the library" in line
        url = line.split()[2]
        assert url.endswith("/?token=t0ken")
        with urllib.request.urlopen(url, timeout=60) as reply:
            assert b"augsvc explore" in reply.read()
        request = urllib.request.Request(url.split("?")[0] + "api/config",
                                         headers={"X-Augsvc-Token": "t0ken"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert json.loads(reply.read())["backend"] == "library"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_explore_flags_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["explore", "--datasets", "no-equals-sign"])
    assert exited.value.code == 2 and "expected NAME=PATH" in capsys.readouterr().err
    assert main(["explore", "--server", "127.0.0.1:1", "--datasets", "a=b"]) == 2
    assert "--datasets is for the library in-process" in capsys.readouterr().err
    assert main(["explore", "--max-pixels", "0"]) == 2
