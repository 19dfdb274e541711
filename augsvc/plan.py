"""The epoch plan: which samples an epoch visits, in what order, in which shard and batch.

Every function is a pure function of its arguments, so any process or replica that is asked for
(seed, epoch, shard, batch) computes the same indices: a stream resumed elsewhere continues
exactly where it stopped, and shards never overlap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from augsvc.errors import InputError
from augsvc.seeding import MAX_SEED, key_entropy, pcg64_state

__all__ = ["EpochPlan", "Part", "augment_index", "augment_indices", "check_int", "epoch_batches",
           "epoch_order", "num_batches", "part_indices", "seeded_permutation"]

Part = Literal["all", "train", "holdout"]


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; InputError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InputError(f"{name} must be {bound}, got {value}")
    return int(value)


def seeded_permutation(kind: str, size: int, seed: int, number: int) -> np.ndarray:
    """A permutation of ``range(size)``: indices sorted by PCG64 raw 64-bit draws.

    Sorting raw draws, rather than ``Generator.permutation``, keeps the order fixed across numpy
    versions (PCG64's stream is stable; Generator methods' algorithms may change), so replicas on
    different installs agree. Ties (chance ~ size**2 / 2**65) fall back to index order.
    """
    # Its own key space: ``sample_entropy(seed, epoch)`` already belongs to the augmentation of
    # sample ``epoch``, and an order must not share draws with it.
    bits: np.random.BitGenerator = np.random.PCG64()
    bits.state = pcg64_state(key_entropy(f"augsvc:{kind}:{seed}:{number}"))
    return np.argsort(np.asarray(bits.random_raw(size), np.uint64), kind="stable").astype(np.int64)


@lru_cache(maxsize=8)
def _permutation(kind: str, size: int, seed: int, number: int) -> np.ndarray:
    """:func:`seeded_permutation`, cached and read-only: a server streams many batches of one epoch."""
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


def augment_indices(epoch: int, size: int, indices: Sequence[int] | np.ndarray) -> list[int]:
    """The pipeline indices samples ``indices`` of a ``size``-sample dataset are augmented as in
    ``epoch``: ``epoch * size + index``, the one rule every path follows (in-process datasets,
    the trainer's sources, the server's epochs, the client's remote augmentation).

    No two (epoch, index) pairs share draws, and the result does not depend on shard or batch.
    ``size`` is the whole dataset's, also when an epoch covers only a part of it.

    Raises:
        InputError (a ValueError): negative epoch, or an index not in ``range(size)``.
    """
    check_int("epoch", epoch, 0)
    check_int("size", size, 1)
    for index in indices:
        check_int("index", index, 0, size - 1)
    base = int(epoch) * int(size)
    return [base + int(index) for index in indices]


def augment_index(epoch: int, index: int, size: int) -> int:
    """:func:`augment_indices` of one sample."""
    return augment_indices(epoch, size, [index])[0]


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


@dataclass(frozen=True, eq=False)
class EpochPlan:
    """One epoch of one shard: which samples, in which batches, augmented as which indices.

    The server's StreamEpoch, the trainer's local and remote sources and the client's datasets
    all plan through this class, so a batch means the same samples everywhere.

    Attributes:
        size: samples in the whole dataset (the augment indices are counted in it).
        seed, epoch: the run's seed and the epoch number.
        batch_size: samples per batch (the last batch of a shard may be short).
        part: the dataset indices the epoch covers (see :func:`part_indices`); None for all.
        shard, num_shards: this stream's share of every epoch.
        shuffle: False visits the part in order (still sharded): evaluation, or a caller's order.

    Raises:
        InputError (a ValueError): an argument out of range; the message names it.
    """

    size: int
    seed: int
    epoch: int
    batch_size: int
    part: np.ndarray | None = None
    shard: int = 0
    num_shards: int = 1
    shuffle: bool = True

    def __post_init__(self) -> None:
        check_int("size", self.size, 0)
        check_int("seed", self.seed, 0, MAX_SEED)
        check_int("epoch", self.epoch, 0)
        check_int("batch_size", self.batch_size, 1)
        check_int("num_shards", self.num_shards, 1)
        check_int("shard", self.shard, 0, self.num_shards - 1)

    @classmethod
    def over_part(cls, size: int, *, seed: int, epoch: int, batch_size: int, part: Part = "all",
                  holdout_fraction: float = 0.0, limit: int = 0, shard: int = 0,
                  num_shards: int = 1) -> EpochPlan:
        """The plan of an epoch over a part of the dataset (``StreamEpoch``'s part and limit)."""
        indices = part_indices(size, part=part, holdout_fraction=holdout_fraction, seed=seed,
                               limit=limit)
        return cls(size, seed, epoch, batch_size, indices, shard, num_shards)

    @property
    def part_size(self) -> int:
        """Samples the epoch covers, in all shards."""
        return self.size if self.part is None else len(self.part)

    @property
    def num_batches(self) -> int:
        """Batches of this shard."""
        return num_batches(self.part_size, batch_size=self.batch_size, shard=self.shard,
                           num_shards=self.num_shards)

    def positions(self, start_batch: int = 0) -> Iterator[np.ndarray]:
        """The batches from ``start_batch`` on, as positions in the part (read-only arrays)."""
        if self.shuffle:
            return epoch_batches(self.part_size, seed=self.seed, epoch=self.epoch,
                                 batch_size=self.batch_size, shard=self.shard,
                                 num_shards=self.num_shards, start_batch=start_batch)
        check_int("start_batch", start_batch, 0, self.num_batches)
        mine = np.arange(self.shard, self.part_size, self.num_shards)
        step = self.batch_size
        return (mine[k: k + step] for k in range(int(start_batch) * step, len(mine), step))

    def batches(self, start_batch: int = 0) -> Iterator[np.ndarray]:
        """The batches from ``start_batch`` on, as dataset indices."""
        part = self.part
        return (positions if part is None else part[positions]
                for positions in self.positions(start_batch))

    def augment_indices(self, indices: Sequence[int] | np.ndarray) -> list[int]:
        """The pipeline indices of dataset samples ``indices`` in this epoch (:func:`augment_indices`)."""
        return augment_indices(self.epoch, self.size, indices)

    def for_epoch(self, epoch: int) -> EpochPlan:
        """The same plan for another epoch."""
        return dataclasses.replace(self, epoch=epoch)
