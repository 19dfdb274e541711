"""nlpaug's names in text specs (the README's "From nlpaug" table) and from_nlpaug on real
nlpaug 1.1.11 augmenters built offline: WordNet from the installed files, a tiny word-vector
file and a tiny random BERT written to temporary folders."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from augsvc.errors import SpecError
from augsvc.resources import find_wordnet
from augsvc.text import TextPipeline
from augsvc.text.nlpaug_compat import from_nlpaug, translate_aliases
from augsvc.text.presets import TEXT_PRESETS
from augsvc.text.wordnet import _lexnames

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["The quick brown dog jumps over the lazy hound near the big river; happy days!",
         "A happy puppy runs under the big tree,\n  and the quick fox leaps over a stream."]
_SYNONYM_GROUPS = [["quick", "fast", "speedy", "rapid"], ["big", "large", "huge"],
                   ["dog", "hound", "puppy"], ["lazy", "idle", "slothful"],
                   ["river", "stream", "creek"], ["jumps", "leaps", "springs"],
                   ["happy", "glad", "cheerful"], ["tree", "oak"], ["runs", "races"]]
_BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(w for g in _SYNONYM_GROUPS for w in g),
               "the", "a", "over", "under", "near", "and", "fox", "brown", "days", ",", ".", ";"]


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A GloVe-format text file where each synonym group lies close together."""
    rng = np.random.default_rng(0)
    lines = []
    for group in _SYNONYM_GROUPS:
        base = rng.normal(size=8)
        for word in group:
            row = base + rng.normal(scale=0.1, size=8)
            lines.append(word + " " + " ".join(f"{x:.5f}" for x in row))
    path = tmp_path_factory.mktemp("vectors") / "tiny-glove.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random 2-layer BERT; the folder's name says "bert", as nlpaug wants."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    (folder / "vocab.txt").write_text("\n".join(_BERT_VOCAB) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(_BERT_VOCAB), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(config).save_pretrained(folder)
    BertTokenizer(vocab=str(folder / "vocab.txt")).save_pretrained(folder)
    return str(folder)


def _rows(vectors: str, model: str) -> dict[str, tuple[list[Any], list[Any]]]:
    """Each row of the README table: (the spec in nlpaug's names, the spec in augsvc's)."""
    swap, keyboard = {"name": "naw.RandomWordAug", "action": "swap"}, {
        "name": "nac.KeyboardAug", "aug_word_p": 0.1}
    return {
        "synonym": ([{"name": "naw.SynonymAug", "aug_src": "wordnet", "aug_p": 0.3}],
                    [{"name": "synonym", "aug_p": 0.3}]),
        "embedding": ([{"name": "naw.WordEmbsAug", "model_type": "glove", "model_path": vectors,
                        "action": "substitute"}], [{"name": "embedding", "vectors": vectors}]),
        "contextual": ([{"name": "naw.ContextualWordEmbsAug", "model_path": model,
                         "action": "substitute", "top_k": 10}],
                       [{"name": "contextual", "model": model, "top_k": 10}]),
        "swap": ([swap], [{"name": "random_swap"}]),
        "delete": ([{"name": "naw.RandomWordAug", "action": "delete"}],
                   [{"name": "random_deletion"}]),
        "insert": ([{"name": "naw.SynonymAug", "action": "insert"}],
                   [{"name": "random_insertion"}]),
        "keyboard": ([keyboard], [{"name": "keyboard", "aug_p": 0.1}]),
        "ocr": ([{"name": "nac.OcrAug", "aug_word_p": 0.1}], [{"name": "ocr", "aug_p": 0.1}]),
        "sequential": ([{"name": "naf.Sequential", "flow": [swap, keyboard]}],
                       [{"name": "random_swap"}, {"name": "keyboard", "aug_p": 0.1}]),
        "sometimes": ([{"name": "naf.Sometimes", "flow": [swap, keyboard], "aug_p": 0.5}],
                      [{"name": "random_swap", "p": 0.5},
                       {"name": "keyboard", "aug_p": 0.1, "p": 0.5}]),
    }


def test_the_rows_cover_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| nlpaug | augsvc spec |"):].split("\n\n")[0]
    named = set(re.findall(r'"name": "(\w+)"', table))
    ours = {e["name"] for _, augsvc in _rows("v", "m").values() for e in augsvc}
    assert named and named <= ours
    classes = set(re.findall(r"na[wcf]\.(\w+)\(", table))
    written = {e["name"].split(".")[-1] for nl, _ in _rows("v", "m").values() for e in nl}
    assert classes and classes <= written


@pytest.mark.parametrize("row", list(_rows("v", "m")))
def test_each_row_translates_and_augments_byte_for_byte_alike(row: str, vectors: str,
                                                              tiny_bert: str) -> None:
    nlpaug_spec, augsvc_spec = _rows(vectors, tiny_bert)[row]
    assert translate_aliases({"transforms": nlpaug_spec}) == {"transforms": augsvc_spec}
    ours = TextPipeline({"transforms": nlpaug_spec})
    theirs = TextPipeline({"transforms": augsvc_spec})
    assert ours.to_spec() == theirs.to_spec()
    for seed in (0, 7):
        a = ours.batch(TEXTS, seed=seed, start=3, n=4, return_ops=True)
        b = theirs.batch(TEXTS, seed=seed, start=3, n=4, return_ops=True)
        assert [(o.text.encode(), o.ops) for o in a] == [(o.text.encode(), o.ops) for o in b]
    outs = ours.batch(TEXTS, seed=0, n=8)
    assert any(o.text not in TEXTS for o in outs)  # the comparison is not of unchanged texts
    if row == "sometimes":
        assert any(o.text in TEXTS for o in outs)  # and sometimes nothing runs


@pytest.mark.parametrize("name", ["SynonymAug", "naw.SynonymAug", "synonymaug",
                                  "nlpaug.augmenter.word.SynonymAug",
                                  "nlpaug.augmenter.word.synonym.SynonymAug"])
def test_spellings_of_an_nlpaug_name(name: str) -> None:
    assert translate_aliases([{"name": name, "aug_p": 0.2}]) == [{"name": "synonym",
                                                                   "aug_p": 0.2}]


def test_the_pipeline_reads_nlpaug_names_in_dicts_and_yaml() -> None:
    plain = TextPipeline({"transforms": [{"name": "synonym", "aug_p": 0.2}]}).to_spec()
    assert TextPipeline({"transforms": [{"name": "SynonymAug", "aug_p": 0.2}]}).to_spec() == plain
    yaml_text = "transforms:\n  - name: naw.RandomWordAug\n    action: swap\n    aug_p: 0.2\n"
    assert TextPipeline(yaml_text).to_spec() == TextPipeline(
        [{"name": "random_swap", "aug_p": 0.2}]).to_spec()
    assert TextPipeline({"name": "naf.Sequential", "flow": [{"name": "OcrAug"}]}).to_spec() == (
        TextPipeline([{"name": "ocr"}]).to_spec())


def test_nlpaug_fields_on_augsvc_names_when_they_agree(vectors: str) -> None:
    cases = [
        ({"name": "synonym", "aug_src": "wordnet", "lang": "eng"}, {"name": "synonym"}),
        ({"name": "embedding", "model_type": "glove", "model_path": vectors},
         {"name": "embedding", "vectors": vectors}),
        ({"name": "embedding", "vectors": vectors, "model_path": vectors},
         {"name": "embedding", "vectors": vectors}),
        ({"name": "contextual", "model_path": "m", "model_type": "bert"},
         {"name": "contextual", "model": "m"}),
        ({"name": "random_swap", "action": "swap"}, {"name": "random_swap"}),
        ({"name": "random_insertion", "action": "insert"}, {"name": "random_insertion"}),
        ({"name": "keyboard", "aug_word_p": 0.2, "aug_word_max": 3, "min_char": 4},
         {"name": "keyboard", "aug_p": 0.2, "aug_max": 3, "min_word_length": 4}),
    ]
    for given, expected in cases:
        assert translate_aliases([given]) == [expected], given


def test_nlpaug_amounts_and_flows_inside_groups() -> None:
    assert translate_aliases([{"name": "RandomWordAug", "aug_max": None, "aug_min": None}]) == [
        {"name": "random_deletion", "aug_max": 100000, "aug_min": 0}]  # nlpaug: no limits
    seq = {"name": "naf.Sequential", "flow": [{"name": "OcrAug"}, {"name": "KeyboardAug"}]}
    assert translate_aliases([{"one_of": [seq, {"name": "synonym"}]}]) == [
        {"one_of": [{"sequential": [{"name": "ocr"}, {"name": "keyboard"}]}, {"name": "synonym"}]}]
    nested = {"name": "naf.Sometimes", "aug_p": 0.5,
              "flow": [seq, {"name": "OcrAug", "p": 0.5}, {"one_of": [{"name": "ocr"}]}]}
    assert translate_aliases([nested]) == [
        {"sequential": [{"name": "ocr"}, {"name": "keyboard"}], "p": 0.5},
        {"name": "ocr", "p": 0.25}, {"one_of": [{"name": "ocr"}], "p": 0.5}]
    assert translate_aliases([{"name": "naf.Sometimes", "flow": [{"name": "OcrAug"}]}]) == [
        {"name": "ocr", "p": 0.8}]  # nlpaug's default aug_p


@pytest.mark.parametrize(("entry", "field", "words"), [
    ({"name": "naw.SynonymAug", "aug_src": "ppdb"}, "aug_src",
     ["aug_src='ppdb'", "WordNet only", "embedding", "contextual"]),
    ({"name": "naw.WordEmbsAug", "action": "insert"}, "action",
     ["WordEmbsAug(action='insert')", "only substitutes", "random_insertion"]),
    ({"name": "naw.ContextualWordEmbsAug", "action": "insert"}, "action",
     ["ContextualWordEmbsAug(action='insert')", "only substitutes", "random_insertion"]),
    ({"name": "naw.RandomWordAug", "action": "crop"}, "action",
     ["RandomWordAug(action='crop')", "no crop", "random_deletion", "'swap' or 'delete'"]),
    ({"name": "naw.RandomWordAug", "action": "substitute"}, "action",
     ["action='substitute'", "random_deletion"]),
    ({"name": "random_swap", "action": "delete"}, "action", ["disagrees", "random_deletion"]),
    ({"name": "synonym", "action": "insert"}, "action", ["disagrees", "random_insertion"]),
    ({"name": "naw.AntonymAug"}, "name", ["AntonymAug", "no augsvc counterpart", "SynonymAug"]),
    ({"name": "nac.RandomCharAug"}, "name", ["RandomCharAug", "keyboard, ocr"]),
    ({"name": "nac.KeyboardAug", "aug_char_p": 0.5}, "aug_char_p",
     ["aug_char_p is not supported", "one character in each chosen word"]),
    ({"name": "nac.KeyboardAug", "include_numeric": False}, "include_numeric",
     ["include_numeric", "QWERTY"]),
    ({"name": "naw.SynonymAug", "lang": "jpn"}, "lang", ["lang='jpn'", "English only", "'eng'"]),
    ({"name": "naw.SynonymAug", "stopwords_regex": r"\d+"}, "stopwords_regex",
     ["stopwords_regex", "list the words in 'stopwords'"]),
    ({"name": "naw.RandomWordAug", "stopwords": ["a"]}, "stopwords",
     ["RandomWordAug option 'stopwords'", "random_deletion", "aug_p"]),
    ({"name": "naw.WordEmbsAug", "model_type": "word2vec", "model_path": "w.txt"}, "model_path",
     ["binary", "*.bin"]),
    ({"name": "naw.WordEmbsAug", "model_type": "elmo"}, "model_type", ["'elmo'", "'glove'"]),
    ({"name": "keyboard", "aug_word_p": 0.2, "aug_p": 0.3}, "aug_word_p", ["disagree"]),
    ({"name": "naf.Sometimes", "flow": []}, "flow", ["Sometimes needs 'flow'"]),
    ({"name": "naf.Sometimes", "flow": [{"name": "OcrAug"}], "aug_p": 2}, "aug_p", ["[0, 1]"]),
    ({"name": "naf.Sequential", "flow": [{"name": "OcrAug"}], "aug_p": 0.5}, "aug_p",
     ["Sequential has no field 'aug_p'"]),
])
def test_unsupported_nlpaug_options_say_what_augsvc_offers(entry: dict[str, Any], field: str,
                                                          words: list[str]) -> None:
    spec = {"transforms": [{"name": "ocr"}, {"one_of": [entry]}]}
    with pytest.raises(SpecError) as caught:
        TextPipeline(spec)
    assert caught.value.field == field
    assert caught.value.path.startswith("transforms[1].one_of[0]")
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def _augsvc_specs() -> Iterator[Any]:
    yield from copy.deepcopy(list(TEXT_PRESETS.values()))
    yield [{"name": "random_swap", "p": 0.5, "aug_p": 0.3},
           {"one_of": [{"name": "keyboard", "p": 1}, {"name": "random_deletion", "p": 1}], "p": 0.9}]
    yield {"transforms": [
        {"semantic_filter": [{"name": "synonym", "top_n": 5, "stopwords": ["dog"]},
                             {"name": "embedding", "vectors": "glove-6b-50d", "top_k": 5}],
         "threshold": 0.7},
        {"some_of": [{"name": "ocr"}, {"name": "random_insertion"}], "n": 1},
        {"sometimes": [{"name": "contextual", "model": "m", "device": "cpu"}], "p": 0.3},
        {"sequential": [{"name": "keyboard", "min_word_length": 2}]}]}
    yield {"transforms": [{"name": "no_such_thing"}], "other": 1}  # parse_spec's to refuse
    yield {"name": "synonym"}
    yield "not a spec"


@pytest.mark.parametrize("spec", list(_augsvc_specs()))
def test_augsvc_specs_pass_through_unchanged(spec: Any) -> None:
    before = copy.deepcopy(spec)
    assert translate_aliases(spec) is spec
    assert spec == before


def test_nlpaug_specs_are_not_modified_in_place() -> None:
    spec = {"transforms": [{"name": "naf.Sometimes", "aug_p": 0.5,
                            "flow": [{"name": "KeyboardAug", "aug_word_p": 0.1}]}]}
    before = copy.deepcopy(spec)
    assert translate_aliases(spec) != spec
    assert spec == before


def test_the_module_imports_without_nlpaug() -> None:
    code = ("import sys; sys.modules['nlpaug'] = None\n"
            "from augsvc.text.nlpaug_compat import from_nlpaug, translate_aliases\n"
            "from augsvc.text import TextPipeline\n"
            "TextPipeline([{'name': 'naw.RandomWordAug', 'action': 'swap'}])\n"
            "try:\n    from_nlpaug(object())\nexcept ImportError:\n    print('no nlpaug')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "no nlpaug"


# --- from_nlpaug on real nlpaug objects ------------------------------------------------------


@pytest.fixture(scope="module")
def nlpaug_offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """nlpaug importable, NLTK finding WordNet in an nltk_data root (copied from the installed
    files: NLTK refuses links out of its root), and any download attempt failing the test."""
    pytest.importorskip("nlpaug")
    import nltk

    data_root = tmp_path_factory.mktemp("nltk_data")
    root = data_root / "corpora" / "wordnet"
    root.mkdir(parents=True)
    for path in find_wordnet().iterdir():
        if path.is_file():
            shutil.copy(path, root / path.name)
    (root / "lexnames").write_text("".join(f"{i:02d}\t{name}\t1\n"
                                           for i, name in enumerate(_lexnames())))

    def no_download(*args: object, **kwargs: object) -> bool:
        raise AssertionError(f"nlpaug tried to download NLTK data: {args}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nltk.data, "path", [str(data_root), *nltk.data.path])
        patch.setattr(nltk, "download", no_download)
        yield


def _only(spec: dict[str, Any]) -> dict[str, Any]:
    TextPipeline(spec)  # accepted as it is
    (entry,) = spec["transforms"]
    return dict(entry)


@pytest.mark.usefixtures("nlpaug_offline")
def test_from_nlpaug_word_augmenters(vectors: str, tiny_bert: str) -> None:
    import nlpaug.augmenter.word as naw
    from nlpaug.model.word_embs import WordEmbeddings

    assert _only(from_nlpaug(naw.SynonymAug(aug_src="wordnet", aug_p=0.2, aug_min=2, aug_max=6,
                                            stopwords=["dog"]))) == {
        "name": "synonym", "aug_p": 0.2, "aug_min": 2, "aug_max": 6, "stopwords": ["dog"]}
    assert _only(from_nlpaug(naw.RandomWordAug(action="swap", aug_p=0.2, aug_min=2,
                                               aug_max=5))) == {
        "name": "random_swap", "aug_p": 0.2, "aug_min": 2, "aug_max": 5}
    assert _only(from_nlpaug(naw.RandomWordAug(aug_max=None))) == {
        "name": "random_deletion", "aug_p": 0.3, "aug_min": 1, "aug_max": 100000}
    # WordEmbsAug's own `model=` (a preloaded model) spares loading the file through gensim.
    embs = naw.WordEmbsAug(model_type="glove", model_path=vectors, model=WordEmbeddings(),
                           top_k=5, aug_p=0.25, aug_min=1, aug_max=4)
    assert _only(from_nlpaug(embs)) == {"name": "embedding", "vectors": vectors, "top_k": 5,
                                        "aug_p": 0.25, "aug_min": 1, "aug_max": 4}
    contextual = naw.ContextualWordEmbsAug(model_path=tiny_bert, action="substitute", top_k=7,
                                           aug_p=0.2, aug_min=1, aug_max=3, use_custom_api=False)
    assert _only(from_nlpaug(contextual)) == {"name": "contextual", "model": tiny_bert,
                                              "top_k": 7, "aug_p": 0.2, "aug_min": 1,
                                              "aug_max": 3}


@pytest.mark.usefixtures("nlpaug_offline")
def test_from_nlpaug_character_augmenters_and_flows() -> None:
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw
    import nlpaug.flow as naf

    keyboard = nac.KeyboardAug(aug_word_p=0.1, aug_word_min=2, aug_word_max=4)
    ocr = nac.OcrAug(aug_word_p=0.2)
    assert _only(from_nlpaug(keyboard)) == {"name": "keyboard", "aug_p": 0.1, "aug_min": 2,
                                            "aug_max": 4, "min_word_length": 4}
    assert _only(from_nlpaug(ocr)) == {"name": "ocr", "aug_p": 0.2, "aug_min": 1, "aug_max": 10,
                                       "min_word_length": 1}
    swap = naw.RandomWordAug(action="swap", aug_p=0.1)
    expected = [{"name": "random_swap", "aug_p": 0.1, "aug_min": 1, "aug_max": 10},
                {"name": "ocr", "aug_p": 0.2, "aug_min": 1, "aug_max": 10, "min_word_length": 1}]
    assert from_nlpaug(naf.Sequential([swap, ocr])) == {"transforms": expected}
    sometimes = from_nlpaug(naf.Sometimes([swap, naf.Sequential([ocr, keyboard])], aug_p=0.4))
    assert sometimes == {"transforms": [
        {**expected[0], "p": 0.4},
        {"sequential": [expected[1], _only(from_nlpaug(keyboard))], "p": 0.4}]}
    pipe = TextPipeline(from_nlpaug(naf.Sequential([swap, ocr])))
    assert [o.text for o in pipe.batch(TEXTS, seed=5, n=3)] == [
        o.text for o in TextPipeline(expected).batch(TEXTS, seed=5, n=3)]


@pytest.mark.usefixtures("nlpaug_offline")
def test_from_nlpaug_refuses_what_augsvc_lacks(vectors: str, tiny_bert: str) -> None:
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw
    from nlpaug.model.word_embs import WordEmbeddings

    cases = [
        (nac.RandomCharAug(), ["nlpaug.augmenter.char.random.RandomCharAug", "no augsvc"]),
        (naw.RandomWordAug(action="crop"), ["crop", "random_deletion"]),
        (naw.RandomWordAug(action="swap", stopwords=["the"]), ["stopwords", "random_swap"]),
        (naw.SynonymAug(stopwords_regex=r"\d+"), ["stopwords_regex"]),
        (nac.KeyboardAug(aug_char_max=2), ["aug_char_max", "one character"]),
        (nac.KeyboardAug(include_upper_case=False), ["include_upper_case"]),
        (naw.WordEmbsAug(model_type="glove", model_path=vectors, model=WordEmbeddings(),
                         action="insert"), ["action='insert'", "random_insertion"]),
        (naw.ContextualWordEmbsAug(model_path=tiny_bert, action="insert", use_custom_api=False),
         ["action='insert'", "random_insertion"]),
    ]
    for augmenter, words in cases:
        with pytest.raises(SpecError) as caught:
            from_nlpaug(augmenter)
        for word in words:
            assert word in str(caught.value), (word, str(caught.value))
    with pytest.raises(SpecError, match=r"builtins\.str has no augsvc counterpart"):
        from_nlpaug("SynonymAug")
