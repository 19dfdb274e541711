"""Contextual substitution with a masked language model (BERT and friends, via transformers).

The chosen words of a text are masked together in one input when the text fits the window
(BERT is trained with ~15% of tokens masked at once), otherwise each gets a window of its own;
the model proposes replacements. All masked copies of all samples in a call go through the model together, in
batches of windows of similar length (padded by their own size only, so a sample's scores do not
depend on its batch neighbours),
on CUDA when present (bf16/fp16) and the CPU otherwise. Long texts are handled in windows
around each word, never truncated.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from augsvc.resources import ResourceError
from augsvc.text.embedding import same_word_family
from augsvc.text.ops import TextSample, count_to_change
from augsvc.text.stopwords import STOPWORDS, stopword_set
from augsvc.text.tokens import Edit, Word, apply_edits, match_case, words

__all__ = ["DEFAULT_MLM", "MaskedLM", "choose_dtype", "contextual", "load_mlm"]

DEFAULT_MLM = "bert-base-uncased"
_ROUND = 3  # logits are compared at this many decimals, so float noise cannot change a choice
_BUCKET = 8


def default_model() -> str:
    """``$AUGSVC_MLM`` if set, else bert-base-uncased."""
    return os.environ.get("AUGSVC_MLM", DEFAULT_MLM)


@dataclass
class MaskedLM:
    """A tokenizer and masked-LM model on a device, with the vocabulary filtered once."""

    tokenizer: Any
    model: Any
    device: Any
    dtype: Any
    candidates: Any  # bool tensor: token ids that may be a substitute (whole alphabetic words)
    last_layer: Any = None  # the encoder's final layer, taken out to run at masked positions only


def choose_dtype(precision: str, device: Any) -> Any:
    """The model's dtype for ``precision`` ("auto", "float32", "bfloat16", "float16") on ``device``.

    auto: bfloat16 on a GPU that has it, else float16; on a CPU bfloat16 where it was measured
    faster than float32: with AMX tiles, or AVX512-BF16 on AMD (Zen 4: about 2x). An Intel CPU
    with AVX512-BF16 but no AMX ran the masked LM 0.6x as fast in bfloat16 (BENCHMARKS.md), so
    it gets float32. The rule reads only the CPU's features, so a machine always picks the same.
    """
    import torch

    if precision != "auto":
        return getattr(torch, precision)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    fast = torch.cpu._is_amx_tile_supported() or (torch.cpu._is_avx512_bf16_supported()
                                                  and _cpu_vendor() == "AuthenticAMD")
    return torch.bfloat16 if fast else torch.float32


def _cpu_vendor() -> str:
    """The CPU vendor string of /proc/cpuinfo ("GenuineIntel", "AuthenticAMD"); "" elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@lru_cache(maxsize=2)
def load_mlm(name: str, device: str = "auto", precision: str = "auto") -> MaskedLM:
    """Load a masked LM by Hugging Face id or local path (local files first).

    Raises:
        ResourceError: neither a local folder nor the local Hugging Face cache has it and it
            cannot be downloaded; the message names AUGSVC_MLM and the spec field.
    """
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    def load(local_only: bool) -> tuple[Any, Any]:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
        model = AutoModelForMaskedLM.from_pretrained(name, local_files_only=local_only)
        return tokenizer, model

    try:
        tokenizer, model = load(local_only=True)
    except (OSError, ValueError) as first:
        if Path(name).exists() or os.environ.get("HF_HUB_OFFLINE") == "1":
            raise ResourceError(_missing(name, first)) from first
        try:
            tokenizer, model = load(local_only=False)
        except (OSError, ValueError) as second:
            raise ResourceError(_missing(name, second)) from second
    if tokenizer.mask_token_id is None:
        raise ResourceError(f"{name} has no [MASK] token: it is not a masked language model")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    target = torch.device("cuda" if use_cuda else "cpu")
    dtype = choose_dtype(precision, target)
    model = model.to(device=target, dtype=dtype).eval()
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    ok = [i not in special and isinstance(t, str) and t.isalpha() and t.lower() not in STOPWORDS
          for i, t in enumerate(vocab)]
    size = model.get_output_embeddings().weight.shape[0]
    candidates = torch.tensor((ok + [False] * size)[:size], device=target)
    return MaskedLM(tokenizer, model, target, dtype, candidates, _take_last_layer(model))


