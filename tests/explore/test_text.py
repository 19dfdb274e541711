"""The text side: the page's highlights are the pipeline's ops, placed in the variant's text
(``augsvc.explore.highlight``), in-process and through a server; the semantic filter's score."""

from __future__ import annotations

import pytest

from augsvc.errors import SpecError
from augsvc.explore.highlight import segments
from augsvc.text import TextPipeline
from tests.explore.conftest import Page

TEXTS = ["The quick brown fox jumps over the lazy dog.",
         "She bought fresh vegetables at the market yesterday morning."]
SYNONYM = "transforms:\n  - name: synonym\n    aug_p: 0.4\n    context_threshold: null\n"
MIXED = [  # every op shape: substitution, swap, typo, insertion, deletion; the same op twice
    [{"name": "synonym", "aug_p": 0.3, "context_threshold": None}, {"name": "random_swap", "p": 0.5}],
    [{"name": "random_deletion", "aug_p": 0.3}, {"name": "random_insertion", "p": 0.7, "aug_p": 0.3},
     {"name": "keyboard", "p": 0.5}, {"name": "random_swap", "p": 0.5}],
    [{"name": "random_swap", "aug_p": 0.5}, {"name": "random_swap", "aug_p": 0.5},
     {"name": "random_deletion", "aug_p": 0.4}, {"name": "random_deletion", "aug_p": 0.4}],
    [{"name": "ocr", "aug_p": 0.5}, {"name": "random_insertion", "aug_p": 0.5},
     {"name": "random_insertion", "aug_p": 0.5}],
]


@pytest.fixture(params=["local_page", "remote_page"])
def page(request: pytest.FixtureRequest) -> Page:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.mark.parametrize("spec", MIXED)
def test_segments_rebuild_every_variant(spec: list[dict[str, object]]) -> None:
    texts = [*TEXTS, "A a b c d e f g h"]
    outs = TextPipeline(spec).batch(texts, seed=3, n=12, return_ops=True)
    for k, out in enumerate(outs):
        cut = segments(texts[k // 12], out.ops or [], out.text)
        assert cut is not None, (texts[k // 12], out.text, out.ops)
        assert "".join(s.text for s in cut) == out.text
        for s in cut:
            if s.op is not None and s.original and s.text:  # a substitution reads as it was made
                assert s.text != s.original or s.op == "random_swap"


def test_one_transform_marks_exactly_its_ops() -> None:
    outs = TextPipeline(SYNONYM).batch(TEXTS, seed=1, n=6, return_ops=True)
    assert any(o.ops for o in outs)
    for k, out in enumerate(outs):
        cut = segments(TEXTS[k // 6], out.ops or [], out.text)
        assert cut is not None
        marks = [(s.position, s.original, s.text, s.op) for s in cut if s.op]
        assert marks == [(o["position"], o["original"], o["substitute"], o["op"]) for o in out.ops or []]


def test_an_edit_overwritten_later_is_its_history() -> None:
    source = "She bought fresh vegetables at the market yesterday morning."
    ops = [{"op": "synonym", "position": 35, "original": "market", "substitute": "marketplace"},
           {"op": "random_swap", "position": 35, "original": "marketplace", "substitute": "morning"},
           {"op": "random_swap", "position": 57, "original": "morning", "substitute": "marketplace"}]
    augmented = "She bought fresh vegetables at the morning yesterday marketplace."
    cut = segments(source, ops, augmented)
    assert cut is not None
    first = next(s for s in cut if s.op)
    assert (first.text, first.original, first.history) == (
        "morning", "marketplace", ({"op": "synonym", "original": "market"},))


def test_ops_that_do_not_belong_to_the_text_are_not_drawn() -> None:
    ops = [{"op": "synonym", "position": 4, "original": "slow", "substitute": "fast"}]
    assert segments("The quick fox.", ops, "The fast fox.") is None
    assert segments("The quick fox.", [{"op": "x", "position": "4"}], "The fast fox.") is None
    verdict = [{"op": "semantic_filter", "similarity": 1.0, "attempts": 1, "kept": True}]
    assert [s.to_dict() for s in segments("Same.", verdict, "Same.") or []] == [{"text": "Same."}]


def test_the_api_s_highlights_are_the_pipeline_s_ops(page: Page) -> None:
    status, reply = page.call("POST", "/api/text", {"texts": "\n".join(TEXTS), "spec": SYNONYM,
                                                   "seed": "1", "n": 3})
    assert status == 200, reply
    library = TextPipeline(SYNONYM).batch(TEXTS, seed=1, n=3, return_ops=True)
    variants = [v for r in reply["results"] for v in r["variants"]]
    assert [r["text"] for r in reply["results"]] == TEXTS
    assert [(v["text"], v["ops"]) for v in variants] == [(o.text, o.ops) for o in library]
    for v in variants:
        assert "".join(s["text"] for s in v["segments"]) == v["text"]
        marks = [(s["position"], s["original"], s["text"]) for s in v["segments"] if "op" in s]
        assert marks == [(o["position"], o["original"], o["substitute"]) for o in v["ops"]]
        assert v["similarity"] is None


def test_the_semantic_filter_s_score_is_shown(local_page: Page) -> None:
    status, reply = local_page.call("POST", "/api/text", {
        "texts": TEXTS[0], "spec": SYNONYM, "seed": "0", "n": 2,
        "filter": {"on": True, "threshold": "0.5"}})
    assert status == 200, reply
    wrapped = {"transforms": [{"semantic_filter": TextPipeline(SYNONYM).to_spec()["transforms"],
                               "threshold": 0.5}]}
    library = TextPipeline(wrapped).batch([TEXTS[0]], seed=0, n=2, return_ops=True)
    assert reply["spec"] == TextPipeline(wrapped).to_spec()
    for v, out in zip(reply["results"][0]["variants"], library, strict=True):
        assert v["text"] == out.text and v["similarity"] == (out.ops or [])[-1]
        assert v["similarity"]["op"] == "semantic_filter" and v["similarity"]["similarity"] >= 0.5


@pytest.mark.parametrize(("request_", "field", "message"), [
    ({"texts": " \n "}, "texts", "enter a sentence"),
    ({"texts": "x\n" * 21}, "texts", "21 sentences is over the limit of 20"),
    ({"texts": "x" * 2001}, "texts", "a sentence of 2001 characters is over the limit of 2000"),
    ({"spec": "transforms:\n  - name: synonim\n"}, "spec", "did you mean 'synonym'"),
    ({"spec": "edaa"}, "spec", "did you mean 'eda'"),
    ({"filter": {"on": True, "threshold": 2}}, "filter", "threshold"),
    ({"spec": "transforms:\n  - semantic_filter: [{name: keyboard}]\n", "filter": {"on": True}},
     "filter", "cannot be inside another semantic_filter"),
    ({"n": 17}, "n", "n must be in [1, 16], got 17"),
    ({"seed": "-1"}, "seed", "seed must be a whole number"),
])
def test_bad_text_requests_name_their_field(local_page: Page, request_: dict[str, object], field: str,
                                            message: str) -> None:
    body = {"texts": TEXTS[0], "spec": SYNONYM, "seed": "0", "n": 2, **request_}
    status, reply = local_page.call("POST", "/api/text", body)
    assert status in (400, 413), reply
    assert reply["error"]["field"] == field and message in reply["error"]["message"]
    if field == "spec" and "synonim" in str(body["spec"]):
        with pytest.raises(SpecError) as expected:
            TextPipeline(body["spec"])
        assert reply["error"]["message"] == str(expected.value)
