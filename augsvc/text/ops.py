"""Cheap word- and character-level text operations (EDA-style swap and deletion, keyboard typos).

Each operation edits a batch of samples in place; every random choice comes from the sample's
own ``random.Random``, so results depend only on (spec, seed, index).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from augsvc.text.tokens import Edit, Word, apply_edits, words

__all__ = ["KEYBOARD_NEIGHBOURS", "OCR_CONFUSIONS", "TextSample", "check_amount", "count_to_change",
           "keyboard", "ocr",
           "random_deletion",
           "random_swap"]


@dataclass
class TextSample:
    """One text moving through a pipeline, with its random stream and the record of edits."""

    text: str
    rng: random.Random
    index: int
    ops: list[dict[str, Any]] = field(default_factory=list)


def check_amount(params: Mapping[str, Any]) -> str | None:
    """Spec-time rule shared by every transform with aug_min/aug_max."""
    if params["aug_min"] > params["aug_max"]:
        return f"aug_min ({params['aug_min']}) must be <= aug_max ({params['aug_max']})"
    return None


def count_to_change(n_words: int, params: Mapping[str, Any]) -> int:
    """How many of ``n_words`` words to change: aug_p of them, clamped to [aug_min, aug_max]."""
    wanted = max(params["aug_min"], min(params["aug_max"], int(params["aug_p"] * n_words)))
    return min(wanted, n_words)


def _record(sample: TextSample, op: str, word: Word, substitute: str) -> None:
    sample.ops.append({"op": op, "position": word.start, "original": word.text,
                       "substitute": substitute})


def random_swap(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Swap the places of randomly chosen pairs of words (EDA's random swap)."""
    for sample in samples:
        found = words(sample.text)
        if len(found) < 2:
            continue
        slots = [w.text for w in found]
        for _ in range(count_to_change(len(found), params)):
            a, b = sample.rng.sample(range(len(found)), 2)
            slots[a], slots[b] = slots[b], slots[a]
        edits = [Edit(w.start, w.end, new) for w, new in zip(found, slots, strict=True)
                 if new != w.text]
        for w, new in zip(found, slots, strict=True):
            if new != w.text:
                _record(sample, "random_swap", w, new)
        sample.text = apply_edits(sample.text, edits)


def random_deletion(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Delete randomly chosen words, never all of them (EDA's random deletion)."""
    for sample in samples:
        found = words(sample.text)
        if len(found) < 2:
            continue
        count = min(count_to_change(len(found), params), len(found) - 1)
        chosen = sorted(sample.rng.sample(range(len(found)), count))
        for i in chosen:
            _record(sample, "random_deletion", found[i], "")
        sample.text = apply_edits(sample.text, [Edit(found[i].start, found[i].end, "")
                                                for i in chosen])


_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    pos = {c: (r, i) for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
    out = {}
    for c, (r, i) in pos.items():
        near = [d for d, (r2, i2) in pos.items() if d != c and abs(r2 - r) <= 1
                and abs((i2 + 0.5 * r2) - (i + 0.5 * r)) <= 1.0]
        out[c] = "".join(sorted(near))
    return out


KEYBOARD_NEIGHBOURS: dict[str, str] = _neighbours()
"""QWERTY keys and the keys next to them (rows offset by half a key)."""

# Upper-case letters become upper-case neighbours, so a typo keeps the word's case.
_KEYBOARD_BOTH_CASES: dict[str, str] = {**KEYBOARD_NEIGHBOURS, **{
    k.upper(): v.upper() for k, v in KEYBOARD_NEIGHBOURS.items() if k.isalpha()}}


def _misspell(samples: list[TextSample], params: Mapping[str, Any], op: str,
              spots: Callable[[str], list[tuple[int, str]]],
              replacements: Mapping[str, Sequence[str]]) -> None:
    """Change one spot in each of several random words: ``spots(word)`` lists (offset, text)
    places that can change, ``replacements[text]`` what each may become."""
    for sample in samples:
        found = [w for w in words(sample.text) if len(w.text) >= params["min_word_length"]
                 and spots(w.text)]
        chosen = sorted(sample.rng.sample(range(len(found)), count_to_change(len(found), params)))
        edits = []
        for i in chosen:
            word = found[i]
            at, source = sample.rng.choice(spots(word.text))
            new = word.text[:at] + sample.rng.choice(replacements[source]) + \
                word.text[at + len(source):]
            _record(sample, op, word, new)
            edits.append(Edit(word.start, word.end, new))
        sample.text = apply_edits(sample.text, edits)


def _keyboard_spots(text: str) -> list[tuple[int, str]]:
    return [(k, c) for k, c in enumerate(text) if c in _KEYBOARD_BOTH_CASES]


def keyboard(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Replace one letter in each of several words by a neighbouring key (case kept)."""
    _misspell(samples, params, "keyboard", _keyboard_spots, _KEYBOARD_BOTH_CASES)


OCR_CONFUSIONS: dict[str, tuple[str, ...]] = {
    "0": ("o", "O", "D"), "o": ("0",), "O": ("0", "D"), "1": ("l", "I"), "l": ("1", "I"),
    "I": ("1", "l"), "5": ("S", "s"), "S": ("5",), "s": ("5",), "8": ("B",), "B": ("8",),
    "2": ("Z",), "Z": ("2",), "6": ("b",), "b": ("6",), "g": ("9", "q"), "9": ("g",),
    "q": ("g",), "e": ("c",), "c": ("e",), "m": ("rn",), "rn": ("m",), "u": ("v",), "v": ("u",),
    "h": ("b",), "n": ("h",), "a": ("o",), "t": ("f",), "f": ("t",),
}
"""Characters (or pairs) an OCR engine confuses, and what it reads instead."""


def ocr(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """One OCR-style misreading (0/o, 1/l, rn/m, ...) in each of several random words."""
    _misspell(samples, params, "ocr", _ocr_spots, OCR_CONFUSIONS)


def _ocr_spots(text: str) -> list[tuple[int, str]]:
    """(offset, confusable) pairs in ``text``; two-letter confusions ("rn") included."""
    spots = [(k, c) for k, c in enumerate(text) if c in OCR_CONFUSIONS]
    return spots + [(k, text[k:k + 2]) for k in range(len(text) - 1) if text[k:k + 2] in
                    OCR_CONFUSIONS]