def _take_last_layer(model: Any) -> Any:
    """Remove a BERT-style encoder's last layer from ``model`` and return it (None: left as is).

    Only the masked positions' outputs are scored, and in the last layer nothing else depends
    on the other positions' outputs: it needs their keys and values, but their queries, the
    attention output and the feed-forward block only at the masks. Run that way it costs about
    a sixth of its full price, and the encoder as a whole (6 layers for MiniLM, 12 for BERT
    base) about 14 % or 7 % less. Models of another structure keep their layers and the full
    path.
    """
    from torch import nn

    if _head(model) is None:  # the full path runs the whole model: keep every layer
        return None
    encoder = getattr(getattr(model, "base_model", None), "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList):
        return None
    config = model.config
    if len(layers) < 2 or config.is_decoder or \
            getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return None
    last = layers[-1]
    attention = getattr(getattr(last, "attention", None), "self", None)
    needed = [(attention, ("query", "key", "value", "num_attention_heads", "attention_head_size")),
              (getattr(last, "attention", None), ("output",)), (last, ("intermediate", "output"))]
    if any(part is None or not all(hasattr(part, n) for n in names) for part, names in needed):
        return None
    del layers[-1]
    return last


def _last_layer_at(layer: Any, hidden: Any, attention_mask: Any, rows: Any, cols: Any) -> Any:
    """The output of BERT layer ``layer`` at positions (rows, cols) only, given its full input."""
    import torch.nn.functional as F

    att = layer.attention.self
    heads, size = att.num_attention_heads, att.attention_head_size
    batch, length, _ = hidden.shape

    def split(x: Any) -> Any:  # (batch, length, heads * size) -> (batch, heads, length, size)
        return x.view(batch, length, heads, size).transpose(1, 2)

    keys, values = split(att.key(hidden))[rows], split(att.value(hidden))[rows]
    at = hidden[rows, cols]  # (masks, hidden)
    query = att.query(at).view(-1, heads, 1, size)
    allowed = attention_mask[rows].bool()[:, None, None, :]
    context = F.scaled_dot_product_attention(query, keys, values, attn_mask=allowed,
                                             scale=size ** -0.5)
    attended = layer.attention.output(context.reshape(-1, heads * size), at)
    return layer.output(layer.intermediate(attended), attended)


def _missing(name: str, exc: Exception) -> str:
    return (f"masked language model {name!r} is not available offline ({type(exc).__name__}). "
            "Download it once where there is internet (it then sits in the Hugging Face cache), "
            "or set the transform's `model` field or the AUGSVC_MLM environment variable to a "
            "local folder holding a masked LM and its tokenizer")


def _window(ids: list[int], spans: list[tuple[int, int]], word: Word, size: int, mask_id: int,
            ) -> tuple[list[int], int] | None:
    """Token ids of a window of ``size`` - 2 tokens around ``word``, the word as one mask."""
    inside = [i for i, (s, e) in enumerate(spans) if s < word.end and e > word.start]
    if not inside:
        return None
    first, last = inside[0], inside[-1]
    budget = size - 3  # [CLS], [SEP] and the mask itself
    after = len(ids) - last - 1
    left_count = min(first, budget // 2)
    right_count = min(after, budget - left_count)
    left_count = min(first, budget - right_count)  # give unused right-hand room to the left
    left = first - left_count
    window = [*ids[left:first], mask_id, *ids[last + 1:last + 1 + right_count]]
    return window, first - left


def _joint_window(ids: list[int], spans: list[tuple[int, int]], chosen: list[Word], size: int,
                  mask_id: int) -> tuple[list[int], list[int]] | None:
    """The whole text with every chosen word as one mask, if it fits in ``size`` - 2 tokens."""
    context: list[int] = []
    positions: list[int] = []
    pos = 0
    for word in chosen:
        inside = [i for i, (s, e) in enumerate(spans) if s < word.end and e > word.start]
        if not inside or inside[0] < pos:
            return None
        context += ids[pos:inside[0]]
        positions.append(len(context))
        context.append(mask_id)
        pos = inside[-1] + 1
    context += ids[pos:]
    return (context, positions) if len(context) <= size - 2 else None


def _head(model: Any) -> Any:
    """The model's prediction head (BERT's ``cls``, RoBERTa's ``lm_head``), or None."""
    return getattr(model, "cls", None) or getattr(model, "lm_head", None)


def _mask_scores(mlm: MaskedLM, ids: Any, attention: Any, rows: Any, cols: Any) -> Any:
    """Vocabulary scores at the masked positions only.

    The prediction head is applied to the masked positions alone when the model exposes it
    (BERT's ``cls``, RoBERTa's ``lm_head``): scoring every position against a 30k vocabulary
    would cost about as much as the encoder itself.
    """
    head = _head(mlm.model)
    if head is not None:
        hidden = mlm.model.base_model(input_ids=ids, attention_mask=attention).last_hidden_state
        if mlm.last_layer is not None:
            return head(_last_layer_at(mlm.last_layer, hidden, attention, rows, cols)).float()
        return head(hidden[rows, cols]).float()
    return mlm.model(input_ids=ids, attention_mask=attention).logits[rows, cols].float()


def _options(tokens: list[str], values: list[float], original: str,
             stopwords: frozenset[str] | set[str], top_k: int) -> list[tuple[float, str]]:
    """The ``top_k`` best (score, token) substitutes for ``original``, best first (ties by token).

    ``values`` come sorted from best to worst. The word-family check is the costly filter, so
    candidates are taken in score order only until the k-th is settled: once k are kept, a
    lower score can no longer enter, while an equal one still can (ties go by token).
    """
    kept: list[tuple[float, str]] = []
    lower = original.lower()
    for value, token in zip(values, tokens, strict=True):
        score = round(value, _ROUND)
        if len(kept) >= top_k and score < kept[top_k - 1][0]:
            break
        if value > -math.inf and token.lower() != lower and token.lower() not in stopwords \
                and not same_word_family(token, original):
            kept.append((score, token))
    return sorted(kept, key=lambda o: (-o[0], o[1]))[:top_k]


@dataclass(frozen=True, slots=True)
class _Job:
    """One model input: one or more masked words of one sample."""

    sample: TextSample
    words: tuple[Word, ...]  # in text order
    context: tuple[int, ...]  # token ids without [CLS]/[SEP], one mask per word
    positions: tuple[int, ...]  # the masks' places in ``context``, one per word


def contextual(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Replace randomly chosen words by what the masked LM predicts in their place."""
    mlm = load_mlm(params["model"] or default_model(), params["device"], params["precision"])
    stopwords = stopword_set(params)
    size = min(params["window"], getattr(mlm.tokenizer, "model_max_length", 512) or 512, 512)
    chosen = _choose_words(samples, params, stopwords)
    jobs = _masked_jobs(mlm.tokenizer, chosen, size, params["joint"])
    picks: dict[int, list[tuple[Word, str]]] = {}
    for length, batch in _batches(jobs, params["batch_size"]):
        for sample, word, options in _batch_options(mlm, length, batch, stopwords,
                                                    params["top_k"]):
            if options:
                new = _draw(sample, word, options, params["temperature"])
                picks.setdefault(id(sample), []).append((word, new))
    _apply_picks(samples, picks)


def _choose_words(samples: list[TextSample], params: Mapping[str, Any],
                  stopwords: frozenset[str] | set[str]) -> list[tuple[TextSample, list[Word]]]:
    """Each sample's words to replace, in text order; samples with none are left out.

    Every sample draws here, before any substitute is drawn, so a sample's stream does not
    depend on how the model inputs are later batched.
    """
    todo: list[tuple[TextSample, list[Word]]] = []
    for sample in samples:
        found = [w for w in words(sample.text) if w.is_alpha and w.text.lower() not in stopwords]
        chosen = [found[i] for i in
                  sorted(sample.rng.sample(range(len(found)), count_to_change(len(found), params)))]
        if chosen:
            todo.append((sample, chosen))
    return todo


def _masked_jobs(tok: Any, todo: list[tuple[TextSample, list[Word]]], size: int,
                 joint: bool) -> list[_Job]:
    """The model inputs for every sample's chosen words, all texts tokenized in one call."""
    if not todo:
        return []
    encoded = tok([sample.text for sample, _ in todo], add_special_tokens=False,
                  return_offsets_mapping=True)
    jobs: list[_Job] = []
    for (sample, chosen), ids, spans in zip(todo, encoded["input_ids"],
                                            encoded["offset_mapping"], strict=True):
        jobs += _sample_jobs(sample, chosen, ids, spans, size, tok.mask_token_id, joint)
    return jobs


def _sample_jobs(sample: TextSample, chosen: list[Word], ids: list[int],
                 spans: list[tuple[int, int]], size: int, mask_id: int, joint: bool,
                 ) -> list[_Job]:
    """The model inputs for one sample's chosen words.

    All of them masked in one input when ``joint`` and the text fits (BERT is trained with
    many masks at once); otherwise (long texts, or joint masking off) one window per word.
    """
    together = _joint_window(ids, spans, chosen, size, mask_id) if joint else None
    if together is not None:
        return [_Job(sample, tuple(chosen), tuple(together[0]), tuple(together[1]))]
    jobs: list[_Job] = []
    for word in chosen:
        placed = _window(ids, spans, word, size, mask_id)
        if placed is not None:
            jobs.append(_Job(sample, (word,), tuple(placed[0]), (placed[1],)))
    return jobs


def _batches(jobs: list[_Job], batch_size: int) -> list[tuple[int, list[_Job]]]:
    """(padded length, jobs) for each forward pass.

    Inputs are padded to a length that depends only on their own size (the next multiple of
    8) and batched with inputs of that length: no sample's input depends on its neighbours.
    """
    buckets: dict[int, list[_Job]] = {}
    for job in jobs:
        buckets.setdefault(-(-(len(job.context) + 2) // _BUCKET) * _BUCKET, []).append(job)
    return [(length, group[lo:lo + batch_size])
            for length, group in sorted(buckets.items())
            for lo in range(0, len(group), batch_size)]


def _batch_scores(mlm: MaskedLM, length: int, batch: list[_Job]) -> Any:
    """Vocabulary scores, one row per masked word in job order; non-candidates at -inf.

    Padding is left out of attention, so a row's scores do not depend on the batch.
    """
    import torch

    tok = mlm.tokenizer
    ids = torch.full((len(batch), length), tok.pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(batch), length), dtype=torch.long)
    rows: list[int] = []
    cols: list[int] = []
    for row, job in enumerate(batch):
        full = [tok.cls_token_id, *job.context, tok.sep_token_id]
        ids[row, : len(full)] = torch.tensor(full)
        attention[row, : len(full)] = 1
        rows += [row] * len(job.positions)
        cols += [1 + p for p in job.positions]
    with torch.inference_mode():
        scores = _mask_scores(mlm, ids.to(mlm.device), attention.to(mlm.device),
                              torch.tensor(rows, device=mlm.device),
                              torch.tensor(cols, device=mlm.device))
    return scores.masked_fill(~mlm.candidates, -math.inf)


def _batch_options(mlm: MaskedLM, length: int, batch: list[_Job],
                   stopwords: frozenset[str] | set[str], top_k: int,
                   ) -> list[tuple[TextSample, Word, list[tuple[float, str]]]]:
    """Each masked word of ``batch`` with its substitutes, best first.

    The 8 extra top scores leave room for those the filters in ``_options`` drop.
    """
    import torch

    scores = _batch_scores(mlm, length, batch)
    top = torch.topk(scores, min(top_k + 8, scores.shape[1]), dim=1)
    masked = [(job.sample, word) for job in batch for word in job.words]
    return [(sample, word, _options(mlm.tokenizer.convert_ids_to_tokens(indices), values,
                                    word.text, stopwords, top_k))
            for (sample, word), values, indices in zip(masked, top.values.tolist(),
                                                       top.indices.tolist(), strict=True)]


def _draw(sample: TextSample, word: Word, options: list[tuple[float, str]],
          temperature: float) -> str:
    """A substitute for ``word`` drawn from ``options`` (best first), in the word's case.

    Drawn in token order, not score order: a little float noise (another precision, another
    CPU) then changes the weights a little but not which token a draw lands on.
    """
    best = options[0][0]
    ordered = sorted(options, key=lambda o: o[1])
    weights = [math.exp((v - best) / temperature) for v, _ in ordered]
    choice = sample.rng.choices([t for _, t in ordered], weights=weights)[0]
    return match_case(word.text, choice)


def _apply_picks(samples: list[TextSample], picks: dict[int, list[tuple[Word, str]]]) -> None:
    """Write each sample's substitutes into its text and record them, left to right."""
    for sample in samples:
        edits = []
        for word, new in sorted(picks.get(id(sample), []), key=lambda p: p[0].start):
            edits.append(Edit(word.start, word.end, new))
            sample.ops.append({"op": "contextual", "position": word.start, "original": word.text,
                               "substitute": new})
        sample.text = apply_edits(sample.text, edits)
