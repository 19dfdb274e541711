"""One case against the fuzz server: send it, judge the answer, check the server, restart it if broken."""

from __future__ import annotations

import grpc

from augsvc.wire.v1 import augment_pb2 as pb
from tests.fuzz.calls import Case, Outcome, call, judge
from tests.fuzz.server import RSS_BOUND, FuzzServer

__all__ = ["run_case", "warm_up"]


def warm_up(server: FuzzServer) -> None:
    """Load what the first cases would otherwise wait for (text models, datasets), with a long
    deadline, so that no case pays for it in its own."""
    models = '[{"semantic_filter": [{"name": "embedding"}, {"name": "synonym"}]}]'
    for case in (
        Case("warm", "AugmentTexts", pb.AugmentTextsRequest(
            pipeline=pb.Pipeline(spec_json=models), texts=["warm up"], seed=0), deadline=120),
        Case("warm", "ListDatasets", pb.ListDatasetsRequest(), deadline=120),
        Case("warm", "StreamEpoch", pb.StreamEpochRequest(dataset="skimage", batch_size=1), deadline=120),
    ):
        call(server.channel, case)  # whatever it answers: the cases judge that


def run_case(server: FuzzServer, case: Case, rss_bound: int = RSS_BOUND) -> tuple[Outcome, list[str]]:
    """Send ``case`` to ``server``; the outcome, and what is wrong with it and with the server after it.

    A server that died, stopped SERVING or went over ``rss_bound`` is restarted, and so is one that
    let a call run into its deadline (the work may still be running): the next case is judged on
    a fresh server of its own.
    """
    if not server.alive():
        server.restart()
        warm_up(server)
    server.reset_peak()
    outcome = call(server.channel, case)
    after = server.problems(rss_bound)
    if after or outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        server.restart()
        warm_up(server)
    return outcome, judge(case, outcome) + after
