"""WordNet synonym substitution: choose the word's sense first, then a frequent synonym of it.

For each content word (tagged in context by ``augsvc.text.tagging``):

1. **Sense.** The word's senses in its tagged part of speech are weighed by how often WordNet's
   SemCor counts saw the word in each (``index.sense``). Only dominant senses qualify: those
   tagged at least half as often as the most frequent one; a word never tagged qualifies only
   when it has a single sense. Among the qualifying senses, the one whose gloss, examples and
   synonyms share the most words with the sentence wins (simplified Lesk), then the more frequent.
2. **Substitutes.** The other lemmas of that sense, most often tagged first, without proper
   names (unless the word is one), stopwords, words of the same family, and anything outside the
   ``vocab_size`` most frequent words of GloVe 6B (which drops rare, archaic and misspelt forms).
3. **Agreement.** A substitute is inflected like the original (plural, tense, person) with
   WordNet's exception lists and the regular rules; the form must itself be a frequent word.
   The new sentence is tagged again, and a substitute whose tag changed there is undone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from augsvc.resources import ResourceError, find_wordnet, glove_6b_50d
from augsvc.text.agreement import apply_checked
from augsvc.text.embedding import same_word_family
from augsvc.text.inflect import inflect
from augsvc.text.ops import TextSample, count_to_change
from augsvc.text.stopwords import STOPWORDS, stopword_set
from augsvc.text.tagging import PENN_TO_WN, tag_words
from augsvc.text.tokens import (
    Edit,
    Word,
    abbreviates,
    apply_edits,
    article_agrees,
    capitalised_inside,
    match_case,
    words,
)
from augsvc.text.vectors import DEFAULT_VECTORS, load_vectors
from augsvc.text.wordnet import WordNet, load_wordnet

__all__ = ["check_synonym", "random_insertion", "sense_lemmas", "synonym", "tag_words"]

_GLOSS_WORD = re.compile(r"[a-z]+")


_FIXED = frozenset({"according", "including", "regarding", "concerning", "following", "given",
                    "provided", "despite", "considering", "excluding", "pending"})
"""Words that open a fixed phrase ("according to"), whatever the tagger says they are."""


def _in_phrase(wn: WordNet, found: list[Word], i: int) -> bool:
    """Is word ``i`` part of a WordNet multi-word entry with its neighbour ("bring about",
    "talk show", "go on")? Such words are left alone: their synonyms break the phrase."""
    def entry(a: Word, b: Word) -> bool:
        return any(f"{x} {y}" in wn.multi_word
                   for x in wn.bases(a.text) for y in wn.bases(b.text))

    return ((i > 0 and entry(found[i - 1], found[i]))
            or (i + 1 < len(found) and entry(found[i], found[i + 1])))


def _common_tag(wn: WordNet, word: str, tag: str) -> str:
    """The tagger calls capitalised plurals NNP ("the Detectives"): WordNet says the number."""
    if not tag.startswith("NNP"):
        return tag
    return "NN" if word.lower() in wn.morphy(word, "n") else "NNS"


def _content_words(text: str, found: list[Word], stop: frozenset[str]
                   ) -> list[tuple[Word, str]]:
    """(word, Penn tag) for the alphabetic, tagged, non-stopword words of ``text``."""
    return [(word, tag) for word, tag in zip(found, tag_words(text, found), strict=True)
            if tag is not None and word.is_alpha and word.text.lower() not in stop]


def _is_word_lemma(lemma: str) -> bool:
    """Letters, with spaces or hyphens between them ("climb up", "well-chosen")."""
    return lemma.replace(" ", "").replace("-", "").isalpha()


def _rank() -> dict[str, int]:
    """Word -> frequency rank in GloVe 6B (0 is the most frequent)."""
    return load_vectors(DEFAULT_VECTORS).row


def _frequent(form: str, vocab_size: int) -> bool:
    rank = _rank()
    return all(rank.get(part, vocab_size) < vocab_size for part in re.split(r"[ -]", form.lower()))


@lru_cache(maxsize=100_000)
def _similarity(a: str, b: str, vocab_size: int) -> float:
    """GloVe cosine of two words or phrases (a phrase is the mean of its words); both frequent."""
    vectors = load_vectors(DEFAULT_VECTORS)
    unit = vectors.unit(vocab_size)

    def vector(text: str) -> Any:
        return unit[[vectors.row[part] for part in re.split(r"[ -]", text.lower())]].mean(0)

    x, y = vector(a), vector(b)
    return float(x @ y / max(float(x.norm() * y.norm()), 1e-12))




@lru_cache(maxsize=65536)
def _gloss_words(key: str) -> frozenset[str]:
    """The lower-case words of a synset's gloss, examples and lemmas (for the Lesk overlap)."""
    gloss, lemmas = load_wordnet().glosses[key]
    return frozenset(_GLOSS_WORD.findall(" ".join([gloss, *lemmas]).lower())) - STOPWORDS


