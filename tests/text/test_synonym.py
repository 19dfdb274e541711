"""WordNet reading (checked against NLTK's reader), inflection, and synonym substitution."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from augsvc.errors import SpecError
from augsvc.resources import ResourceError, find_wordnet
from augsvc.text import TextPipeline
from augsvc.text.inflect import inflect
from augsvc.text.synonym import tag_words
from augsvc.text.tokens import words
from augsvc.text.wordnet import WordNet, _lexnames, load_wordnet

WORDS = {"n": ["dog", "tree", "goose", "bank", "morning", "city"],
         "v": ["run", "climb", "walk", "eat", "stop"],
         "a": ["happy", "quick", "big", "lazy"], "r": ["quickly", "well"]}
FORMS = {"n": ["dogs", "geese", "cities", "boxes", "women"],
         "v": ["ran", "running", "climbed", "stopped", "tries", "goes"],
         "a": ["bigger", "happiest"], "r": ["better"]}


@pytest.fixture(scope="module")
def wn() -> WordNet:
    return load_wordnet()


@pytest.fixture(scope="module")
def nltk_wordnet(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """NLTK's own reader over the same files, in an nltk_data root built as NLTK wants it."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    data_root = tmp_path_factory.mktemp("nltk_data")
    nltk.data.path.insert(0, str(data_root))  # NLTK only reads corpora under its data path
    root = data_root / "corpora" / "wordnet"
    root.mkdir(parents=True)
    for path in find_wordnet().iterdir():
        if path.is_file():
            shutil.copy(path, root / path.name)
    (root / "lexnames").write_text("".join(f"{i:02d}\t{name}\t{1}\n"
                                           for i, name in enumerate(_lexnames())))
    return WordNetCorpusReader(str(root), None)


@pytest.mark.parametrize("pos", sorted(WORDS))
def test_synonyms_match_nltk(wn: WordNet, nltk_wordnet, pos: str) -> None:  # type: ignore[no-untyped-def]
    for word in WORDS[pos]:
        theirs = {lemma.name().replace("_", " ").lower() for synset in nltk_wordnet.synsets(word, pos)
                  for lemma in synset.lemmas()} - {word}
        ours = {s.lower() for s in wn.synonyms[(word, pos)]}
        assert ours == theirs, (word, pos, ours ^ theirs)


@pytest.mark.parametrize("pos", sorted(FORMS))
def test_morphy_matches_nltk(wn: WordNet, nltk_wordnet, pos: str) -> None:  # type: ignore[no-untyped-def]
    for form in FORMS[pos]:
        assert set(wn.morphy(form, pos)) == set(nltk_wordnet._morphy(form, pos)), form


def test_lexnames_and_glosses(wn: WordNet, nltk_wordnet) -> None:  # type: ignore[no-untyped-def]
    dog = nltk_wordnet.synset("dog.n.01")
    key = f"n:{dog.offset():08d}"
    assert wn.lexnames[key] == dog.lexname() == "noun.animal"
    assert wn.glosses[key][0].startswith(dog.definition())
    assert len(_lexnames()) == 45


def test_missing_wordnet_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ResourceError, match="apt-get install wordnet-base wordnet-sense-index"):
        find_wordnet([tmp_path])


@pytest.mark.parametrize(("lemma", "tag", "expected"), [
    ("dog", "NNS", "dogs"), ("domestic dog", "NNS", "domestic dogs"), ("goose", "NNS", "geese"),
    ("city", "NNS", "cities"), ("box", "NNS", "boxes"), ("climb up", "VBD", "climbed up"),
    ("stop", "VBD", "stopped"), ("stop", "VBG", "stopping"), ("make", "VBG", "making"),
    ("die", "VBG", "dying"), ("try", "VBZ", "tries"), ("go", "VBZ", "goes"),
    ("have", "VBZ", "has"), ("walk", "VBN", "walked"), ("dog", "NN", "dog"),
    ("run", "VBD", None), ("see", "VBN", None), ("happy", "JJR", None),
])
def test_inflect(wn: WordNet, lemma: str, tag: str, expected: str | None) -> None:
    assert inflect(wn, lemma, tag) == expected


