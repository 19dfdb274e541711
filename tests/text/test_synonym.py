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


TEXT = "The students bought new books and studied them.\nHer HAPPY  children climbed trees!"

NEWS = (Path(__file__).parents[2] / "benchmarks/data/text_quality/news.txt").read_text().splitlines()


def test_counts_and_antonyms_match_nltk(wn: WordNet, nltk_wordnet) -> None:  # type: ignore[no-untyped-def]
    for pos, lemmas in WORDS.items():
        for word in lemmas:
            for synset in nltk_wordnet.synsets(word, pos):
                key = f"{pos}:{synset.offset():08d}"
                for lemma in synset.lemmas():
                    name = lemma.name().replace("_", " ")
                    assert wn.sense_count(name, key) == lemma.count(), (name, key)
                    for other in lemma.antonyms():
                        assert wn.are_antonyms(name, other.name().replace("_", " "))
            assert [f"{pos}:{s.offset():08d}" for s in nltk_wordnet.synsets(word, pos)
                    if s.pos() in (pos, "s")] == wn.senses[(word, pos)]


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("slow", "fast", True), ("Rising", "falling", True), ("slowly", "quickly", True),
    ("quick", "slow", True),  # quick is in fast's cluster, slow is fast's antonym
    ("increased", "decreased", True), ("dogs", "cats", False), ("bought", "purchased", False),
    ("used", "utilized", False),  # "used" is also a satellite of the other side's cluster
])
def test_antonyms(wn: WordNet, a: str, b: str, expected: bool) -> None:
    assert wn.are_antonyms(a, b) is expected and wn.are_antonyms(b, a) is expected


@pytest.mark.parametrize(("text", "word", "wrong"), [
    # the wrong senses and non-words a first user met (sense frequencies, GloVe similarity and
    # the frequent-word rule each rule some of them out)
    ("The company bought three new trucks last year.", "bought", {"corrupted", "bribed"}),
    ("The auditors checked the accounts of the bank.", "auditors", {"hearers", "listeners"}),
    ("Many people attended the meeting in the hall.", "people", {"masseses", "masses"}),
    ("The men stood near the door for an hour.", "stood", {"stomached", "tolerated"}),
    ("Profits rose sharply in the last quarter.", "Profits", {"Lucres", "lucres"}),
    ("A gay former student spoke to the school.", "gay", {"cheery", "sunny"}),
    ("The minutes of the meeting were published.", "minutes", {"proceedingses"}),
])
def test_wrong_senses_and_non_words_are_not_offered(text: str, word: str, wrong: set[str]) -> None:
    pipe = TextPipeline([{"name": "synonym", "p": 1, "aug_p": 1.0, "aug_max": 100}])
    seen = {op["substitute"].lower() for i in range(30)
            for op in pipe(text, seed=0, index=i, return_ops=True).ops or []
            if op["original"] == word}
    assert not seen & {w.lower() for w in wrong}, seen


def test_names_are_left_alone_unless_asked() -> None:
    text = "Yesterday the Detectives met Berlin officials."
    plain = TextPipeline([{"name": "synonym", "p": 1, "aug_p": 1.0, "aug_max": 100}])
    touched = {op["original"] for i in range(20)
               for op in plain(text, seed=0, index=i, return_ops=True).ops or []}
    assert not touched & {"Detectives", "Berlin"}
    named = TextPipeline([{"name": "synonym", "p": 1, "aug_p": 1.0, "aug_max": 100,
                           "names": True}])
    assert any(op["original"] == "Detectives" and op["substitute"] == "Investigators"
               for i in range(20) for op in named(text, seed=0, index=i, return_ops=True).ops or [])


