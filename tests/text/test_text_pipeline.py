"""Text spans, casing, the cheap operations and the text pipeline's seed contract."""

from __future__ import annotations

import json
import re

import pytest

from augsvc.errors import Cancelled, InputError, SpecError
from augsvc.text import TEXT_TRANSFORMS, TextPipeline
from augsvc.text.ops import KEYBOARD_NEIGHBOURS
from augsvc.text.tokens import Edit, apply_edits, match_case, words

TEXT = "The Quick brown fox,  jumps over\nthe LAZY dog. Emoji 🙂 stays; naïve café!\n"
SPEC = {"transforms": [
    {"name": "random_swap", "p": 0.5, "aug_p": 0.3},
    {"one_of": [{"name": "keyboard", "p": 1}, {"name": "random_deletion", "p": 1}], "p": 0.9},
]}


def gaps(text: str) -> list[str]:
    """Everything between words: whitespace, punctuation, emoji."""
    return re.split(r"\w+(?:['’-]\w+)*", text)


def test_words_are_exact_spans_in_any_script() -> None:
    text = "don't  x-ray\tСлово 漢字 naïve_42"
    found = words(text)
    assert [w.text for w in found] == ["don't", "x-ray", "Слово", "漢字", "naïve_42"]
    assert all(text[w.start:w.end] == w.text for w in found)
    assert [w.is_alpha for w in found] == [True, True, True, True, False]


@pytest.mark.parametrize(("original", "substitute", "expected"), [
    ("Dog", "puppy", "Puppy"), ("DOG", "puppy", "PUPPY"), ("dog", "Puppy", "puppy"),
    ("I", "me", "Me"), ("iPhone", "phone", "phone"),
])
def test_match_case(original: str, substitute: str, expected: str) -> None:
    assert match_case(original, substitute) == expected


def test_apply_edits_keeps_everything_else_and_tidies_deleted_spaces() -> None:
    text = "a bb  ccc\ndd"
    assert apply_edits(text, [Edit(2, 4, "XY")]) == "a XY  ccc\ndd"
    assert apply_edits(text, [Edit(0, 1, "")]) == "bb  ccc\ndd"
    assert apply_edits(text, [Edit(10, 12, "")]) == "a bb  ccc\n"
    assert apply_edits(text, [Edit(2, 4, "")]) == "a  ccc\ndd"
    with pytest.raises(ValueError, match="overlapping"):
        apply_edits(text, [Edit(0, 3, "x"), Edit(2, 4, "y")])


def test_swap_keeps_the_words_and_everything_between_them() -> None:
    pipeline = TextPipeline([{"name": "random_swap", "p": 1, "aug_p": 0.5}])
    for index in range(10):
        out = pipeline(TEXT, seed=0, index=index).text
        assert sorted(w.text for w in words(out)) == sorted(w.text for w in words(TEXT))
        assert gaps(out) == gaps(TEXT)
    assert any(pipeline(TEXT, seed=0, index=i).text != TEXT for i in range(10))


def test_deletion_removes_the_recorded_words_and_never_all() -> None:
    pipeline = TextPipeline([{"name": "random_deletion", "p": 1, "aug_p": 0.9, "aug_max": 100}])
    out = pipeline(TEXT, seed=3, return_ops=True)
    assert out.ops
    deleted = [op["original"] for op in out.ops]
    remaining = [w.text for w in words(out.text)]
    assert len(remaining) == len(words(TEXT)) - len(deleted) >= 1
    assert "  " not in out.text.replace(",  ", "")  # no doubled spaces left behind
    assert pipeline("single", seed=0).text == "single"


def test_keyboard_typos_are_neighbouring_keys_with_case_kept() -> None:
    pipeline = TextPipeline([{"name": "keyboard", "p": 1, "aug_p": 1.0, "aug_max": 100}])
    out = pipeline("Hello WORLD typing", seed=1, return_ops=True)
    assert out.ops is not None and len(out.ops) == 3
    for op in out.ops:
        before, after = op["original"], op["substitute"]
        diff = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert len(diff) == 1
        a, b = diff[0]
        assert b.lower() in KEYBOARD_NEIGHBOURS[a.lower()] and a.isupper() == b.isupper()
    assert "typ" not in KEYBOARD_NEIGHBOURS["a"]


@pytest.mark.parametrize("text", ["", "   \n\t", "🙂🙂 ✨", "漢字", "!!! ... ???"])
def test_texts_without_usable_words_are_unchanged(text: str) -> None:
    pipeline = TextPipeline([{"name": "keyboard", "p": 1}, {"name": "random_swap", "p": 1},
                             {"name": "random_deletion", "p": 1}])
    out = pipeline(text, seed=0, return_ops=True)
    assert out.text == text and out.ops == []


def test_one_megabyte_text_keeps_its_layout() -> None:
    big = ("Lorem ipsum dolor sit amet,\n  consectetur adipiscing elit. " * 18000)[:1_000_000]
    out = TextPipeline([{"name": "random_swap", "p": 1, "aug_p": 0.01, "aug_max": 1000}])(
        big, seed=0).text
    assert len(out) == len(big) and gaps(out) == gaps(big) and out != big


