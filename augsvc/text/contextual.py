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

    auto: bfloat16 on a GPU that has it, else float16; on a CPU bfloat16 when it computes it
    natively (AVX512-BF16 or AMX tiles; about twice float32's speed there), else float32.
    """
    import torch

    if precision != "auto":
        return getattr(torch, precision)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return torch.bfloat16 if native else torch.float32


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


def _options(tokens: list[str], values: list[float], original: str, stop: frozenset[str] | set[str],
             top_k: int) -> list[tuple[float, str]]:
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
        if value > -math.inf and token.lower() != lower and token.lower() not in stop \
                and not same_word_family(token, original):
            kept.append((score, token))
    return sorted(kept, key=lambda o: (-o[0], o[1]))[:top_k]


def contextual(samples: list[TextSample], params: Mapping[str, Any]) -> None:
    """Replace randomly chosen words by what the masked LM predicts in their place."""
    import torch

    mlm = load_mlm(params["model"] or default_model(), params["device"], params["precision"])
    tok = mlm.tokenizer
    stop = stopword_set(params)
    size = min(params["window"], getattr(tok, "model_max_length", 512) or 512, 512)
    # A job: one model input holding one or more masked words of one sample.
    jobs: list[tuple[TextSample, list[Word], list[int], list[int]]] = []
    todo: list[tuple[TextSample, list[Word]]] = []
    for sample in samples:
        found = [w for w in words(sample.text) if w.is_alpha and w.text.lower() not in stop]
        chosen = [found[i] for i in
                  sorted(sample.rng.sample(range(len(found)), count_to_change(len(found), params)))]
        if chosen:
            todo.append((sample, chosen))
    encoded = tok([sample.text for sample, _ in todo], add_special_tokens=False,
                  return_offsets_mapping=True) if todo else {"input_ids": [], "offset_mapping": []}
    for (sample, chosen), ids, offsets in zip(todo, encoded["input_ids"],
                                              encoded["offset_mapping"], strict=True):
        enc = {"input_ids": ids, "offset_mapping": offsets}
        joint = _joint_window(enc["input_ids"], enc["offset_mapping"], chosen, size,
                              tok.mask_token_id) if params["joint"] else None
        if joint is not None:
            jobs.append((sample, chosen, joint[0], joint[1]))
            continue
        for word in chosen:  # long texts, or joint masking off: one window per word
            placed = _window(enc["input_ids"], enc["offset_mapping"], word, size,
                             tok.mask_token_id)
            if placed is not None:
                jobs.append((sample, [word], placed[0], [placed[1]]))
    # Inputs are padded to a length that depends only on their own size (the next multiple of
    # 8) and batched with inputs of that length: no sample's input depends on its neighbours.
    buckets: dict[int, list[tuple[TextSample, list[Word], list[int], list[int]]]] = {}
    for job in jobs:
        buckets.setdefault(-(-(len(job[2]) + 2) // _BUCKET) * _BUCKET, []).append(job)
    batches = [(length, group[lo:lo + params["batch_size"]])
               for length, group in sorted(buckets.items())
               for lo in range(0, len(group), params["batch_size"])]
    picks: dict[int, list[tuple[Word, str]]] = {}
    for length, part in batches:
        ids = torch.full((len(part), length), tok.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(part), length), dtype=torch.long)
        rows, cols = [], []
        for row, (_, _, context, positions) in enumerate(part):
            full = [tok.cls_token_id, *context, tok.sep_token_id]
            ids[row, : len(full)] = torch.tensor(full)
            attention[row, : len(full)] = 1
            rows += [row] * len(positions)
            cols += [1 + p for p in positions]
        with torch.inference_mode():
            scores = _mask_scores(mlm, ids.to(mlm.device), attention.to(mlm.device),
                                  torch.tensor(rows, device=mlm.device),
                                  torch.tensor(cols, device=mlm.device))
        scores = scores.masked_fill(~mlm.candidates, -math.inf)
        top = torch.topk(scores, min(params["top_k"] + 8, scores.shape[1]), dim=1)
        masked = [(sample, word) for sample, chosen, _, _ in part for word in chosen]
        for (sample, word), values, indices in zip(masked, top.values.tolist(),
                                                   top.indices.tolist(), strict=True):
            options = _options(tok.convert_ids_to_tokens(indices), values, word.text, stop,
                               params["top_k"])
            if not options:
                continue
            best = options[0][0]
            # Drawn in token order, not score order: a little float noise (another precision,
            # another CPU) then changes the weights a little but not which token a draw lands on.
            options.sort(key=lambda o: o[1])
            weights = [math.exp((v - best) / params["temperature"]) for v, _ in options]
            choice = sample.rng.choices([t for _, t in options], weights=weights)[0]
            picks.setdefault(id(sample), []).append((word, match_case(word.text, choice)))
    for sample in samples:
        edits = []
        for word, new in sorted(picks.get(id(sample), []), key=lambda p: p[0].start):
            edits.append(Edit(word.start, word.end, new))
            sample.ops.append({"op": "contextual", "position": word.start, "original": word.text,
                               "substitute": new})
        sample.text = apply_edits(sample.text, edits)
