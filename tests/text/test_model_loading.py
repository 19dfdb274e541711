"""Models load once, whichever threads ask first (the service's request threads, the explore page)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A fresh interpreter: transformers' lazy imports race only the first time in a process.
_SCRIPT = """
import threading
from augsvc.text.similarity import load_encoder

start = threading.Barrier(4)
got, errors = [], []

def load():
    start.wait()
    try:
        got.append(id(load_encoder("cpu")))
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=load) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(got), len(set(got)), errors)
"""


@pytest.mark.slow
def test_four_threads_loading_the_encoder_at_once_get_one_encoder() -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "4 1 []", done.stdout + done.stderr[-2000:]
