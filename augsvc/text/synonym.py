"""WordNet synonym substitution, by part of speech, with the substitute inflected to agree.

Parts of speech come from textblob's PatternTagger (its lexicon ships in the wheel). A word is
replaced only by a lemma from one of its own synsets for that part of speech, inflected like the
original (plural, tense, person); words whose agreement cannot be kept are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from augsvc.resources import ResourceError, find_wordnet
from augsvc.text.embedding import same_word_family
from augsvc.text.inflect import inflect
from augsvc.text.ops import TextSample, count_to_change
from augsvc.text.stopwords import STOPWORDS, stopword_set
from augsvc.text.tokens import Edit, Word, apply_edits, match_case, words
from augsvc.text.wordnet import WordNet, load_wordnet

__all__ = ["check_synonym", "synonym", "tag_words"]

_PENN_TO_WN = {"NN": "n", "VB": "v", "JJ": "a", "RB": "r"}


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


def _content_words(text: str, found: list[Word], stop: frozenset[str]
                   ) -> list[tuple[Word, str]]:
    """(word, Penn tag) for the alphabetic, tagged, non-stopword words of ``text``."""
    return [(word, tag) for word, tag in zip(found, tag_words(text, found), strict=True)
            if tag is not None and word.is_alpha and word.text.lower() not in stop]


def _is_word_lemma(lemma: str) -> bool:
    """Letters, with spaces or hyphens between them ("climb up", "well-chosen")."""
    return lemma.replace(" ", "").replace("-", "").isalpha()


def _choices(wn: WordNet, word: str, tag: str, after: str, stop: frozenset[str]) -> list[str]:
    """Inflected substitutes for ``word`` (tagged ``tag``; ``after`` is the text that follows)."""
    pos = _PENN_TO_WN.get(tag[:2])
    if pos is None:
        return []
    proper = tag.startswith("NNP")
    following = after.lstrip().lower()
    out: list[str] = []
    for base in wn.morphy(word, pos):
        for lemma in wn.synonyms.get((base, pos), []):
            if (lemma.lower() in stop or same_word_family(lemma.lower(), base)
                    or not _is_word_lemma(lemma)
                    or (not proper and lemma != lemma.lower())):
                continue
            form = inflect(wn, lemma, tag)
            if form is None or form.lower() == word.lower() or form in out:
                continue
            if " " in form and following.startswith(form.split(" ", 1)[1].lower()):
                continue  # "climbed" -> "climbed up" before "up trees" would repeat "up"
            out.append(form)
        if out:
            break
    return out


def check_synonym(params: Mapping[str, Any]) -> str | None:
    """Spec-time check that WordNet is installed (it loads on first use)."""
    try:
        find_wordnet()
    except ResourceError as exc:
        return str(exc)
    return None


def synonym(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Replace randomly chosen content words by an inflected WordNet synonym (case kept)."""
    wn = load_wordnet()
    stop = stopword_set(params)
    for sample in samples:
        usable = []
        for word, tag in _content_words(sample.text, words(sample.text), stop):
            options = _choices(wn, word.text, tag, sample.text[word.end:word.end + 64], stop)
            if not params["multi_word"]:
                options = [o for o in options if " " not in o]
            if options:
                usable.append((word, options))
        chosen = sorted(sample.rng.sample(range(len(usable)), count_to_change(len(usable), params)))
        edits = []
        for i in chosen:
            word, options = usable[i]
            new = match_case(word.text, sample.rng.choice(options[: params["top_n"]]))
            edits.append(Edit(word.start, word.end, new))
            sample.ops.append({"op": "synonym", "position": word.start, "original": word.text,
                               "substitute": new})
        sample.text = apply_edits(sample.text, edits)


def random_insertion(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Insert a WordNet synonym of a random content word at a random word boundary (EDA)."""
    wn = load_wordnet()
    for sample in samples:
        found = words(sample.text)
        sources = []
        for word, tag in _content_words(sample.text, found, STOPWORDS):
            pos = _PENN_TO_WN.get(tag[:2])
            lemmas = [] if pos is None else [
                lemma for base in wn.morphy(word.text, pos) for lemma in wn.synonyms[(base, pos)]
                if lemma == lemma.lower() and _is_word_lemma(lemma)]
            if lemmas:
                sources.append((word, lemmas[: params["top_n"]]))
        if not sources:
            continue
        edits = []
        spots = sorted({w.start for w in found})
        for _ in range(count_to_change(len(found), params)):
            word, lemmas = sample.rng.choice(sources)
            new = sample.rng.choice(lemmas)
            at = sample.rng.choice(spots)
            edits.append(Edit(at, at, new + " "))
            sample.ops.append({"op": "random_insertion", "position": at, "original": "",
                               "substitute": new, "synonym_of": word.text})
        sample.text = apply_edits(sample.text, edits)
