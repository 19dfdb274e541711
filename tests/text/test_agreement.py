"""The checks synonym and embedding run on their edits: tag agreement and meaning in context."""

from __future__ import annotations

from pathlib import Path

import pytest

from augsvc.text import TextPipeline
from augsvc.text.agreement import check_edits, keep_tags, new_spans
from augsvc.text.similarity import load_encoder
from augsvc.text.tokens import Edit

NEWS = (Path(__file__).parents[2] / "benchmarks/data/text_quality/news.txt").read_text().splitlines()


def test_new_spans_follow_earlier_edits() -> None:
    text = "one two three four"
    edits = [Edit(14, 18, "IV"), Edit(0, 3, "uno"), Edit(4, 7, "deux")]
    out = "uno deux three IV"
    assert [out[a:b] for a, b in new_spans(edits)] == ["IV", "uno", "deux"]
    assert text[14:18] == "four"


def test_a_verb_replaced_by_a_noun_is_refused() -> None:
    text = "She quickly walks to the market."
    assert keep_tags(text, [Edit(12, 17, "strolls")], ["VBZ"]) == [True]
    assert keep_tags(text, [Edit(12, 17, "pavement")], ["VBZ"]) == [False]


def test_word_similarity_separates_a_wrong_sense() -> None:
    """bought -> corrupted was a synonym a first user met (buy: bribe); in context it scores low."""
    text = "The company bought three new trucks last year."
    at = text.index("bought")
    words = ["purchased", "acquired", "corrupted", "bribed"]
    scores = [row[0] for row in load_encoder().word_similarity(
        [(text, text.replace("bought", w)) for w in words],
        [[((at, at + 6), (at, at + len(w)))] for w in words])]
    assert min(scores[:2]) > 0.65 > max(scores[2:])


def test_a_long_text_is_checked_in_windows() -> None:
    """The encoder reads 256 tokens; an edit far beyond them is still judged, not refused."""
    text = "Nothing happened on that quiet day in the town. " * 80 + "They live in a big house."
    at = text.rindex("big")
    edit = Edit(at, at + 3, "large")
    assert check_edits([text], [[edit]], [["JJ"]], 0.5) == [[True]]
    assert check_edits([text], [[edit]], [["JJ"]], 1.0) == [[False]]


@pytest.mark.parametrize("name", ["synonym", "embedding"])
def test_context_threshold_only_removes_edits(name: str) -> None:
    """The same random draws with and without the check: -1 keeps every edit, a threshold keeps
    a subset, 1.0 keeps none of them."""
    def ops(threshold: float | None) -> list[list[tuple[int, str]]]:
        pipe = TextPipeline([{"name": name, "p": 1, "aug_p": 0.5,
                              "context_threshold": threshold}])
        return [[(op["position"], op["substitute"]) for op in o.ops or []]
                for o in pipe.batch(NEWS[:40], seed=2, return_ops=True)]

    unchecked, everything, some, none = ops(None), ops(-1.0), ops(0.65), ops(1.0)
    assert everything == unchecked
    assert all(set(s) <= set(u) for s, u in zip(some, unchecked, strict=True))
    assert 0 < sum(map(len, some)) < sum(map(len, unchecked))
    assert not any(none)
