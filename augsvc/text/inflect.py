"""Regular English inflection, checked against WordNet's morphology.

A substitute must agree with the word it replaces (plural nouns, verb tense and person). Forms
are built by the regular spelling rules and accepted only if WordNet's morphy maps them back to
the lemma; lemmas with irregular forms (run/ran, goose/geese) use the exception lists, and where
the right irregular form cannot be known (past tense vs participle) the caller skips the word.
"""

from __future__ import annotations

from augsvc.text.wordnet import WordNet

__all__ = ["inflect"]

_VOWELS = set("aeiou")


def _double_final(word: str) -> bool:
    """stop -> stopp(ed): one vowel before a final consonant, in a short word."""
    if len(word) < 3 or word[-1] in "aeiouwxy" or word[-2] not in _VOWELS or word[-3] in _VOWELS:
        return False
    return sum(1 for i, c in enumerate(word) if c in _VOWELS and (i == 0 or word[i - 1]
                                                                  not in _VOWELS)) == 1


def _plural_s(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        return word[:-1] + "ies"
    return word + "s"


def _past(word: str) -> str:
    if word.endswith("e"):
        return word + "d"
    if word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        return word[:-1] + "ied"
    return word + word[-1] + "ed" if _double_final(word) else word + "ed"


def _gerund(word: str) -> str:
    if word.endswith("ie"):
        return word[:-2] + "ying"
    if word.endswith("e") and not word.endswith(("ee", "ye", "oe")) and len(word) > 2:
        return word[:-1] + "ing"
    return word + word[-1] + "ing" if _double_final(word) else word + "ing"


def inflect(wn: WordNet, lemma: str, tag: str) -> str | None:
    """``lemma`` inflected for the Penn Treebank ``tag`` of the word it replaces, or None.

    Nouns inflect their last word ("domestic dog" -> "domestic dogs"), verbs their first
    ("climb up" -> "climbed up"). Comparatives and superlatives are not attempted.
    """
    if tag in ("NN", "NNP", "VB", "VBP", "JJ", "RB"):
        return lemma
    words = lemma.split(" ")
    if tag in ("NNS", "NNPS"):
        head, pos, at = words[-1], "n", len(words) - 1
    elif tag in ("VBZ", "VBD", "VBN", "VBG"):
        head, pos, at = words[0], "v", 0
    else:
        return None
    irregular = wn.irregular_forms(head, pos)
    if pos == "n":
        form = irregular[0] if len(irregular) == 1 else None if irregular else _plural_s(head)
    elif tag == "VBZ":
        form = _THIRD_PERSON.get(head) or (head + "es" if head.endswith("o") else _plural_s(head))
    else:
        form = (_gerund if tag == "VBG" else _past)(head)
        if irregular and tag != "VBG" and form not in irregular:
            return None  # ran or run? the exception list does not say which tense
    if form is None or head not in wn.morphy(form, pos):
        return None
    words[at] = form
    return " ".join(words)


_THIRD_PERSON = {"be": "is", "have": "has"}