def _choose_sense(wn: WordNet, word: str, pos: str, context: frozenset[str]
                  ) -> tuple[str, str] | None:
    """(base form, synset key) of the sense ``word`` most likely has here, or None if unsure."""
    senses = [(base, key, wn.sense_count(base, key))
              for base in wn.morphy(word, pos) for key in wn.senses.get((base, pos), [])]
    if not senses:
        return None
    top = max(count for _, _, count in senses)
    if top == 0:
        return senses[0][:2] if len(senses) == 1 else None
    dominant = [s for s in senses if 2 * s[2] >= top]
    base, key, _ = max(dominant, key=lambda s: (len(_gloss_words(s[1]) & context), s[2]))
    return base, key


def sense_lemmas(wn: WordNet, word: str, pos: str, context: frozenset[str], *, proper: bool,
                 vocab_size: int, stop: frozenset[str]) -> list[str]:
    """Uninflected synonyms of ``word`` in its chosen sense, most often tagged first."""
    chosen = _choose_sense(wn, word, pos, context)
    if chosen is None:
        return []
    base, key = chosen
    out = [lemma for lemma in wn.glosses[key][1]
           if lemma.lower() != base and lemma.lower() not in stop and _is_word_lemma(lemma)
           and wn.sense_count(lemma, key) > 0
           and not same_word_family(lemma.lower(), base)
           and (proper or lemma == lemma.lower()) and _frequent(lemma, vocab_size)
           and not abbreviates(lemma, base) and not abbreviates(base, lemma)
           and not wn.are_antonyms(base, lemma)]
    return sorted(out, key=lambda lemma: -wn.sense_count(lemma, key))


def _context(found: list[Word], wn: WordNet) -> frozenset[str]:
    """The sentence's words and their base forms, for the Lesk overlap."""
    out: set[str] = set()
    for w in found:
        if w.is_alpha and w.text.lower() not in STOPWORDS:
            out |= wn.bases(w.text)
    return frozenset(out)


def _choices(wn: WordNet, word: Word, tag: str, text: str, context: frozenset[str],
             params: Mapping[str, Any], stop: frozenset[str]) -> list[str]:
    """Inflected substitutes for ``word`` (tagged ``tag``) in ``text``."""
    pos = PENN_TO_WN.get(tag[:2])
    if pos is None or word.text.lower() in _FIXED or (
            not params["names"] and (tag.startswith("NNP") or capitalised_inside(text, word))):
        return []
    if not _frequent(word.text, params["vocab_size"]):
        return []
    following = text[word.end:word.end + 64].lstrip().lower()
    number = _common_tag(wn, word.text, tag)
    out: list[str] = []
    for lemma in sense_lemmas(wn, word.text, pos, context - {word.text.lower()},
                              proper=tag.startswith("NNP"), vocab_size=params["vocab_size"],
                              stop=stop):
        if " " in lemma and not params["multi_word"]:
            continue
        form = inflect(wn, lemma, number)
        if (form is None or form.lower() == word.text.lower() or form in out
                or not article_agrees(text, word.start, form)
                or not _frequent(form, params["vocab_size"])
                or _similarity(word.text.lower(), form.lower(), params["vocab_size"])
                < params["min_similarity"]):
            continue
        if " " in form and following.startswith(form.split(" ", 1)[1].lower()):
            continue  # "climbed" -> "climbed up" before "up trees" would repeat "up"
        out.append(form)
    return out


def check_synonym(params: Mapping[str, Any]) -> str | None:
    """Spec-time check that WordNet and the GloVe word ranks are installed (both load lazily)."""
    try:
        find_wordnet()
        glove_6b_50d()
    except ResourceError as exc:
        return str(exc)
    return None


def synonym(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Replace randomly chosen content words by a synonym of their sense here, inflected to agree
    (case kept); substitutes that fail ``augsvc.text.agreement``'s checks are undone."""
    wn = load_wordnet()
    stop = stopword_set(params)
    all_edits: list[list[Edit]] = []
    all_tags: list[list[str]] = []
    for sample in samples:
        found = words(sample.text)
        context = _context(found, wn)
        usable = []
        index = {w.start: i for i, w in enumerate(found)}
        for word, tag in _content_words(sample.text, found, stop):
            if _in_phrase(wn, found, index[word.start]):
                continue
            options = _choices(wn, word, tag, sample.text, context, params, stop)
            if options:
                usable.append((word, tag, options))
        chosen = sorted(sample.rng.sample(range(len(usable)), count_to_change(len(usable), params)))
        edits, tags = [], []
        for i in chosen:
            word, tag, options = usable[i]
            new = match_case(word.text, sample.rng.choice(options[: params["top_n"]]))
            edits.append(Edit(word.start, word.end, new))
            tags.append(_common_tag(wn, word.text, tag))
        all_edits.append(edits)
        all_tags.append(tags)
    apply_checked(samples, all_edits, all_tags, "synonym", params["context_threshold"])


def random_insertion(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Insert a synonym (of its sense in this sentence) of a random content word at a random word
    boundary (EDA random insertion)."""
    wn = load_wordnet()
    for sample in samples:
        found = words(sample.text)
        context = _context(found, wn)
        sources = []
        for word, tag in _content_words(sample.text, found, STOPWORDS):
            pos = PENN_TO_WN.get(tag[:2])
            lemmas = [] if pos is None else sense_lemmas(
                wn, word.text, pos, context - {word.text.lower()}, proper=False,
                vocab_size=params["vocab_size"], stop=STOPWORDS)
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
