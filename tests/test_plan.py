"""The epoch plan: order, shards, batches, parts and augment indices (augsvc.plan)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from augsvc.errors import InputError
from augsvc.plan import (
    EpochPlan,
    augment_index,
    augment_indices,
    epoch_batches,
    epoch_order,
    num_batches,
    part_indices,
)

PLANS = [(10, 1, 3), (10, 3, 4), (11, 4, 2), (7, 7, 1), (5, 8, 2), (1000, 3, 64), (997, 5, 10), (0, 2, 4)]


@pytest.mark.parametrize(("size", "num_shards", "batch_size"), PLANS)
def test_shards_cover_every_sample_exactly_once(size: int, num_shards: int, batch_size: int) -> None:
    delivered: list[int] = []
    lengths = []
    for shard in range(num_shards):
        batches = list(epoch_batches(size, seed=3, epoch=2, batch_size=batch_size, shard=shard,
                                     num_shards=num_shards))
        assert len(batches) == num_batches(size, batch_size=batch_size, shard=shard, num_shards=num_shards)
        assert all(len(b) == batch_size for b in batches[:-1])
        assert all(0 < len(b) <= batch_size and b.dtype == np.int64 for b in batches)
        order = epoch_order(size, seed=3, epoch=2, shard=shard, num_shards=num_shards)
        assert np.array_equal(np.concatenate(batches) if batches else np.zeros(0, np.int64), order)
        lengths.append(len(order))
        delivered += order.tolist()
    assert sorted(delivered) == list(range(size))
    assert max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize(("size", "num_shards", "batch_size"), PLANS)
def test_resume_gives_the_tail_of_the_stream(size: int, num_shards: int, batch_size: int) -> None:
    shard = num_shards - 1
    kw = {"seed": 9, "epoch": 1, "batch_size": batch_size, "shard": shard, "num_shards": num_shards}
    full = [b.tolist() for b in epoch_batches(size, **kw)]
    for start in range(len(full) + 1):
        assert [b.tolist() for b in epoch_batches(size, start_batch=start, **kw)] == full[start:]


def test_plan_is_a_pure_function_and_varies_with_seed_and_epoch() -> None:
    base = epoch_order(500, seed=1, epoch=0)
    assert sorted(base.tolist()) == list(range(500)) and base.tolist() != list(range(500))
    assert np.array_equal(epoch_order(500, seed=1, epoch=0), base)
    assert not np.array_equal(epoch_order(500, seed=1, epoch=1), base)
    assert not np.array_equal(epoch_order(500, seed=2, epoch=0), base)
    assert np.array_equal(epoch_order(500, seed=np.uint64(1), epoch=np.int64(0)), base)  # type: ignore[arg-type]
    assert not base.flags.writeable
    # Pinned: a change here breaks resuming a stream across servers of different versions.
    assert epoch_order(10, seed=0, epoch=0).tolist() == [2, 8, 9, 5, 6, 4, 0, 3, 7, 1]
    assert epoch_order(10, seed=1234, epoch=3, shard=1, num_shards=3).tolist() == [5, 1, 6]
    assert len(epoch_order(10, seed=2**64 - 1, epoch=2**40)) == 10


@pytest.mark.parametrize(("call", "match"), [
    (lambda: epoch_order(10, seed=-1, epoch=0), r"seed must be in \[0, 18446744073709551615\]"),
    (lambda: epoch_order(10, seed=0, epoch=-2), "epoch must be >= 0"),
    (lambda: epoch_order(10, seed=1.5, epoch=0),  # type: ignore[arg-type]
     "seed must be an integer, got float"),
    (lambda: epoch_order(10, seed=True, epoch=0), "seed must be an integer, got bool"),
    (lambda: epoch_order(-1, seed=0, epoch=0), "size must be >= 0"),
    (lambda: epoch_order(10, seed=0, epoch=0, shard=2, num_shards=2), r"shard must be in \[0, 1\]"),
    (lambda: epoch_order(10, seed=0, epoch=0, num_shards=0), "num_shards must be >= 1"),
    (lambda: epoch_batches(10, seed=0, epoch=0, batch_size=0), "batch_size must be >= 1"),
    (lambda: epoch_batches(10, seed=0, epoch=0, batch_size=3, start_batch=5),
     r"start_batch must be in \[0, 4\]"),
    (lambda: epoch_batches(10, seed=0, epoch=0, batch_size=3, start_batch=-1), r"start_batch must be in"),
    (lambda: augment_index(0, 10, 10), r"index must be in \[0, 9\]"),
    (lambda: part_indices(10, part="test"),  # type: ignore[arg-type]
     "part must be one of all, train, holdout"),
    (lambda: part_indices(10, part="train", holdout_fraction=1.0),
     r"holdout_fraction must be a number in \[0, 1\)"),
])
def test_plan_argument_errors_name_the_field(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_augment_index_matches_the_in_process_dataset_convention() -> None:
    assert augment_index(0, 5, 10) == 5
    assert augment_index(3, 5, 10) == 35
    seen = {augment_index(e, i, 7) for e in range(4) for i in range(7)}
    assert seen == set(range(28))


def test_parts_split_the_dataset_by_seed() -> None:
    train = part_indices(100, part="train", holdout_fraction=0.2, seed=4)
    holdout = part_indices(100, part="holdout", holdout_fraction=0.2, seed=4)
    assert len(holdout) == 20 and len(train) == 80
    assert sorted(np.concatenate([train, holdout]).tolist()) == list(range(100))
    assert not np.array_equal(holdout, part_indices(100, part="holdout", holdout_fraction=0.2, seed=5))
    assert part_indices(100).tolist() == list(range(100))
    limited = part_indices(100, part="all", limit=10, seed=4)
    assert len(limited) == 10 and limited.tolist() != list(range(10))
    assert set(part_indices(100, part="train", holdout_fraction=0.2, seed=4, limit=5)) <= set(train)
    # An epoch over a part: map plan positions through the part's indices.
    batches = epoch_batches(len(holdout), seed=1, epoch=0, batch_size=6)
    streamed = np.concatenate([holdout[b] for b in batches])
    assert sorted(streamed.tolist()) == holdout.tolist()



@pytest.mark.parametrize(("size", "num_shards", "batch_size"), PLANS)
def test_an_epoch_plan_is_the_functions_over_its_part(size: int, num_shards: int,
                                                      batch_size: int) -> None:
    part = part_indices(size, part="train", holdout_fraction=0.3, seed=5) if size else None
    part_size = len(part) if part is not None else 0
    for shard in range(num_shards):
        plan = EpochPlan(size, 5, 2, batch_size, part, shard, num_shards)
        positions = list(epoch_batches(part_size, seed=5, epoch=2, batch_size=batch_size,
                                       shard=shard, num_shards=num_shards))
        assert plan.num_batches == len(positions) == num_batches(
            part_size, batch_size=batch_size, shard=shard, num_shards=num_shards)
        assert [b.tolist() for b in plan.positions()] == [p.tolist() for p in positions]
        if part is not None:
            assert [b.tolist() for b in plan.batches()] == [part[p].tolist() for p in positions]
        if plan.num_batches:
            tail = [b.tolist() for b in plan.batches(plan.num_batches - 1)]
            assert tail == [b.tolist() for b in plan.batches()][-1:]


def test_over_part_is_the_stream_epoch_request() -> None:
    plan = EpochPlan.over_part(100, seed=4, epoch=1, batch_size=8, part="holdout",
                               holdout_fraction=0.2, shard=1, num_shards=2)
    holdout = part_indices(100, part="holdout", holdout_fraction=0.2, seed=4)
    assert plan.part is not None and plan.part.tolist() == holdout.tolist()
    got = np.concatenate(list(plan.batches()))
    assert set(got) <= set(holdout) and len(got) == len(holdout) // 2
    assert plan.augment_indices(got[:3]) == [100 + int(i) for i in got[:3]]  # epoch 1 of 100


def test_augment_indices_are_the_one_rule() -> None:
    plan = EpochPlan(10, 0, 3, 4)
    assert plan.augment_indices([0, 9]) == [30, 39] == augment_indices(3, 10, np.array([0, 9]))
    assert plan.for_epoch(0).augment_indices([5]) == [5] == [augment_index(0, 5, 10)]
    with pytest.raises(InputError, match=r"index must be in \[0, 9\]"):
        plan.augment_indices([10])


def test_an_unshuffled_plan_visits_its_part_in_order_by_shard() -> None:
    plan = EpochPlan(10, 0, 7, 3, np.arange(10, 20), shard=1, num_shards=2, shuffle=False)
    assert [b.tolist() for b in plan.batches()] == [[11, 13, 15], [17, 19]]
    assert [b.tolist() for b in plan.batches(1)] == [[17, 19]]
    assert plan.num_batches == 2
    assert [b.tolist() for b in plan.for_epoch(8).batches()] == [[11, 13, 15], [17, 19]]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"shard": 2, "num_shards": 2}, r"shard must be in \[0, 1\]"),
    ({"seed": -1}, "seed must be in"),
    ({"epoch": True}, "epoch must be an integer, got bool"),
])
def test_a_bad_plan_is_refused_when_made(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        EpochPlan(**{"size": 10, "seed": 0, "epoch": 0, "batch_size": 2, **kwargs})

