"""The long fuzz run: thousands of generated hostile requests (and the corpus) against ``augsvc serve``.

The same generators and checks as ``tests/service/test_fuzz.py`` (``tests/fuzz/``), with a
seed and as many examples as asked for. Prints a table of cases by RPC and status code, the
slowest answers, the peak RSS of the server's processes, and every failure; each failing request
is saved under ``--out`` (what went wrong and the request in text, and its wire bytes in
``<n>.bin``: each message as a 4-byte big-endian length and its serialized bytes).

    python benchmarks/fuzz_service.py --examples 5000 --seed 1     # or: make fuzz
    python benchmarks/fuzz_service.py --rpc AugmentImages --examples 500 --corpus
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# Run as a file (python benchmarks/x.py) the script's folder is on sys.path, not the repository
# root that `benchmarks.` and `tests.fuzz` (the generators the test suite uses) need (python -m
# puts the current folder, the root, there itself).
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, seed, settings
from tqdm import tqdm

from benchmarks.common import ROOT, cpu_name, render
from tests.fuzz import (
    CORPUS,
    RPCS,
    RSS_BOUND,
    SERVE_FLAGS,
    Case,
    FuzzServer,
    Outcome,
    describe,
    run_case,
    warm_up,
)
from tests.fuzz.strategies import cases

_MIB = 1024 * 1024
_DIGITS = re.compile(r"\d+(\.\d+)?")  # failures that differ only in numbers are one kind


@dataclass
class Tally:
    """What a run saw: status codes and seconds per RPC, the peak RSS, and the failures."""

    codes: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    seconds: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[tuple[Case, Outcome, list[str]]] = field(default_factory=list)
    peak_rss: int = 0
    cases: int = 0

    def add(self, server: FuzzServer, case: Case, outcome: Outcome, problems: list[str]) -> None:
        self.cases += 1
        self.codes[case.rpc][outcome.code.name] += 1
        self.seconds[case.rpc].append(outcome.seconds)
        self.peak_rss = max(self.peak_rss, server.peak())
        if problems:
            self.failures.append((case, outcome, problems))


def save(out: Path, number: int, case: Case, problems: list[str]) -> Path:
    """Write failure ``number``: ``<n>.txt`` (problems and request) and ``<n>.bin`` (wire bytes)."""
    out.mkdir(parents=True, exist_ok=True)
    request = case.build()
    messages = request if isinstance(request, tuple) else (request,)
    frames = [m if isinstance(m, bytes) else m.SerializeToString() for m in messages]
    (out / f"{number:04d}.bin").write_bytes(b"".join(struct.pack(">I", len(f)) + f for f in frames))
    text = [f"case: {case.id}", *(f"problem: {p}" for p in problems), f"request: {describe(case, 4000)}"]
    path = out / f"{number:04d}.txt"
    path.write_text("\n".join(text) + "\n")
    return path


def fuzz_rpc(server: FuzzServer, tally: Tally, rpc: str, examples: int, run_seed: int, deadline: float,
             rss_bound: int, bar: tqdm) -> None:
    """``examples`` generated cases for ``rpc`` (hypothesis, seeded; no shrinking, no database)."""

    @seed(run_seed)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=cases(rpc, deadline=deadline))
    def fuzz(case: Case) -> None:
        outcome, problems = run_case(server, case, rss_bound)
        tally.add(server, case, outcome, problems)
        bar.update(1)
        bar.set_postfix(failures=len(tally.failures), restarts=server.restarts)

    fuzz()


def report(tally: Tally, server: FuzzServer, out: Path, elapsed: float, rss_bound: int) -> None:
    names = sorted({code for counts in tally.codes.values() for code in counts},
                   key=lambda c: (c != "OK", c))
    head = ["rpc", "cases", *names, "p50 s", "max s"]
    rows = []
    for rpc in RPCS:
        if rpc not in tally.codes:
            continue
        seconds = sorted(tally.seconds[rpc])
        counts = tally.codes[rpc]
        rows.append([rpc, str(sum(counts.values())), *(str(counts.get(n, 0)) for n in names),
                     f"{seconds[len(seconds) // 2]:.3f}", f"{seconds[-1]:.2f}"])
    print()
    print(render(head, rows, markdown=False))
    print(f"\n{tally.cases} cases in {elapsed:.0f} s; peak RSS of one server process "
          f"{tally.peak_rss / _MIB:.0f} MiB (bound {rss_bound / _MIB:.0f} MiB); "
          f"server restarts: {server.restarts}")
    if not tally.failures:
        print("no failures")
        return
    print(f"\n{len(tally.failures)} failures, by kind (requests saved under {out}/):")
    kinds: defaultdict[str, list[str]] = defaultdict(list)
    for number, (case, _, problems) in enumerate(tally.failures, 1):
        path = save(out, number, case, problems)
        kinds[f"{case.id}: {_DIGITS.sub('N', problems[0])[:300]}"].append(path.name)
    for kind, files in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
        print(f"- {len(files)} x {kind}\n    {shown}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=5000,
                        help="generated cases in all, split over the RPCs")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (same seed, same cases)")
    parser.add_argument("--rpc", action="append", choices=sorted(RPCS), help="only these RPCs (repeatable)")
    parser.add_argument("--corpus", action="store_true", help="also run the known-bad corpus once")
    parser.add_argument("--deadline", type=float, default=10.0, help="seconds per generated call")
    parser.add_argument("--rss-bound-mib", type=int, default=RSS_BOUND // _MIB,
                        help="RSS a server process may reach")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / f"fuzz-{time.strftime('%Y%m%d-%H%M%S')}",
                        help="where failing requests are saved")
    args = parser.parse_args()
    rpcs = args.rpc or list(RPCS)
    weights = {"ListTransforms": 1, "ListDatasets": 1}  # nothing much to vary in an empty request
    total_weight = sum(weights.get(r, 10) for r in rpcs)
    budget = {r: max(1, args.examples * weights.get(r, 10) // total_weight) for r in rpcs}
    rss_bound = args.rss_bound_mib * _MIB
    print(f"fuzz_service: {cpu_name()}, {os.cpu_count()} CPUs; seed {args.seed}; "
          f"augsvc serve {' '.join(SERVE_FLAGS)}")
    tally = Tally()
    start = time.monotonic()
    with FuzzServer() as server:
        warm_up(server)
        total = sum(budget.values()) + (len(CORPUS) if args.corpus else 0)
        with tqdm(total=total, unit="case", file=sys.stderr, mininterval=1) as bar:
            if args.corpus:
                for case in CORPUS:
                    outcome, problems = run_case(server, case, rss_bound)
                    tally.add(server, case, outcome, problems)
                    bar.update(1)
            for rpc in rpcs:
                bar.set_description(rpc)
                fuzz_rpc(server, tally, rpc, budget[rpc], args.seed, args.deadline, rss_bound, bar)
        report(tally, server, args.out, time.monotonic() - start, rss_bound)
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
