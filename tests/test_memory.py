"""augsvc.memory: batch-sized buffers stop page-faulting once the allocator is tuned."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import resource, sys
from augsvc.memory import reuse_large_buffers

def faults_per_batch() -> float:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        wire = b"x" * (64 * 224 * 224 * 3)  # a 9.6 MB message, written page by page
        del wire
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20

default = faults_per_batch()
tuned = reuse_large_buffers()
faults_per_batch()  # the first batch after tuning still grows the heap
print(default, tuned, faults_per_batch())
"""


def test_tuned_allocator_reuses_batch_buffers_instead_of_faulting_them_in() -> None:
    # A fresh interpreter: the test process may already have been tuned by a client.
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    default, tuned, after = float(out[0]), out[1] == "True", float(out[2])
    assert tuned
    assert default >= 50  # glibc maps each 9.6 MB buffer afresh and faults it in again
    assert after <= default / 20  # tuned: the freed buffer is reused, no new pages
