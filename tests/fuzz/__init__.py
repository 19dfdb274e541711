"""Fuzzing the Augmenter service: a server under a memory cap, hostile cases, and their judges.

Shared by ``tests/service/test_fuzz.py`` (in ``make test``) and ``benchmarks/fuzz_service.py``
(the long run, ``make fuzz``).
"""

from tests.fuzz.calls import ACCEPTABLE, RPCS, Case, Outcome, call, describe, judge
from tests.fuzz.corpus import CORPUS
from tests.fuzz.runner import run_case, warm_up
from tests.fuzz.server import MEMORY_CAP, RSS_BOUND, SERVE_FLAGS, FuzzServer, Limits

__all__ = ["ACCEPTABLE", "CORPUS", "MEMORY_CAP", "RPCS", "RSS_BOUND", "SERVE_FLAGS", "Case", "FuzzServer",
           "Limits", "Outcome", "call", "describe", "judge", "run_case",
           "warm_up"]
