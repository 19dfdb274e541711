"""The text transforms: one registry entry each, in the same spec format as images."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from augsvc.params import Param
from augsvc.spec import TransformInfo
from augsvc.text import ops
from augsvc.text.contextual import contextual
from augsvc.text.embedding import check_vectors, embedding
from augsvc.text.ops import TextSample
from augsvc.text.synonym import check_synonym, random_insertion, synonym
from augsvc.text.vectors import DEFAULT_VECTORS

__all__ = ["TEXT_GROUPS", "TEXT_TRANSFORMS", "TextTransformInfo", "list_text_transforms"]

TextOp = Callable[[list[TextSample], Mapping[str, Any]], None]


@dataclass(frozen=True)
class TextTransformInfo(TransformInfo):
    """A text transform: schema plus the function that edits a batch of samples in place."""

    run: TextOp = ops.random_swap


_VOCAB_SIZE = Param("vocab_size", "int", 50000, "substitutes (as written, inflected) must be among "
                    "the N most frequent words of GloVe 6B: no rare, archaic or made-up forms",
                    low=1000, high=400000)


def _context(default: float | None) -> Param:
    return Param("context_threshold", "float", default, "minimum cosine between the sentence "
                 "encoder's vectors of the word in its sentence and of the substitute in the new "
                 "one (null: no check, many times faster)", low=-1.0, high=1.0, nullable=True)


_CONTEXT = _context(0.65)
"""Both substitution transforms check meaning in context by default. On the judged sample (seeds
1-2, not used to choose the threshold) it lifts acceptable substitutions from 58% to 75%
(synonym) and from 62.5% to 72% (embedding), for many times the run time; null turns it off."""


def _amount(aug_p: float) -> tuple[Param, ...]:
    """aug_p / aug_min / aug_max: how many words an operation changes."""
    return (
        Param("aug_p", "float", aug_p, "fraction of the words to change", low=0.0, high=1.0),
        Param("aug_min", "int", 1, "change at least this many words (if there are)", low=0,
              high=100000),
        Param("aug_max", "int", 10, "change at most this many words", low=0, high=100000),
    )


def _checks(*checks: Callable[[Mapping[str, Any]], str | None]
            ) -> Callable[[Mapping[str, Any]], str | None]:
    """All of ``checks``, reporting the first problem."""
    def run(params: Mapping[str, Any]) -> str | None:
        return next((m for m in (c(params) for c in checks) if m), None)
    return run


ENTRIES: tuple[TextTransformInfo, ...] = (
    TextTransformInfo(
        name="random_swap", run=ops.random_swap, params=_amount(0.1), check=ops.check_amount,
        doc="Swap the places of random pairs of words (EDA random swap)."),
    TextTransformInfo(
        name="random_deletion", run=ops.random_deletion, params=_amount(0.1), check=ops.check_amount,
        doc="Delete random words, never all of them (EDA random deletion)."),
    TextTransformInfo(
        name="keyboard", run=ops.keyboard, check=ops.check_amount,
        params=(*_amount(0.1),
                Param("min_word_length", "int", 3, "only words at least this long get a typo",
                      low=1, high=100)),
        doc="A keyboard typo (a neighbouring QWERTY key) in random words; case is kept."),
    TextTransformInfo(
        name="ocr", run=ops.ocr, check=ops.check_amount,
        params=(*_amount(0.1),
                Param("min_word_length", "int", 2, "only words at least this long get an error",
                      low=1, high=100)),
        doc="An OCR-style misreading (0/o, 1/l, rn/m, 5/S, ...) in random words."),
    TextTransformInfo(
        name="random_insertion", run=random_insertion, check=_checks(ops.check_amount, check_synonym),
        params=(*_amount(0.1),
                Param("top_n", "int", 10, "choose among the first N synonyms", low=1,
                      high=10000),
                _VOCAB_SIZE),
        doc="Insert a WordNet synonym of a random content word at a random word boundary "
            "(EDA random insertion)."),
    TextTransformInfo(
        name="synonym", run=synonym, check=_checks(ops.check_amount, check_synonym),
        params=(*_amount(0.3),
                Param("top_n", "int", 10, "choose among the first N synonyms (most frequent "
                      "senses first)", low=1, high=10000),
                Param("multi_word", "bool", True, "allow multi-word synonyms (\"climb up\")"),
                _VOCAB_SIZE, _CONTEXT,
                Param("min_similarity", "float", 0.5, "minimum GloVe cosine between a word and its "
                      "synonym: drops senses a sentence today rarely means (gay/cheery)",
                      low=-1.0, high=1.0),
                Param("names", "bool", False, "also replace proper names and capitalised words "
                      "inside a sentence (Bush -> Shrub)"),
                Param("stopwords", "strings", None, "words never replaced (null: shipped list)",
                      nullable=True)),
        doc="Replace words by WordNet synonyms of the same part of speech, inflected to agree "
            "(plural, tense, person); words that cannot agree are left alone."),
    TextTransformInfo(
        name="embedding", run=embedding, check=_checks(ops.check_amount, check_vectors),
        params=(*_amount(0.3),
                Param("top_k", "int", 10, "neighbours to choose from", low=1, high=1000),
                Param("threshold", "float", 0.7, "minimum cosine similarity of a substitute",
                      low=-1.0, high=1.0),
                Param("vocab_size", "int", 50000, "search the most frequent N words", low=10,
                      high=10_000_000),
                Param("min_word_length", "int", 3, "neither replace nor insert shorter words "
                      "(single letters have meaningless neighbours)", low=1, high=100),
                Param("vectors", "string", DEFAULT_VECTORS,
                      f"'{DEFAULT_VECTORS}' or a word2vec/GloVe/fastText file"),
                Param("names", "bool", False, "also replace proper names and capitalised words "
                      "inside a sentence (Merkel -> Schroeder)"),
                Param("numbers", "bool", False, "also replace numbers (three -> two)"), _CONTEXT,
                Param("related", "choice", "wordnet", "'wordnet': a neighbour must also be a "
                      "WordNet synonym, hypernym, hyponym or similar word (no Dogs -> Cats); "
                      "'any': every neighbour that passes the other checks",
                      choices=("wordnet", "any")),
                Param("stopwords", "strings", None, "words never replaced (null: shipped list)",
                      nullable=True)),
        doc="Replace words by nearest neighbours in word-vector space (GloVe by default); "
            "stopwords, numbers, punctuation and inflections of the same word are skipped."),
    TextTransformInfo(
        name="contextual", run=contextual, check=ops.check_amount,
        params=(*_amount(0.15),
                Param("model", "string", None, "masked LM: Hugging Face id or local folder "
                      "(null: $AUGSVC_MLM, else bert-base-uncased)", nullable=True),
                Param("top_k", "int", 10, "sample among the k best whole-word predictions",
                      low=1, high=1000),
                Param("temperature", "float", 1.0, "softmax temperature over those k",
                      low=0.01, high=100.0),
                Param("window", "int", 128, "tokens of context per masked word (max 512)",
                      low=8, high=512),
                Param("batch_size", "int", 64, "masked windows per forward pass", low=1,
                      high=4096),
                Param("joint", "bool", True, "mask all chosen words of a text in one pass (as "
                      "in BERT's training); false: one pass per word"),
                Param("device", "choice", "auto", "where the model runs",
                      choices=("auto", "cpu", "cuda")),
                Param("precision", "choice", "auto", "the model's number format. auto: bfloat16 "
                      "on GPUs that have it (else float16) and on CPUs where it is faster (AMX, "
                      "or AVX512-BF16 on AMD), else float32. Pin float32 for the same words on "
                      "every machine", choices=("auto", "float32", "bfloat16", "float16")),
                Param("stopwords", "strings", None, "words never replaced (null: shipped list)",
                      nullable=True)),
        doc="Replace words by a masked language model's predictions in context (BERT by "
            "default); subword pieces, the original word, stopwords and punctuation are skipped."),
)

TEXT_TRANSFORMS: dict[str, TextTransformInfo] = {e.name: e for e in ENTRIES}

TEXT_GROUPS: dict[str, TransformInfo] = {
    "semantic_filter": TransformInfo(
        name="semantic_filter", default_p=1.0,
        doc="Run the children; keep the result only if its sentence-embedding cosine to the text "
            "before the group (all-MiniLM-L6-v2) is >= threshold, else retry, else keep the text "
            "as it was.",
        params=(Param("threshold", "float", 0.8, "minimum cosine similarity to keep a result",
                      low=-1.0, high=1.0),
                Param("retries", "int", 3, "extra attempts before giving up", low=0, high=10))),
}
"""Text-only group kinds, used in specs like one_of: {"semantic_filter": [...], "threshold": 0.8}."""


def list_text_transforms() -> list[str]:
    """Names of all registered text transforms, sorted."""
    return sorted(TEXT_TRANSFORMS)
