"""The service survives its users: hostile requests of every message type against a real server.

A real ``augsvc serve`` process (small limits, an address-space cap so a regression cannot OOM the
machine) gets a corpus of known-bad payloads and hypothesis-generated requests of every message
type. Per case: the status is one the case allows (never INTERNAL or UNKNOWN) with a message that
says what to do; afterwards the process is alive, its health service says SERVING, none of its
processes peaked over ``RSS_BOUND`` (2 GiB) during the case and together they hold under twice
that. A case that breaks the server gets a fresh one, so the next case is judged on its own. The
long run of the same generators is ``make fuzz`` (``benchmarks/fuzz_service.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz import CORPUS, RPCS, Case, FuzzServer, describe, run_case, warm_up
from tests.fuzz.strategies import cases

pytestmark = pytest.mark.slow

EXAMPLES = {"ListTransforms": 5, "ListDatasets": 5, "AugmentImages": 100, "AugmentTexts": 60,
            "StreamEpoch": 60, "StreamAugmentImages": 25, "StreamAugmentTexts": 25}
"""Generated cases per RPC in ``make test`` (``make fuzz`` runs thousands)."""
MAX_REPORTED = 5  # a generated run stops calling the server after this many failures


@pytest.fixture(scope="module")
def server() -> Iterator[FuzzServer]:
    with FuzzServer() as running:
        warm_up(running)
        yield running


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_known_bad_request(server: FuzzServer, case: Case) -> None:
    _, problems = run_case(server, case)
    assert not problems, "\n".join([f"{case.id}:", *problems, f"request: {describe(case)}"]
                                   + ([f"note: {case.note}"] if case.note else []))


@pytest.mark.parametrize("rpc", list(RPCS))
def test_generated_requests(server: FuzzServer, rpc: str) -> None:
    failures: list[str] = []

    @settings(max_examples=EXAMPLES[rpc], derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=cases(rpc))
    def fuzz(case: Case) -> None:
        # Failures are collected, not raised: every example runs, and shrinking (many more calls
        # against a server that may be in trouble) is left to the reader of the request shown.
        if len(failures) < MAX_REPORTED and (problems := run_case(server, case)[1]):
            failures.append("\n  ".join([*problems, f"request: {describe(case)}"]))

    fuzz()
    more = "or more " if len(failures) == MAX_REPORTED else ""
    assert not failures, f"{len(failures)} {more}generated {rpc} cases failed:\n" + \
        "\n".join(f"- {f}" for f in failures)
