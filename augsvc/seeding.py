"""Per-sample random streams: the output for sample ``i`` under seed ``s`` depends only on (s, i).

Every sample gets 256 bits of entropy, derived from ``(seed, index)`` with BLAKE2b (or drawn
from the OS when no seed is given). Those bits reset a reusable PCG64 ``numpy`` generator and a
``random.Random`` in place, which costs a few microseconds, instead of building new generators
for every transform of a pipeline the way ``albumentations``' ``set_random_seed`` does.
"""

from __future__ import annotations

import _random
import hashlib
import os
import random
from typing import Any

import numpy as np

from augsvc.errors import InputError

__all__ = ["MAX_SEED", "SampleRandom", "check_seed", "key_entropy", "pcg64_state", "sample_entropy"]

MAX_SEED = 2**64 - 1
_MASK128 = (1 << 128) - 1


_INTEGERS = (int, np.integer)


def check_seed(seed: int | None, index: int) -> None:
    """Raise :class:`InputError` unless ``seed`` is None or in [0, 2**64) and ``index`` >= 0."""
    if type(seed) is int and type(index) is int and 0 <= seed <= MAX_SEED and index >= 0:
        return  # the common case, checked in one line
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, _INTEGERS):
            raise InputError(f"seed must be an integer or None, got {type(seed).__name__}")
        if not 0 <= int(seed) <= MAX_SEED:
            raise InputError(f"seed must be in [0, 2**64 - 1], got {seed}")
    if isinstance(index, bool) or not isinstance(index, _INTEGERS) or index < 0:
        raise InputError(f"sample index must be a non-negative integer, got {index!r}")


def key_entropy(key: str) -> int:
    """256 bits derived from ``key`` with BLAKE2b: every seeded random stream of augsvc (a
    sample's augmentation, an epoch's order, a holdout split) starts from the bits of its own key."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=32).digest(), "little")


def pcg64_state(entropy: int) -> dict[str, Any]:
    """The PCG64 state that 256 bits of entropy select: 128 bits of state, 128 of (odd) increment."""
    return {"bit_generator": "PCG64", "state": {"state": entropy >> 128, "inc": (entropy & _MASK128) | 1},
            "has_uint32": 0, "uinteger": 0}


def sample_entropy(seed: int | None, index: int, variant: int = 0) -> int:
    """Return 256 bits of entropy for sample ``index`` under ``seed`` (fresh OS entropy if None).

    ``variant`` numbers further augmentations of the same sample (text's ``n``); variant 0 is
    the sample itself, so an image and a text sample with the same index share nothing else.
    """
    if seed is None:
        return int.from_bytes(os.urandom(32), "little")
    return key_entropy(f"augsvc:{int(seed)}:{int(index)}" + (f":{int(variant)}" if variant else ""))


class SampleRandom:
    """A numpy generator and a ``random.Random`` that are re-seeded in place for every sample.

    Transforms keep references to ``numpy`` and ``python``; :meth:`reseed` changes their state
    without replacing the objects, so nothing needs to be re-wired between samples.
    """

    def __init__(self) -> None:
        self.numpy = np.random.Generator(np.random.PCG64())
        self.python = random.Random()

    def reseed(self, seed: int | None, index: int) -> None:
        """Put both generators in the state that belongs to sample ``index`` under ``seed``."""
        entropy = sample_entropy(seed, index)
        # random.Random.seed(int) minus its Python-level argument dispatch (~1 us per sample).
        _random.Random.seed(self.python, entropy)
        self.python.gauss_next = None  # type: ignore[attr-defined]
        self.numpy.bit_generator.state = pcg64_state(entropy)
