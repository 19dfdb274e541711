"""Part-of-speech tags in context.

Tags come from textblob's PatternTagger (its lexicon ships in the wheel; NLTK's taggers need a
download).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from augsvc.text.tokens import Word

__all__ = ["PENN_TO_WN", "tag_words"]

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
