"""The epoch plan: which samples an epoch visits, in what order, in which shard and batch.

Every function is a pure function of its arguments, so any process or replica that is asked for
(seed, epoch, shard, batch) computes the same indices: a stream resumed elsewhere continues
exactly where it stopped, and shards never overlap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from augsvc.errors import InputError
from augsvc.seeding import MAX_SEED

__all__ = ["Part", "augment_index", "check_int", "epoch_batches", "epoch_order", "num_batches",
           "part_indices", "seeded_permutation"]

Part = Literal["all", "train", "holdout"]


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; InputError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InputError(f"{name} must be {bound}, got {value}")
    return int(value)


def _plan_entropy(kind: str, seed: int, number: int) -> int:
    """256 bits for a plan. Its own key space: ``sample_entropy(seed, epoch)`` already belongs to
    the augmentation of sample ``epoch``, and the order must not share draws with it."""
    digest = hashlib.blake2b(f"augsvc:{kind}:{seed}:{number}".encode(), digest_size=32).digest()
    return int.from_bytes(digest, "little")


def seeded_permutation(kind: str, size: int, seed: int, number: int) -> np.ndarray:
    """A permutation of ``range(size)``: indices sorted by PCG64 raw 64-bit draws.

    Sorting raw draws, rather than ``Generator.permutation``, keeps the order fixed across numpy
    versions (PCG64's stream is stable; Generator methods' algorithms may change), so replicas on
    different installs agree. Ties (chance ~ size**2 / 2**65) fall back to index order.
    """
    entropy = _plan_entropy(kind, seed, number)
    bits = np.random.PCG64()
    bits.state = {"bit_generator": "PCG64", "has_uint32": 0, "uinteger": 0,
                  "state": {"state": entropy >> 128, "inc": (entropy & ((1 << 128) - 1)) | 1}}
    return np.argsort(np.asarray(bits.random_raw(size), np.uint64), kind="stable").astype(np.int64)


@lru_cache(maxsize=8)
def _permutation(kind: str, size: int, seed: int, number: int) -> np.ndarray:
    """:func:`_raw_permutation`, cached and read-only: a server streams many batches of one epoch."""
    order = seeded_permutation(kind, size, seed, number)
    order.flags.writeable = False
    return order


def _check_plan(size: int, seed: int, epoch: int, shard: int, num_shards: int) -> None:
    check_int("size", size, 0)
    check_int("seed", seed, 0, MAX_SEED)
    check_int("epoch", epoch, 0)
    check_int("num_shards", num_shards, 1)
    check_int("shard", shard, 0, num_shards - 1)


def epoch_order(size: int, *, seed: int, epoch: int, shard: int = 0, num_shards: int = 1) -> np.ndarray:
    """The order in which shard ``shard`` of ``num_shards`` visits ``range(size)`` in one epoch.

    The epoch's permutation depends only on (size, seed, epoch); shard k takes every
    ``num_shards``-th entry from position k, so shards are disjoint, cover everything, and differ
    in length by at most one.

    Returns:
        A read-only int64 array of dataset indices.

    Raises:
        InputError (a ValueError): an argument is not a non-negative integer, or shard is not in
            ``range(num_shards)``; the message names it.
    """
    _check_plan(size, seed, epoch, shard, num_shards)
    return _permutation("epoch-order", int(size), int(seed), int(epoch))[int(shard)::int(num_shards)]


def num_batches(size: int, *, batch_size: int, shard: int = 0, num_shards: int = 1) -> int:
    """How many batches shard ``shard`` of ``num_shards`` has in an epoch (the last may be short).

    Raises:
        InputError (a ValueError): bad size, batch_size, shard or num_shards.
    """
    check_int("size", size, 0)
    check_int("batch_size", batch_size, 1)
    check_int("num_shards", num_shards, 1)
    check_int("shard", shard, 0, num_shards - 1)
    shard_size = len(range(shard, size, num_shards))
    return -(-shard_size // batch_size)


def epoch_batches(size: int, *, seed: int, epoch: int, batch_size: int, shard: int = 0,
                  num_shards: int = 1, start_batch: int = 0) -> Iterator[np.ndarray]:
    """The batches of :func:`epoch_order`, from batch ``start_batch`` on.

    Batch j is ``epoch_order(...)[j * batch_size:(j + 1) * batch_size]``, so resuming at
    ``start_batch=j`` yields exactly the tail of the full stream. Arguments are checked when
    this is called, not when iteration starts.

    Returns:
        An iterator of read-only int64 arrays of dataset indices.

    Raises:
        InputError (a ValueError): bad arguments, or start_batch not in [0, num_batches].
    """
    total = num_batches(size, batch_size=batch_size, shard=shard, num_shards=num_shards)
    check_int("start_batch", start_batch, 0, total)
    order = epoch_order(size, seed=seed, epoch=epoch, shard=shard, num_shards=num_shards)
    return (order[j * batch_size:(j + 1) * batch_size] for j in range(int(start_batch), total))


def augment_index(epoch: int, index: int, size: int) -> int:
    """The pipeline index sample ``index`` of a ``size``-sample dataset is augmented as in ``epoch``.

    ``epoch * size + index``, as in :class:`augsvc.image.dataset.AugmentedImageDataset`: no two
    (epoch, index) pairs share draws, and the result does not depend on shard or batch.
    ``size`` is the whole dataset's, also when an epoch covers only a part of it.

    Raises:
        InputError (a ValueError): negative epoch, or index not in ``range(size)``.
    """
    check_int("epoch", epoch, 0)
    check_int("size", size, 1)
    check_int("index", index, 0, size - 1)
    return int(epoch) * int(size) + int(index)


def part_indices(size: int, *, part: Part = "all", holdout_fraction: float = 0.0, seed: int = 0,
                 limit: int = 0) -> np.ndarray:
    """The dataset indices a part covers (the ``Part`` / ``limit`` fields of ``StreamEpoch``).

    A seeded permutation of ``range(size)`` (from ``seed`` alone, not the epoch) puts
    ``round(holdout_fraction * size)`` indices in the holdout and the rest in train; "all" is
    everything. ``limit`` > 0 keeps the first ``limit`` indices of the part in that permutation's
    order, a seeded random subset rather than the start of a dataset that may be sorted by class.
    Plan an epoch over the part with ``part[epoch_order(len(part), ...)]``.

    Returns:
        A sorted int64 array of dataset indices.

    Raises:
        InputError (a ValueError): unknown part, fraction not in [0, 1), negative limit or seed.
    """
    check_int("size", size, 0)
    check_int("seed", seed, 0, MAX_SEED)
    check_int("limit", limit, 0)
    if part not in ("all", "train", "holdout"):
        raise InputError(f"part must be one of all, train, holdout; got {part!r}")
    if isinstance(holdout_fraction, bool) or not isinstance(holdout_fraction, int | float) \
            or not 0.0 <= holdout_fraction < 1.0:
        raise InputError(f"holdout_fraction must be a number in [0, 1), got {holdout_fraction!r}")
    if part == "all" and not limit:
        return np.arange(size, dtype=np.int64)
    order = _permutation("holdout", int(size), int(seed), 0)
    n_holdout = round(holdout_fraction * size) if part != "all" else 0
    chosen = order[:n_holdout] if part == "holdout" else order[n_holdout:]
    if limit:
        chosen = chosen[:limit]
    return np.sort(chosen)
