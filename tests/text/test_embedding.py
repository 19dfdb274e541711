"""Word vectors (packaged GloVe and user files) and the embedding substitution transform."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest

from augsvc.errors import InputError, SpecError
from augsvc.resources import ResourceError
from augsvc.text import TextPipeline
from augsvc.text.embedding import same_word_family
from augsvc.text.stopwords import STOPWORDS
from augsvc.text.tokens import words
from augsvc.text.vectors import WordVectors, load_vectors

SENTENCE = "The Quick brown fox jumps over the LAZY dog near Paris.\nHappy  people were running!"
NEWS = (Path(__file__).parents[2] / "benchmarks/data/text_quality/news.txt").read_text().splitlines()

# A tiny vocabulary with known geometry: "car" is close to "automobile" and "vehicle",
# "cars" is its plural, "the" a stopword, "42" a number, "truck" is further away.
WORDS = ["the", "car", "automobile", "vehicle", "cars", "42", "truck", "banana"]
MATRIX = np.array([
    [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.98, 0.2, 0.0], [0.95, 0.3, 0.0], [0.99, 0.1, 0.0],
    [0.99, 0.05, 0.0], [0.6, 0.8, 0.0], [0.0, 1.0, 0.0],
], dtype=np.float32)


def write_text(path: Path, header: bool) -> Path:
    lines = [f"{len(WORDS)} 3"] if header else []
    lines += [w + " " + " ".join(f"{x:.6f}" for x in row) for w, row in zip(WORDS, MATRIX, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_binary(path: Path) -> Path:
    body = b"".join(w.encode() + b" " + struct.pack("<3f", *row) + b"\n"
                    for w, row in zip(WORDS, MATRIX, strict=True))
    path.write_bytes(f"{len(WORDS)} 3\n".encode() + body)
    return path


def test_neighbours_are_cosine_ranked_and_exclude_the_query() -> None:
    vectors = WordVectors(WORDS, MATRIX)
    near = vectors.neighbours(["car", "unknown"], k=3, vocab_size=100)
    unit = MATRIX / np.linalg.norm(MATRIX, axis=1, keepdims=True)
    cosines = unit @ unit[1]
    expected = [WORDS[i] for i in np.argsort(-cosines) if i != 1][:3]
    assert [w for w, _ in near[0]] == expected == ["42", "cars", "automobile"]
    assert [c for _, c in near[0]] == pytest.approx(sorted(cosines, reverse=True)[1:4], abs=1e-6)
    assert near[1] == []
    top4 = vectors.neighbours(["car"], k=10, vocab_size=4)[0]
    assert [w for w, _ in top4] == ["automobile", "vehicle", "the"]


@pytest.mark.parametrize("kind", ["glove", "word2vec-text", "word2vec-bin"])
def test_user_vector_files_load(tmp_path: Path, kind: str) -> None:
    path = {"glove": lambda: write_text(tmp_path / "v.txt", header=False),
            "word2vec-text": lambda: write_text(tmp_path / "v.vec", header=True),
            "word2vec-bin": lambda: write_binary(tmp_path / "v.bin")}[kind]()
    vectors = load_vectors(str(path))
    assert vectors.words == WORDS and vectors.dim == 3
    np.testing.assert_allclose(vectors.matrix, MATRIX, atol=1e-6)


def test_bad_vector_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ResourceError, match="not found"):
        load_vectors(str(tmp_path / "missing.txt"))
    (tmp_path / "bad.txt").write_text("word 0.1 zero\n")
    with pytest.raises(InputError, match=r"bad\.txt:1"):
        load_vectors(str(tmp_path / "bad.txt"))
    with pytest.raises(SpecError, match="vectors file not found"):
        TextPipeline([{"name": "embedding", "vectors": str(tmp_path / "nope.vec")}])


def test_substitutes_pass_the_filters(tmp_path: Path) -> None:
    path = write_text(tmp_path / "tiny.txt", header=False)
    spec = [{"name": "embedding", "p": 1, "aug_p": 1.0, "vectors": str(path), "threshold": 0.9}]
    pipeline = TextPipeline(spec)
    subs = {pipeline("The car.", seed=0, index=i, return_ops=True).text for i in range(20)}
    # cars: same word family; 42: a number; the: a stopword; truck/banana: below 0.9;
    # vehicle: two hypernym steps from car in WordNet (car -> motor vehicle -> vehicle)
    assert subs == {"The automobile."}
    anything = TextPipeline([{**spec[0], "related": "any"}])
    assert {anything("The car.", seed=0, index=i).text for i in range(20)} == {
        "The automobile.", "The vehicle."}
    upper = pipeline("CAR", seed=0, return_ops=True)
    assert upper.text == "AUTOMOBILE" and upper.ops is not None
    assert upper.ops[0] == {"op": "embedding", "position": 0, "original": "CAR",
                            "substitute": upper.text}
    strict = TextPipeline([{**spec[0], "threshold": 0.999}])
    assert strict("The car.", seed=0).text == "The car."


def test_glove_substitution_keeps_layout_and_changes_content_words() -> None:
    pipeline = TextPipeline([{"name": "embedding", "p": 1, "related": "any",
                              "context_threshold": None}])
    outs = pipeline.batch([SENTENCE] * 6, seed=0, return_ops=True)
    assert len({o.text for o in outs}) >= 4
    assert sum(bool(o.ops) for o in outs) >= 4  # a substitute the tagger reads differently is undone
    for out in outs:
        assert len(words(out.text)) == len(words(SENTENCE))
        assert re.split(r"\w+", out.text) == re.split(r"\w+", SENTENCE)  # layout kept
        for op in out.ops:
            assert op["original"].lower() not in STOPWORDS
            assert not same_word_family(op["original"], op["substitute"])
            assert op["substitute"].isalpha()


def test_batches_and_single_calls_agree_with_embeddings() -> None:
    pipeline = TextPipeline([{"name": "embedding", "p": 0.8, "aug_p": 0.5}])
    texts = [SENTENCE, "happy dogs chase red balls", "", "quantum physics lectures"]
    batch = [o.text for o in pipeline.batch(texts, seed=9, start=100)]
    singles = [pipeline(t, seed=9, index=100 + k).text for k, t in enumerate(texts)]
    assert batch == singles


@pytest.mark.parametrize(("a", "b", "same"), [
    ("dog", "dogs", True), ("run", "running", True), ("quick", "quickly", True),
    ("line", "lines", True), ("compile", "compiled", True), ("happy", "happier", True),
    ("city", "cities", True), ("dog", "cat", False), ("line", "lion", False),
    ("state", "statement", False),
])
def test_same_word_family(a: str, b: str, same: bool) -> None:
    assert same_word_family(a, b) is same


def test_short_words_are_left_alone(tmp_path: Path) -> None:
    path = write_text(tmp_path / "tiny.txt", header=False)
    spec = {"name": "embedding", "p": 1, "aug_p": 1.0, "vectors": str(path), "threshold": 0.0,
            "related": "any"}
    assert TextPipeline([{**spec, "min_word_length": 4}])("car", seed=0).text == "car"
    subs = {TextPipeline([spec])("car", seed=0, index=i).text for i in range(30)}
    assert "42" not in subs and all(len(s) >= 3 for s in subs) and len(subs) >= 2


def test_names_and_numbers_only_when_asked() -> None:
    text = "Three men bought two old cars from Chancellor Merkel in Berlin."
    plain = TextPipeline([{"name": "embedding", "p": 1, "aug_p": 1.0, "related": "any",
                            "context_threshold": None}])
    touched = {op["original"] for o in plain.batch([text] * 10, seed=0, return_ops=True)
               for op in o.ops or []}
    assert touched and not touched & {"Three", "two", "Chancellor", "Merkel", "Berlin"}
    asked = TextPipeline([{"name": "embedding", "p": 1, "aug_p": 1.0, "related": "any",
                           "names": True, "numbers": True, "context_threshold": None}])
    touched = {op["original"] for o in asked.batch([text] * 10, seed=0, return_ops=True)
               for op in o.ops or []}
    assert {"Three", "two", "Merkel", "Berlin"} <= touched


def test_antonyms_are_never_offered() -> None:
    from augsvc.text.wordnet import load_wordnet

    wn = load_wordnet()
    text = "The slow train arrived late and prices kept rising quickly."
    pipe = TextPipeline([{"name": "embedding", "p": 1, "aug_p": 1.0, "related": "any",
                          "top_k": 50, "threshold": 0.5, "context_threshold": None}])
    subs = [(op["original"], op["substitute"]) for o in pipe.batch([text] * 30, seed=0,
                                                                    return_ops=True)
            for op in o.ops or []]
    assert len(subs) >= 30
    assert not [pair for pair in subs if wn.are_antonyms(*pair)]
    # the plain neighbours of these words include their antonyms: the filter did the work
    near = load_vectors("glove-6b-50d").neighbours(["slow", "rising", "quickly"], k=50,
                                                   vocab_size=50000)
    assert all(any(wn.are_antonyms(q, n) for n, _ in found)
               for q, found in zip(["slow", "rising", "quickly"], near, strict=True))


def test_every_substitute_keeps_tag_inflection_and_wordnet_relation() -> None:
    """On real news sentences: each substitute is tagged like the original in the new
    sentence, is a WordNet word of that part of speech close to the original, and no name,
    number or antonym is touched."""
    from augsvc.text.synonym import tag_words
    from augsvc.text.wordnet import load_wordnet

    wn = load_wordnet()
    pipe = TextPipeline([{"name": "embedding", "p": 1, "aug_p": 0.5}])
    checked = 0
    for index, text in enumerate(NEWS[:60]):
        out = pipe(text, seed=5, index=index, return_ops=True)
        old_tags = dict(zip((w.start for w in words(text)), tag_words(text, words(text)),
                            strict=True))
        new_words = words(out.text)
        new_tags = dict(zip((w.start for w in new_words), tag_words(out.text, new_words),
                            strict=True))
        shift = 0
        for op in sorted(out.ops or [], key=lambda o: o["position"]):
            original, new = op["original"], op["substitute"]
            tag = old_tags[op["position"]]
            assert tag in {"NN", "NNS", "VB", "VBP", "VBZ", "VBD", "VBN", "VBG", "JJ", "RB"}
            assert new_tags[op["position"] + shift] == tag, (op, text)
            shift += len(new) - len(original)
            pos = {"NN": "n", "VB": "v", "JJ": "a", "RB": "r"}[tag[:2]]
            assert wn.are_close(original, new, pos) and not wn.are_antonyms(original, new)
            assert original[:1].islower() or text.startswith(original)
            checked += 1
    assert checked >= 25
