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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from augsvc.text.embedding import same_word_family
from augsvc.text.mlm import MaskedLM, default_model, load_mlm, mask_scores
from augsvc.text.ops import TextSample, count_to_change
from augsvc.text.stopwords import stopword_set
from augsvc.text.tokens import Edit, Word, apply_edits, match_case, words

__all__ = ["contextual"]

_ROUND = 3  # logits are compared at this many decimals, so float noise cannot change a choice
_BUCKET = 8


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
        scores = mask_scores(mlm, ids.to(mlm.device), attention.to(mlm.device),
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