def test_every_substitute_keeps_sense_tag_and_frequency(wn: WordNet) -> None:
    """On real news sentences: each substitute is a frequent word, a lemma of one of the
    original's dominant senses, tagged like the original in the new sentence, no antonym."""
    from augsvc.text.vectors import load_vectors

    rank = load_vectors("glove-6b-50d").row
    pipe = TextPipeline([{"name": "synonym", "p": 1, "aug_p": 0.5}])
    checked = 0
    for index, text in enumerate(NEWS[:60]):
        out = pipe(text, seed=3, index=index, return_ops=True)
        new_words = words(out.text)
        new_tags = dict(zip((w.start for w in new_words), tag_words(out.text, new_words),
                            strict=True))
        old_tags = dict(zip((w.start for w in words(text)), tag_words(text, words(text)),
                            strict=True))
        shift = 0
        for op in sorted(out.ops or [], key=lambda o: o["position"]):
            original, new, at = op["original"], op["substitute"], op["position"] + shift
            shift += len(new) - len(original)
            tag = old_tags[op["position"]]
            assert tag is not None and not tag.startswith("NNP")
            pos = {"NN": "n", "VB": "v", "JJ": "a", "RB": "r"}[tag[:2]]
            head = new.split(" ")[-1] if pos == "n" else new.split(" ")[0]
            head_at = at + (len(new) - len(head) if pos == "n" else 0)
            assert new_tags[head_at] == tag, (op, text)
            assert all(rank.get(part, 10**9) < 50000 for part in re.split(r"[ -]", new.lower()))
            assert not wn.are_antonyms(original, new)
            dominant = {key for base in wn.morphy(original, pos)
                        for key in wn.dominant_senses(base, pos)}
            lemma_keys = {key for base in wn.morphy(head, pos)
                          for key in wn.senses.get((base, pos), [])}
            assert dominant & lemma_keys or " " in new, (op, text)
            checked += 1
    assert checked >= 25


def test_substitutes_agree_and_keep_layout(wn: WordNet) -> None:
    pipeline = TextPipeline([{"name": "synonym", "p": 1, "aug_p": 1.0, "aug_max": 100,
                              "context_threshold": None}])
    outs = pipeline.batch([TEXT] * 12, seed=0, return_ops=True)
    assert len({o.text for o in outs}) >= 3
    seen = set()
    for out in outs:
        # punctuation and newlines stay (substitutes may bring hyphens of their own)
        assert re.split(r"[\w -]+", out.text) == re.split(r"[\w -]+", TEXT)
        for op in out.ops or []:
            original, new = op["original"], op["substitute"]
            seen.add(original)
            if original == "children":  # plural noun -> a plural synonym of child
                head = new.split(" ")[-1].lower()
                assert any(b for b in wn.morphy(head, "n") if b != head), new
            if original == "HAPPY":
                assert new == new.upper()
            if original in ("bought", "studied"):
                assert new.split(" ")[0].endswith("ed"), new
            assert original.lower() not in ("the", "and", "her", "them")
    assert {"children", "studied"} <= seen


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


@pytest.mark.parametrize(("text", "word", "substitute", "agrees"), [
    ("a sick woman", "sick", "ill", False), ("an ill woman", "ill", "sick", False),
    ("a sick woman", "sick", "poorly", True), ("an old car", "old", "aged", True),
    ("a unit", "unit", "union", True), ("an hour", "hour", "honest", True),
    ("the sick woman", "sick", "ill", True), ("A big dog", "big", "enormous", False),
])
def test_article_agreement(text: str, word: str, substitute: str, agrees: bool) -> None:
    from augsvc.text.tokens import article_agrees

    assert article_agrees(text, text.index(word), substitute) is agrees


def test_substitutes_never_break_a_or_an() -> None:
    text = "It was a sick and evil plan, an odd idea from a radical group."
    for name in ("synonym", "embedding"):
        pipe = TextPipeline([{"name": name, "p": 1, "aug_p": 1.0, "related": "any"}
                             if name == "embedding" else {"name": name, "p": 1, "aug_p": 1.0}])
        for i in range(20):
            out = pipe(text, seed=0, index=i).text
            assert not re.search(r"\ba [aeio]|\ban [^aeiou]", out, re.IGNORECASE), out
