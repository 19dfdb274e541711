"""Does a substitute fit where it goes? The checks synonym and embedding run on their edits.

Both transforms choose substitutes, then check all edits of a batch together:

- **tag agreement:** the new sentence is tagged again, and the substitute must get the original
  word's tag there (proper and common nouns alike);
- **meaning in context** (``context_threshold``, optional): the last-layer vectors of the
  sentence encoder (all-MiniLM-L6-v2) for the word in its sentence and for the substitute in the
  new sentence must have at least that cosine. On the project's judged sample (see the quality
  benchmark) this is the signal that best separates kept from broken meaning (a ranking AUC of
  0.75, where the word vectors' own similarity scored 0.63).

An edit that fails is undone; the others stay.
"""

from __future__ import annotations

from collections.abc import Sequence

from augsvc.text.ops import TextSample
from augsvc.text.tagging import tag_words
from augsvc.text.tokens import Edit, apply_edits, words

__all__ = ["apply_checked", "check_edits", "keep_tags", "new_spans"]


def new_spans(edits: Sequence[Edit]) -> list[tuple[int, int]]:
    """Where each edit's new text lies once all (non-overlapping) edits are applied."""
    shift_at: dict[int, int] = {}
    shift = 0
    for k in sorted(range(len(edits)), key=lambda k: edits[k].start):
        shift_at[k] = shift
        shift += len(edits[k].new) - (edits[k].end - edits[k].start)
    return [(e.start + shift_at[k], e.start + shift_at[k] + len(e.new)) for k, e in enumerate(edits)]


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
    new_text = apply_edits(text, edits)
    found = words(new_text)
    tag_at = {w.start: t for w, t in zip(found, tag_words(new_text, found), strict=True)}
    keep = []
    for edit, tag, (start, _) in zip(edits, tags, new_spans(edits), strict=True):
        parts = edit.new.split(" ")
        head_start = start + sum(len(p) + 1 for p in parts[:_head(edit.new, tag)])
        keep.append(_common(tag_at.get(head_start)) == _common(tag))
    return keep


_WINDOW = 300
"""Characters of context on each side of an edit that the encoder sees (about 50 words; its
limit is 256 tokens, so a long text is looked at in windows)."""


def _windows(text: str, edits: Sequence[Edit]) -> list[list[int]]:
    """Edit indices grouped into windows: the whole text at once when it is short, else one
    window per edit."""
    if len(text) <= 2 * _WINDOW:
        return [list(range(len(edits)))]
    return [[m] for m in range(len(edits))]


def check_edits(texts: Sequence[str], edits: Sequence[Sequence[Edit]],
                tags: Sequence[Sequence[str]], context_threshold: float | None
                ) -> list[list[bool]]:
    """Which edits of each text pass both checks (the context check only when a threshold is
    given; its encoder runs once over every text of the batch that still has an edit)."""
    keep = [keep_tags(t, e, g) if e else [] for t, e, g in zip(texts, edits, tags, strict=True)]
    if context_threshold is None:
        return keep
    pairs: list[tuple[str, str]] = []
    spans: list[list[tuple[tuple[int, int], tuple[int, int]]]] = []
    owners: list[tuple[int, list[int]]] = []
    for k, verdicts in enumerate(keep):
        if not any(verdicts):
            continue
        for members in _windows(texts[k], edits[k]):
            lo = max(0, min(edits[k][m].start for m in members) - _WINDOW)
            hi = max(edits[k][m].end for m in members) + _WINDOW
            chosen = [edits[k][m] for m in members]
            shifted = [Edit(e.start - lo, e.end - lo, e.new) for e in chosen]
            window = texts[k][lo:hi]
            pairs.append((window, apply_edits(window, shifted)))
            spans.append(list(zip([(e.start, e.end) for e in shifted], new_spans(shifted),
                                  strict=True)))
            owners.append((k, members))
    if not pairs:
        return keep
    from augsvc.text.similarity import load_encoder

    for (k, members), row in zip(owners, load_encoder().word_similarity(pairs, spans),
                                 strict=True):
        for m, cos in zip(members, row, strict=True):
            keep[k][m] = keep[k][m] and cos >= context_threshold
    return keep


def apply_checked(samples: Sequence[TextSample], edits: Sequence[Sequence[Edit]],
                  tags: Sequence[Sequence[str]], op: str, context_threshold: float | None) -> None:
    """Apply to each sample the edits that pass ``check_edits`` and record them as ``op``."""
    verdicts = check_edits([s.text for s in samples], edits, tags, context_threshold)
    for sample, chosen, keep in zip(samples, edits, verdicts, strict=True):
        kept = [e for e, ok in zip(chosen, keep, strict=True) if ok]
        for e in kept:
            sample.ops.append({"op": op, "position": e.start,
                               "original": sample.text[e.start:e.end], "substitute": e.new})
        sample.text = apply_edits(sample.text, kept)