def test_tags_align_with_words() -> None:
    text = "She WALKS  to the market, don't you?"
    tags = tag_words(text, words(text))
    assert tags[:2] == ["PRP", "VBZ"] and tags[4] == "NN"
    assert len(tags) == len(words(text))


TEXT = "The dogs were running across the cities.\nHer HAPPY  children climbed trees!"


def test_substitutes_agree_and_keep_layout(wn: WordNet) -> None:
    pipeline = TextPipeline([{"name": "synonym", "p": 1, "aug_p": 1.0, "aug_max": 100}])
    outs = pipeline.batch([TEXT] * 12, seed=0, return_ops=True)
    assert len({o.text for o in outs}) >= 6
    seen = 0
    for out in outs:
        # punctuation and newlines stay (substitutes may bring hyphens of their own)
        assert re.split(r"[\w -]+", out.text) == re.split(r"[\w -]+", TEXT)
        for op in out.ops or []:
            original, new = op["original"], op["substitute"]
            if original == "dogs":  # plural noun -> a plural synonym of dog
                head = new.split(" ")[-1].lower()
                assert any(b for b in wn.morphy(head, "n") if b != head), new
                seen += 1
            if original == "HAPPY":
                assert new == new.upper()
            if original == "climbed":
                assert new.split(" ")[0].endswith("ed"), new
            assert original.lower() not in ("the", "were", "her", "across")
    assert seen >= 3


def test_seed_contract_and_untouched_inputs() -> None:
    pipeline = TextPipeline([{"name": "synonym", "p": 0.9, "aug_p": 0.4}])
    texts = [TEXT, "", "🙂 !!", "The weather was nice yesterday."]
    batch = [o.text for o in pipeline.batch(texts, seed=4, start=7)]
    assert batch == [pipeline(t, seed=4, index=7 + k).text for k, t in enumerate(texts)]
    assert batch[1:3] == ["", "🙂 !!"]


def test_single_word_option_and_bad_specs() -> None:
    pipeline = TextPipeline([{"name": "synonym", "p": 1, "aug_p": 1.0, "aug_max": 100,
                              "multi_word": False}])
    for index in range(8):
        for op in pipeline(TEXT, seed=1, index=index, return_ops=True).ops or []:
            assert " " not in op["substitute"]
    with pytest.raises(SpecError, match="top_n"):
        TextPipeline([{"name": "synonym", "top_n": 0}])


def test_every_substitute_is_a_synonym_of_the_right_part_of_speech(wn: WordNet) -> None:
    penn = {"NN": "n", "VB": "v", "JJ": "a", "RB": "r"}
    text = "Happy children quickly climbed the tall trees and watched the small birds."
    tags = dict(zip((w.start for w in words(text)), tag_words(text, words(text)), strict=True))
    pipe = TextPipeline([{"name": "synonym", "p": 1, "aug_p": 0.5}])
    checked = 0
    for index in range(15):
        for op in pipe(text, seed=2, index=index, return_ops=True).ops or []:
            tag = tags[op["position"]]
            assert tag is not None
            pos = penn[tag[:2]]
            bases = wn.morphy(op["original"], pos)
            head = op["substitute"].split(" ")[-1 if pos == "n" else 0]
            lemmas = {lemma.lower() for base in bases for lemma in wn.synonyms[(base, pos)]}
            rebuilt = {" ".join([*op["substitute"].split(" ")[:-1], b]) if pos == "n" else
                       " ".join([b, *op["substitute"].split(" ")[1:]])
                       for b in [head.lower(), *wn.morphy(head, pos)]}
            assert lemmas & {r.lower() for r in rebuilt}, (op, tag)
            checked += 1
    assert checked >= 20
