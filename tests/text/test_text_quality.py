"""The word-substitution quality harness (benchmarks/text_quality.py): its checks on inputs whose
answers are known, the judgement files, the seeded sample, and one small run end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from augsvc.text import TextPipeline
from augsvc.text.tokens import Edit, apply_edits
from benchmarks.text_judging import (
    DICTIONARY,
    Checked,
    Substitution,
    draw_sample,
    is_nonword,
    judge,
    load_dictionary,
    merge_filled_in,
    new_offsets,
    read_jsonl,
    substitutions,
    unjudged_path,
    write_jsonl,
    write_unjudged,
)
from benchmarks.text_quality import DATA, main, pos_tags


def _ops(text: str, changes: list[tuple[str, str]]) -> tuple[str, list[dict[str, Any]]]:
    """Replace the first occurrence of each (word, substitute) at once, as a transform does;
    returns the new text and the ops, deliberately not in text order."""
    edits = [Edit(text.index(w), text.index(w) + len(w), s) for w, s in changes]
    ops: list[dict[str, Any]] = [{"op": "synonym", "position": e.start, "original": w, "substitute": s}
                                 for e, (w, s) in zip(edits, changes, strict=True)]
    return apply_edits(text, edits), ops


def _sub(sentence: str, after: str, op: dict[str, Any], at: int) -> Substitution:
    return Substitution("synonym", "news.txt", 0, sentence, after, op["position"], op["original"],
                        op["substitute"], at)


def test_offsets_follow_earlier_edits_of_different_lengths() -> None:
    text = "The big dog bought a red car in the old town yesterday."
    # longer, shorter, multi-word, same length; listed out of text order
    after, ops = _ops(text, [("town", "city"), ("big", "enormous"), ("bought", "got"),
                             ("car", "motor car"), ("old", "ancient")])
    assert after == "The enormous dog got a red motor car in the ancient city yesterday."
    at = new_offsets(ops)
    for op, k in zip(ops, at, strict=True):
        assert after[k:k + len(op["substitute"])] == op["substitute"]
    assert at[0] == after.index("city") and at[1] == 4
    subs = substitutions("synonym", "news.txt", 3, text, after, ops)
    assert [s.new_position for s in subs] == at
    assert subs[0].marked == "The enormous dog got a red motor car in the ancient [[city]] yesterday."


def test_substitutions_refuse_ops_that_disagree_with_the_text() -> None:
    text = "The big dog barked."
    op = {"op": "synonym", "position": 4, "original": "big", "substitute": "large"}
    with pytest.raises(ValueError, match="is not at"):
        substitutions("synonym", "news.txt", 0, text, "The huge dog barked.", [op])
    # ops of other transforms are not this transform's substitutions
    assert substitutions("embedding", "news.txt", 0, text, "The large dog barked.", [op]) == []


def test_pos_agreement_in_context() -> None:
    text = "They bought a new car yesterday."
    after, ops = _ops(text, [("bought", "bicycle"), ("car", "motor car")])
    verb, noun = (_sub(text, after, op, k) for op, k in zip(ops, new_offsets(ops), strict=True))
    assert pos_tags(verb) == ("VBD", "NN")  # a verb replaced by a noun
    assert pos_tags(noun) == ("NN", "NN")  # a multi-word noun is read at its head, "car"
    changed = Checked(verb, pos_tags(verb), False, False, False)
    kept = Checked(noun, pos_tags(noun), False, False, False)
    assert not changed.pos_exact and not changed.pos_coarse
    assert kept.pos_exact and kept.pos_coarse
    # an exact change inside the coarse class: past tense -> past participle
    assert Checked(verb, ("VBD", "VBN"), False, False, False).pos_coarse
    assert not Checked(verb, ("VBD", "VBN"), False, False, False).pos_exact
    assert not Checked(verb, (None, None), False, False, False).pos_coarse  # untagged is no agreement


def test_non_words() -> None:
    words = load_dictionary()
    assert is_nonword("masseses", words)
    assert not is_nonword("purchased", words)
    assert not is_nonword("Purchased", words)
    assert not is_nonword("climb up", words) and not is_nonword("well-chosen", words)
    assert is_nonword("climb upp", words) and is_nonword("well-chozen", words)


def test_missing_dictionary_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="wamerican-large"):
        load_dictionary([tmp_path / "nope"])


def _three() -> list[Substitution]:
    text = "The big dog bought a red car."
    after, ops = _ops(text, [("big", "large"), ("bought", "purchased"), ("car", "automobile")])
    return [_sub(text, after, op, k) for op, k in zip(ops, new_offsets(ops), strict=True)]


def test_judgements_are_found_again_and_kept(tmp_path: Path) -> None:
    big, bought, car = _three()
    judgements = tmp_path / "judgements.jsonl"
    old = {"transform": "synonym", "sentence": "Another sentence.", "position": 0,
           "original": "Another", "substitute": "One more", "acceptable": False, "why": "not in run"}
    entry = {"transform": "synonym", "sentence": big.sentence, "position": 4, "original": "big",
             "substitute": "large", "acceptable": True, "why": "same meaning"}
    write_jsonl(judgements, [old, entry])

    judged, unjudged = judge([big, bought, car], judgements)
    assert judged == [(big, entry)]
    assert unjudged == [bought, car]
    path = write_unjudged(judgements, "synonym", unjudged)
    assert path == unjudged_path(judgements, "synonym") == tmp_path / "unjudged_synonym.jsonl"
    lines = read_jsonl(path)
    assert [(e["original"], e["substitute"], e["acceptable"]) for e in lines] == [
        ("bought", "purchased", None), ("car", "automobile", None)]
    assert lines[0]["after"] == "The large dog [[purchased]] a red automobile."
    assert merge_filled_in(judgements, ["synonym"]) == 0  # nothing filled in yet
    assert read_jsonl(judgements) == [old, entry]

    lines[1].update(acceptable=False, why="register")  # a person judges one of the two
    write_jsonl(path, lines)
    assert merge_filled_in(judgements, ["synonym"]) == 1
    merged = read_jsonl(judgements)
    assert merged[:2] == [old, entry]  # earlier judgements, in the sample or not, are kept
    assert merged[2]["substitute"] == "automobile" and merged[2]["acceptable"] is False
    assert "after" not in merged[2]
    judged, unjudged = judge([big, bought, car], judgements)
    assert [s for s, _ in judged] == [big, car] and unjudged == [bought]


def test_sample_is_seeded_and_capped_per_sentence() -> None:
    subs = [Substitution("synonym", file, i, f"{file} sentence {i}", f"after {i}", 4 * k, "w",
                         f"s{k}", 4 * k)
            for file in ("news.txt", "reviews.txt") for i in range(8) for k in range(5)]
    sample = draw_sample(subs, 12, seed=0)
    assert sample == draw_sample(list(reversed(subs)), 12, seed=0)  # input order does not matter
    assert len(sample) == 12 and len(set(sample)) == 12
    per_sentence: dict[tuple[str, int], int] = {}
    for s in sample:
        per_sentence[(s.file, s.index)] = per_sentence.get((s.file, s.index), 0) + 1
    assert max(per_sentence.values()) <= 2
    assert {s.file for s in sample} == {"news.txt", "reviews.txt"}
    assert draw_sample(subs, 12, seed=1) != sample
    assert len(draw_sample(subs, 1000, seed=0)) == 2 * 8 * 2  # the cap bounds the sample


def test_end_to_end_on_thirty_shipped_sentences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert DICTIONARY.is_file(), "make test installs the Debian package wamerican-large"
    sentences = (DATA / "news.txt").read_text(encoding="utf-8").splitlines()[:30]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "news.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    judgements, out = tmp_path / "judgements.jsonl", tmp_path / "report.md"

    assert main(["--transforms", "synonym", "--seeds", "0", "--corpus", str(corpus), "--judgements",
                 str(judgements), "--out", str(out), "--judge", "4"]) == 0

    pipe = TextPipeline({"transforms": [{"name": "synonym", "aug_p": 0.3}]})
    ops = [op for i, s in enumerate(sentences)
           for op in pipe(s, seed=0, index=i, return_ops=True).ops or [] if op["op"] == "synonym"]
    assert ops
    report = out.read_text(encoding="utf-8")
    assert report == capsys.readouterr().out.rstrip("\n") + "\n"
    rows = [ln for ln in report.splitlines() if ln.startswith("| synonym |")]
    assert len(rows) == 1
    assert rows[0].split(" | ")[1:3] == ["30", str(len(ops))]  # sentences, substitutions
    assert re.search(rf"^\| synonym / news.txt \| 30 \| {len(ops)} \|", report, re.M)
    unjudged = read_jsonl(tmp_path / "unjudged_synonym.jsonl")
    assert len(unjudged) == min(4, len(ops))
    assert all(e["acceptable"] is None and "[[" in e["after"] for e in unjudged)
    assert {json.dumps([e["position"], e["original"], e["substitute"]]) for e in unjudged} <= {
        json.dumps([op["position"], op["original"], op["substitute"]]) for op in ops}
    assert not judgements.exists()  # nothing judged, nothing written