def test_seed_contract_batches_splits_and_variants() -> None:
    pipeline = TextPipeline(SPEC)
    texts = [f"{TEXT} number {k} with several more words here" for k in range(8)]
    singles = [pipeline(t, seed=5, index=k).text for k, t in enumerate(texts)]
    batch = [o.text for o in pipeline.batch(texts, seed=5)]
    split = [o.text for o in pipeline.batch(texts[:3], seed=5)] + [
        o.text for o in pipeline.batch(texts[3:], seed=5, start=3)]
    assert singles == batch == split
    variants = pipeline.batch(texts[:2], seed=5, n=3)
    assert [v.text for v in variants[::3]] == singles[:2]
    assert [(v.index, v.variant) for v in variants] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1),
                                                          (1, 2)]
    assert len({v.text for v in variants[:3]}) == 3
    assert len({pipeline(TEXT, seed=s).text for s in range(6)}) >= 5
    assert len({pipeline(TEXT).text for _ in range(6)}) >= 5


def test_ops_metadata_is_json_and_groups_pick_one() -> None:
    pipeline = TextPipeline(SPEC)
    for index in range(20):
        out = pipeline(TEXT, seed=2, index=index, return_ops=True)
        json.dumps(out.ops)
        kinds = {op["op"] for op in out.ops or []}
        assert not {"keyboard", "random_deletion"} <= kinds
        for op in out.ops or []:
            assert op["original"] in TEXT


def test_spec_errors_and_round_trip() -> None:
    with pytest.raises(SpecError, match="did you mean 'random_swap'"):
        TextPipeline([{"name": "random_swop"}])
    with pytest.raises(SpecError, match=r"aug_min .* must be <= aug_max"):
        TextPipeline([{"name": "keyboard", "aug_min": 5, "aug_max": 2}])
    with pytest.raises(SpecError, match="aug_p"):
        TextPipeline([{"name": "random_deletion", "aug_p": 2}])
    spec = TextPipeline(SPEC).to_spec()
    assert TextPipeline(spec).to_spec() == spec
    tested = {"random_swap", "random_deletion", "keyboard", "embedding", "synonym", "contextual",
              "ocr", "random_insertion"}
    assert set(TEXT_TRANSFORMS) == tested, "a text transform without tests: add them, then here"
    with pytest.raises(InputError, match="must be a str"):
        TextPipeline(SPEC).batch(["ok", b"bytes"])  # type: ignore[list-item]


def test_ocr_confusions_come_from_the_table() -> None:
    from augsvc.text.ops import OCR_CONFUSIONS

    pipeline = TextPipeline([{"name": "ocr", "p": 1, "aug_p": 1.0, "aug_max": 100}])
    out = pipeline("Modern 0CR systems still confuse rn and m", seed=0, return_ops=True)
    assert out.ops is not None and len(out.ops) == 7
    for op in out.ops:
        before, after = op["original"], op["substitute"]
        assert before != after
        start = next(k for k in range(len(before)) if k >= len(after) or before[k] != after[k])
        pairs = {(src, dst) for src, dsts in OCR_CONFUSIONS.items() for dst in dsts}
        assert any(before[start:start + len(s)] == s and after[start:start + len(d)] == d
                   and before[start + len(s):] == after[start + len(d):] for s, d in pairs), op
    assert gaps(out.text) == gaps("Modern 0CR systems still confuse rn and m")


def test_random_insertion_adds_synonyms_of_words_in_the_text() -> None:
    from augsvc.text.wordnet import load_wordnet

    wn = load_wordnet()
    text = "The children watched the birds in the garden."
    pipeline = TextPipeline([{"name": "random_insertion", "p": 1, "aug_p": 0.3}])
    for index in range(5):
        out = pipeline(text, seed=0, index=index, return_ops=True)
        assert out.ops is not None and len(out.ops) == 2
        remaining = out.text
        for op in out.ops:
            source = op["synonym_of"]
            assert source in text
            lemmas = {lemma for pos in "nvar" for base in wn.morphy(source, pos)
                      for lemma in wn.synonyms[(base, pos)]}
            assert op["substitute"] in lemmas
            remaining = remaining.replace(op["substitute"] + " ", "", 1)
        assert remaining == text


@pytest.mark.slow
def test_one_megabyte_through_the_word_transforms() -> None:
    big = ("The young scientists studied ancient rivers, mountains and forests.\n" * 15000)[:1_000_000]
    for spec in ({"name": "synonym", "aug_p": 0.01, "aug_max": 500},
                 {"name": "embedding", "aug_p": 0.01, "aug_max": 500}):
        out = TextPipeline([{**spec, "p": 1}])(big, seed=0, return_ops=True)
        assert out.ops is not None and 50 <= len(out.ops) <= 500
        assert out.text.count("\n") == big.count("\n") and out.text != big


def test_a_stop_request_ends_the_work_between_filter_attempts() -> None:
    # threshold 1.0 is never met by keyboard noise: without the stop, all 11 attempts would run
    pipeline = TextPipeline([{"semantic_filter": [{"name": "keyboard", "aug_p": 0.7}],
                              "threshold": 1.0, "retries": 10}])
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(Cancelled, match="stopped"):
        pipeline.batch(["The quick brown fox jumps over the lazy dog."], seed=0, stop=stop)
    # asked before the filter, then before each attempt's keyboard run: the 4th ask stops it
    assert len(asked) == 4
    assert len(pipeline.batch(["The quick brown fox."], seed=0, stop=lambda: False)) == 1
