"""The masked language model behind contextual substitution: loading it, and scoring masks.

``load_mlm`` loads any Hugging Face masked LM by id or local path, and refuses a checkpoint
without a trained masked-LM head (a sentence encoder, a plain ``BertModel``): transformers would
put a random head on it, and the substitutes would be random words. ``mask_scores`` runs the
model and scores the masked positions only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from augsvc.resources import TRANSFORMERS_LOCK, ResourceError
from augsvc.text.stopwords import STOPWORDS

__all__ = ["DEFAULT_MLM", "MaskedLM", "choose_dtype", "default_model", "load_mlm", "mask_scores"]

DEFAULT_MLM = "bert-base-uncased"


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


def load_mlm(name: str, device: str = "auto", precision: str = "auto") -> MaskedLM:
    """Load a masked LM by Hugging Face id or local path (local files first); loaded once,
    whichever thread asks first.

    Raises:
        ResourceError: neither a local folder nor the local Hugging Face cache has it and it
            cannot be downloaded (the message names AUGSVC_MLM and the spec field); it has no
            [MASK] token; or its checkpoint has no trained masked-LM head (see ``_random_head``).
    """
    with TRANSFORMERS_LOCK:
        return _load_mlm(name, device, precision)


@lru_cache(maxsize=2)
def _load_mlm(name: str, device: str, precision: str) -> MaskedLM:
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    def load(local_only: bool) -> tuple[Any, Any, Any]:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
        model, info = AutoModelForMaskedLM.from_pretrained(name, local_files_only=local_only,
                                                           output_loading_info=True)
        return tokenizer, model, info

    try:
        tokenizer, model, info = load(local_only=True)
    except (OSError, ValueError) as first:
        if Path(name).exists() or os.environ.get("HF_HUB_OFFLINE") == "1":
            raise ResourceError(_missing(name, first)) from first
        try:
            tokenizer, model, info = load(local_only=False)
        except (OSError, ValueError) as second:
            raise ResourceError(_missing(name, second)) from second
    if tokenizer.mask_token_id is None:
        raise ResourceError(f"{name} has no [MASK] token: it is not a masked language model")
    random_head = _random_head(model, info)
    if random_head:
        raise ResourceError(
            f"model {name!r} has no masked-LM head: its checkpoint lacks "
            f"{', '.join(p + '.*' for p in random_head)} (the head would be random, and so "
            "would the words); use a masked LM such as bert-base-uncased or distilroberta-base")
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


def _random_head(model: Any, info: Mapping[str, Any]) -> list[str]:
    """The modules of the masked-LM head that transformers initialised at random, or [].

    ``info`` is ``from_pretrained``'s loading info. Everything outside the base model
    (``model.base_model_prefix``: BERT's ``cls.predictions``, RoBERTa's ``lm_head``,
    DistilBERT's ``vocab_transform``/``vocab_layer_norm``/``vocab_projector``) is the head; a
    checkpoint of an encoder alone (a sentence encoder, a plain ``BertModel``) lacks it. The
    decoder weight tied to the input embeddings is not reported missing (transformers ties it
    to the loaded embeddings), so a masked LM that stores it only once passes.
    """
    base = getattr(model, "base_model_prefix", "")
    keys = {key for key in info.get("missing_keys", ())
            if not base or not key.startswith(base + ".")}
    keys |= {key for key, *_ in info.get("mismatched_keys", ())
             if not base or not key.startswith(base + ".")}
    heads: dict[str, list[str]] = {}  # top-level module: the deepest module holding its keys
    for key in sorted(keys):
        path = key.split(".")[:-1] or [key]
        common = heads.setdefault(path[0], path)
        while path[:len(common)] != common:
            common = common[:-1]
        heads[path[0]] = common
    return [".".join(parts) for parts in heads.values()]


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


def _head(model: Any) -> Any:
    """The model's prediction head (BERT's ``cls``, RoBERTa's ``lm_head``), or None."""
    return getattr(model, "cls", None) or getattr(model, "lm_head", None)


def mask_scores(mlm: MaskedLM, ids: Any, attention: Any, rows: Any, cols: Any) -> Any:
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
