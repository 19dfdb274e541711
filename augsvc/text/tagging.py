"""Part-of-speech tags in context, and the check that a substitute keeps its word's tag.

Tags come from textblob's PatternTagger (its lexicon ships in the wheel; NLTK's taggers need a
download). Substitution transforms tag the sentence, choose substitutes, tag the new sentence,
and keep only the substitutes the tagger reads with the original word's tag there.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from augsvc.text.tokens import Edit, Word, apply_edits, words

__all__ = ["PENN_TO_WN", "keep_tags", "tag_words"]

PENN_TO_WN = {"NN": "n", "VB": "v", "JJ": "a", "RB": "r"}
"""The first two letters of a Penn Treebank tag -> WordNet's part of speech."""


@lru_cache(maxsize=1)
def _tagger() -> Any:
    from textblob.en.taggers import PatternTagger

    return PatternTagger()


def tag_words(text: str, found: list[Word]) -> list[str | None]:
    """Penn Treebank tags for ``found`` (the words of ``text``), None where tokens disagree.

    ALL-CAPS words are tagged in lower case (the tagger reads "WALKS" as a proper noun); the
    text keeps its length, so offsets still match.
    """
    chars = list(text)
    for w in found:
        if len(w.text) > 1 and w.text.isupper():
            chars[w.start:w.end] = w.text.lower()
    tagged_text = "".join(chars)
    tags: list[str | None] = [None] * len(found)
    by_start = {w.start: i for i, w in enumerate(found)}
    pos = 0
    for token, tag in _tagger().tag(tagged_text):
        at = tagged_text.find(token, pos)
        if at < 0:
            continue
        pos = at + len(token)
        i = by_start.get(at)
        if i is not None and found[i].end == pos:
            tags[i] = tag
    return tags


def _head(new: str, tag: str) -> int:
    """Which word of a (possibly multi-word) substitute carries the tag: nouns end on theirs."""
    return len(new.split(" ")) - 1 if tag.startswith("NN") else 0


def _common(tag: str | None) -> str | None:
    """Proper and common nouns agree (the tagger calls "the Detectives" NNP, "Investigators" NNS)."""
    return {"NNP": "NN", "NNPS": "NNS"}.get(tag or "", tag)


def keep_tags(text: str, edits: Sequence[Edit], tags: Sequence[str]) -> list[bool]:
    """For each edit (``tags[k]`` is the tag of the word edit ``k`` replaces): does the new text,
    tagged in context, give the substitute the same tag (proper and common nouns alike)? Edits
    must not overlap."""
    order = sorted(range(len(edits)), key=lambda k: edits[k].start)
    new_text = apply_edits(text, edits)
    found = words(new_text)
    new_tags = tag_words(new_text, found)
    tag_at = {w.start: t for w, t in zip(found, new_tags, strict=True)}
    keep = [False] * len(edits)
    shift = 0
    for k in order:
        edit = edits[k]
        start = edit.start + shift
        shift += len(edit.new) - (edit.end - edit.start)
        parts = edit.new.split(" ")
        head = _head(edit.new, tags[k])
        head_start = start + sum(len(p) + 1 for p in parts[:head])
        keep[k] = _common(tag_at.get(head_start)) == _common(tags[k])
    return keep
