"""Word-embedding substitution: replace words by near neighbours in word-vector space.

All chosen words of all samples in a call are looked up together, in a few matrix products.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from augsvc.resources import ResourceError, glove_6b_50d
from augsvc.text.ops import TextSample, count_to_change
from augsvc.text.stopwords import stopword_set
from augsvc.text.tokens import Edit, Word, apply_edits, match_case, words
from augsvc.text.vectors import DEFAULT_VECTORS, load_vectors

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


def check_vectors(params: Mapping[str, Any]) -> str | None:
    """Spec-time check that the vectors exist (they load on first use)."""
    source = params["vectors"]
    try:
        if source == DEFAULT_VECTORS:
            glove_6b_50d()
        elif not Path(source).expanduser().is_file():
            return f"vectors file not found: {source}"
    except ResourceError as exc:
        return str(exc)
    return None


def embedding(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Substitute randomly chosen words by one of their nearest neighbours (case kept)."""
    vectors = load_vectors(params["vectors"])
    stop = stopword_set(params)
    plans: list[tuple[TextSample, list[Word]]] = []
    for sample in samples:
        usable = [w for w in words(sample.text) if w.is_alpha and w.text.lower() not in stop
                  and len(w.text) >= params["min_word_length"] and w.text.lower() in vectors.row]
        count = count_to_change(len(usable), params)
        if count:
            plans.append((sample, [usable[i] for i in sorted(sample.rng.sample(range(len(usable)),
                                                                            count))]))
    queries = sorted({w.text.lower() for _, chosen in plans for w in chosen})
    found = vectors.neighbours(queries, k=params["top_k"], vocab_size=params["vocab_size"])
    options = {
        q: [n for n, cos in near if cos >= params["threshold"] and n.isalpha()
            and len(n) >= params["min_word_length"] and n not in stop
            and not same_word_family(n, q)]
        for q, near in zip(queries, found, strict=True)
    }
    for sample, chosen in plans:
        edits = []
        for word in chosen:
            candidates = options[word.text.lower()]
            if not candidates:
                continue
            new = match_case(word.text, sample.rng.choice(candidates))
            edits.append(Edit(word.start, word.end, new))
            sample.ops.append({"op": "embedding", "position": word.start, "original": word.text,
                               "substitute": new})
        sample.text = apply_edits(sample.text, edits)
