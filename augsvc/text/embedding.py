"""Word-embedding substitution: replace words by near neighbours in word-vector space.

All chosen words of all samples in a call are looked up together, in a few matrix products.
Neighbours in plain word vectors are often related, not similar (slow/fast, Dogs/Cats,
three/two, tested/samples), so a neighbour must also:

- be a WordNet word of the replaced word's tagged part of speech, in the same inflection
  (plural, tense, person), and keep that tag when the new sentence is tagged again;
- not be a WordNet antonym of the word (fast/slow, rising/falling, and through the adjective
  clusters quick/slow);
- not be of the word's own family (grew/grown, run/running).

Proper names (tagged so, or capitalised inside a sentence) and numbers are never replaced
unless ``names`` / ``numbers`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from augsvc.resources import ResourceError, find_wordnet, glove_6b_50d
from augsvc.text.agreement import apply_checked
from augsvc.text.inflect import inflect
from augsvc.text.ops import TextSample, count_to_change
from augsvc.text.stopwords import stopword_set
from augsvc.text.tagging import PENN_TO_WN, tag_words
from augsvc.text.tokens import (
    Edit,
    Word,
    abbreviates,
    article_agrees,
    capitalised_inside,
    match_case,
    words,
)
from augsvc.text.vectors import DEFAULT_VECTORS, load_vectors
from augsvc.text.wordnet import WordNet, load_wordnet

__all__ = ["check_vectors", "embedding", "same_word_family"]

_SUFFIXES = ("ing", "ed", "d", "es", "s", "ly", "er", "est")
_Y_SUFFIXES = ("ies", "ied", "ier", "iest", "ily")


def _stems(word: str) -> set[str]:
    """Every base this word could be an inflection of, by the regular English suffix rules."""
    word = word.lower()
    out = {word}
    for suffix in _Y_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            out.add(word[: -len(suffix)] + "y")
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            base = word[: -len(suffix)]
            out |= {base, base + "e"}
            if len(base) >= 3 and base[-1] == base[-2]:  # running -> runn -> run
                out.add(base[:-1])
    return out


def same_word_family(a: str, b: str) -> bool:
    """A cheap inflection test: dog/dogs, line/lines, run/running, happy/happier agree."""
    return bool(_stems(a) & _stems(b))


_TAGS = frozenset({"NN", "NNS", "VB", "VBP", "VBZ", "VBD", "VBN", "VBG", "JJ", "RB"})
"""Tags whose inflection can be checked (comparatives and superlatives are left alone)."""
_NAME_TAGS = frozenset({"NNP", "NNPS"})


def _replaceable(text: str, word: Word, tag: str | None, params: Mapping[str, Any]) -> bool:
    """May ``word`` (tagged ``tag``) be replaced at all?"""
    if tag is None:
        return False
    if tag in _NAME_TAGS or capitalised_inside(text, word):
        return bool(params["names"])
    if tag == "CD":
        return bool(params["numbers"])
    return tag in _TAGS


def _fits(wn: WordNet, neighbour: str, word: str, tag: str, related: str) -> bool:
    """Is ``neighbour`` a WordNet word of the tag's part of speech, inflected as the tag says,
    not an antonym of ``word``, and as related to it as ``related`` asks? Names and numbers
    pass (they have no inflection to check)."""
    if wn.are_antonyms(word, neighbour):
        return False
    pos = PENN_TO_WN.get(tag[:2])
    if pos is None:
        return True
    if not any(inflect(wn, base, tag) == neighbour and wn.is_common(base, pos)
               for base in wn.morphy(neighbour, pos)):
        return False
    if abbreviates(neighbour, word) or abbreviates(word, neighbour):
        return False
    return related == "any" or wn.are_close(word, neighbour, pos)


def check_vectors(params: Mapping[str, Any]) -> str | None:
    """Spec-time check that the vectors and WordNet exist (they load on first use)."""
    source = params["vectors"]
    try:
        find_wordnet()
        if source == DEFAULT_VECTORS:
            glove_6b_50d()
        elif not Path(source).expanduser().is_file():
            return f"vectors file not found: {source}"
    except ResourceError as exc:
        return str(exc)
    return None


_NEAR: dict[tuple[str, int, int], dict[str, list[tuple[str, float]]]] = {}
"""(vectors, k, vocab_size) -> word -> its neighbours: words recur across batches and epochs."""


def _neighbours(source: str, queries: set[str], k: int, vocab_size: int
                ) -> dict[str, list[tuple[str, float]]]:
    """Every query's ``k`` nearest words, the ones not seen before looked up in one batch."""
    table = _NEAR.setdefault((source, k, vocab_size), {})
    if len(table) > 200_000:
        table.clear()
    missing = sorted(q for q in queries if q not in table)
    if missing:
        found = load_vectors(source).neighbours(missing, k=k, vocab_size=vocab_size)
        table.update(zip(missing, found, strict=True))
    return table


@lru_cache(maxsize=200_000)
def _fits_cached(neighbour: str, word: str, tag: str, related: str) -> bool:
    return _fits(load_wordnet(), neighbour, word, tag, related)


def embedding(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Substitute randomly chosen words by one of their nearest neighbours that pass the checks
    above (case kept); only words with such a neighbour are chosen."""
    vectors = load_vectors(params["vectors"])
    stop = stopword_set(params)
    tagged: list[tuple[TextSample, list[tuple[Word, str]]]] = []
    for sample in samples:
        found = words(sample.text)
        tagged.append((sample, [
            (w, t) for w, t in zip(found, tag_words(sample.text, found), strict=True)
            if t is not None and w.is_alpha and w.text.lower() not in stop
            and len(w.text) >= params["min_word_length"] and w.text.lower() in vectors.row
            and _replaceable(sample.text, w, t, params)]))
    near = _neighbours(params["vectors"], {w.text.lower() for _, ws in tagged for w, _ in ws},
                       params["top_k"], params["vocab_size"])
    all_edits: list[list[Edit]] = []
    all_tags: list[list[str]] = []
    for sample, usable in tagged:
        options = []
        for word, tag in usable:
            query = word.text.lower()
            candidates = [n for n, cos in near[query] if cos >= params["threshold"]
                          and n.isalpha() and len(n) >= params["min_word_length"]
                          and n not in stop and not same_word_family(n, query)
                          and _fits_cached(n, query, tag, params["related"])
                          and article_agrees(sample.text, word.start, n)]
            if candidates:
                options.append((word, tag, candidates))
        chosen = sorted(sample.rng.sample(range(len(options)),
                                          count_to_change(len(options), params)))
        edits, tags = [], []
        for i in chosen:
            word, tag, candidates = options[i]
            edits.append(Edit(word.start, word.end,
                              match_case(word.text, sample.rng.choice(candidates))))
            tags.append(tag)
        all_edits.append(edits)
        all_tags.append(tags)
    apply_checked([s for s, _ in tagged], all_edits, all_tags, "embedding",
                  params["context_threshold"])
