"""Words as spans of the original text, so an edit changes only the words it touches.

Everything between words (whitespace, newlines, punctuation, emoji) is kept byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Edit", "Word", "abbreviates", "apply_edits", "article_agrees", "capitalised_inside",
           "match_case", "words"]

# A word: letters/digits (any script) joined by inner apostrophes or hyphens ("don't", "x-ray").
_WORD = re.compile(r"\w+(?:['’-]\w+)*", re.UNICODE)


@dataclass(frozen=True)
class Word:
    """A word of the text: ``text[start:end] == word``."""

    start: int
    end: int
    text: str

    @property
    def is_alpha(self) -> bool:
        """Letters only (after removing inner apostrophes/hyphens): no digits or underscores."""
        return self.text.replace("'", "").replace("’", "").replace("-", "").isalpha()


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:end]`` with ``new`` (``new == ""`` deletes)."""

    start: int
    end: int
    new: str


def words(text: str) -> list[Word]:
    """The words of ``text`` in order."""
    return [Word(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


def match_case(original: str, substitute: str) -> str:
    """Give ``substitute`` the casing pattern of ``original`` (UPPER, Title or lower)."""
    if len(original) > 1 and original.isupper():
        return substitute.upper()
    if original[:1].isupper():
        return substitute[:1].upper() + substitute[1:]
    if original.islower():
        return substitute.lower()
    return substitute


def capitalised_inside(text: str, word: Word) -> bool:
    """Capitalised but not first in its sentence: most likely part of a name or title."""
    before = text[:word.start].rstrip(" \"'(")
    return word.text[:1].isupper() and bool(before) and before[-1] not in ".!?:\n"


def abbreviates(short: str, word: str) -> bool:
    """hrs/hours, Sept/September, kms/kilometres: a short form whose letters run in order
    through the word, from its first letter."""
    short, word = short.lower(), word.lower()
    if len(short) > 4 or len(short) >= len(word) or short[:1] != word[:1]:
        return False
    letters = iter(word)
    return all(ch in letters for ch in short)


_ARTICLE = re.compile(r"\b(a|an)\s+$", re.IGNORECASE)
_AN_EXCEPTIONS = ("uni", "use", "usu", "uti", "ure", "eu", "one", "once")
_SILENT_H = ("hour", "honest", "honor", "honour", "heir")


def article_agrees(text: str, start: int, substitute: str) -> bool:
    """Would ``substitute``, written at ``start``, agree with an "a"/"an" just before it?
    (a sick woman -> an ill woman is refused; spelling rules, not pronunciation.)"""
    found = _ARTICLE.search(text[max(0, start - 4):start])
    if found is None:
        return True
    word = substitute.lower()
    vowel = (word[:1] in "aeiou" and not word.startswith(_AN_EXCEPTIONS)) or word.startswith(_SILENT_H)
    return (found.group(1).lower() == "an") == vowel


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Apply non-overlapping edits; deleting a word also removes one adjacent space."""
    out: list[str] = []
    pos = 0
    for edit in sorted(edits, key=lambda e: e.start):
        if edit.start < pos:
            raise ValueError(f"overlapping edits at {edit.start}")
        start, end = edit.start, edit.end
        if not edit.new:  # a deleted word takes one neighbouring space with it
            if end < len(text) and text[end] == " " and (start == 0 or text[start - 1] in " \n"):
                end += 1
            elif start > pos and text[start - 1] == " ":
                start -= 1
        out.append(text[pos:start])
        out.append(edit.new)
        pos = end
    out.append(text[pos:])
    return "".join(out)
