"""ListDatasets and StreamEpoch on real servers: the library's bytes, exactly once, resumable."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from augsvc.client import AugmentClient
from augsvc.client.datasets import RemoteAugmentDataset, RemoteEpochDataset
from augsvc.datasets import open_dataset
from augsvc.image.pipeline import ImagePipeline
from augsvc.image.presets import image_preset
from augsvc.plan import augment_index, part_indices
from augsvc.service.epochs import EpochStreamer
from augsvc.service.process import ServerProcess
from augsvc.service.server import build_server
from augsvc.service.slots import SlotPool
from augsvc.text.pipeline import TextPipeline
from augsvc.wire.tensors import Limits
from tests.conftest import structured_image

SMALL = {"transforms": [{"name": "shift_scale_rotate", "p": 0.9},
                        {"name": "brightness_contrast", "p": 0.5}, {"name": "horizontal_flip"}]}
TEXT_SPEC = {"transforms": [{"name": "random_swap", "aug_p": 0.3}]}


@pytest.fixture(scope="module")
def npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (50, 12, 12, 3), dtype=np.uint8),
             y=np.arange(50) % 5)
    return path


@pytest.fixture(scope="module")
def servers(npz: Path) -> Iterator[list[str]]:
    """Two servers: one builds batches inline, the other on a pool of 2 worker processes."""
    made = []
    for workers in (0, 2):
        epochs = EpochStreamer({"tiny": str(npz)}, limits=Limits(max_samples=300), workers=workers)
        server, port = build_server("127.0.0.1:0", limits=Limits(max_samples=300), epochs=epochs)
        server.start()
        made.append((server, port, epochs))
    yield [f"127.0.0.1:{port}" for _, port, _ in made]
    for server, _, epochs in made:
        server.stop(0)
        epochs.close()


def _collect(address: str, dataset: str, spec: object = "digits", **kw: object) -> list[object]:
    with AugmentClient(address) as client:
        return list(client.stream_epoch(dataset, spec, **kw))


def test_list_datasets_has_builtins_and_configured_files(servers: list[str]) -> None:
    with AugmentClient(servers[0]) as client:
        found = {d["name"]: d for d in client.list_datasets()}
    assert {"digits", "lfw_subset", "skimage", "wordnet_glosses", "tiny"} <= set(found)
    assert found["digits"]["size"] == 1797 and found["digits"]["class_names"][:2] == ["0", "1"]
    assert found["tiny"]["kind"] == "image" and found["tiny"]["size"] == 50


def test_epoch_is_the_library_output_exactly_once(servers: list[str]) -> None:
    batches = _collect(servers[0], "digits", seed=4, epoch=2, batch_size=200, part="train",
                       holdout_fraction=0.2)
    train = part_indices(1797, part="train", holdout_fraction=0.2, seed=4)
    seen = np.concatenate([b.indices for b in batches])
    assert sorted(seen.tolist()) == train.tolist()  # every training sample, once
    assert [b.batch_index for b in batches] == list(range(len(batches)))
    dataset, pipeline = open_dataset("digits"), ImagePipeline(image_preset("digits"))
    first = batches[0]
    for k in (0, 7, 199):
        index = int(first.indices[k])
        image, label = dataset.sample(index)
        want = pipeline(image, seed=4, index=augment_index(2, index, 1797)).image
        assert np.array_equal(first.samples[k], want) and first.labels[k] == label


def test_pool_and_inline_servers_send_the_same_bytes(servers: list[str]) -> None:
    kw = {"seed": 1, "epoch": 0, "batch_size": 64, "shard": 1, "num_shards": 3}
    inline, pooled = (_collect(address, "digits", **kw) for address in servers)
    assert len(inline) == len(pooled) == 10
    for a, b in zip(inline, pooled, strict=True):
        assert a.indices.tolist() == b.indices.tolist()
        assert all(np.array_equal(x, y) for x, y in zip(a.samples, b.samples, strict=True))


def test_shards_are_disjoint_and_cover_the_epoch(servers: list[str]) -> None:
    seen = [np.concatenate([b.indices for b in _collect(servers[1], "tiny", None, seed=0, epoch=5,
                                                          batch_size=7, shard=k, num_shards=3)])
            for k in range(3)]
    assert sorted(np.concatenate(seen).tolist()) == list(range(50))
    assert [len(s) for s in seen] == [17, 17, 16]


def test_resume_from_a_batch_gives_the_tail(servers: list[str]) -> None:
    kw = {"seed": 3, "epoch": 1, "batch_size": 8}
    whole = _collect(servers[0], "tiny", None, **kw)
    tail = _collect(servers[1], "tiny", None, start_batch=4, **kw)
    assert [b.batch_index for b in tail] == list(range(4, 7))
    assert [b.indices.tolist() for b in tail] == [b.indices.tolist() for b in whole[4:]]


def test_text_epochs_are_augmented_by_the_text_pipeline(servers: list[str]) -> None:
    batch = _collect(servers[0], "wordnet_glosses", TEXT_SPEC, seed=2, epoch=1, batch_size=16,
                     limit=16, part="train", holdout_fraction=0.1)[0]
    dataset = open_dataset("wordnet_glosses")
    texts, labels = dataset.samples(batch.indices)
    want = TextPipeline(TEXT_SPEC).batch(
        texts, seed=2, indices=[augment_index(1, int(i), len(dataset)) for i in batch.indices])
    assert batch.samples == [w.text for w in want] and batch.labels.tolist() == labels.tolist()
    assert batch.samples != texts  # random_swap changed something


@pytest.mark.parametrize(("kw", "code", "message"), [
    ({"dataset": "nope"}, grpc.StatusCode.INVALID_ARGUMENT, "unknown dataset 'nope'"),
    ({"batch_size": 0}, grpc.StatusCode.INVALID_ARGUMENT, "batch_size must be >= 1"),
    ({"batch_size": 301}, grpc.StatusCode.RESOURCE_EXHAUSTED, "batch_size 301 is over the limit"),
    ({"shard": 3, "num_shards": 3}, grpc.StatusCode.INVALID_ARGUMENT, "shard must be in [0, 2]"),
    ({"start_batch": 9}, grpc.StatusCode.INVALID_ARGUMENT, "start_batch must be in [0, 7]"),
    ({"spec": {"transforms": [{"name": "flip_it"}]}}, grpc.StatusCode.INVALID_ARGUMENT, "flip_it"),
    ({"spec": "nope"}, grpc.StatusCode.INVALID_ARGUMENT, "unknown preset 'nope'; image presets:"),
    ({"holdout_fraction": 1.5, "part": "train"}, grpc.StatusCode.INVALID_ARGUMENT,
     "holdout_fraction must be"),
])
def test_bad_requests_get_a_status_and_the_server_keeps_serving(
        servers: list[str], kw: dict[str, object], code: grpc.StatusCode, message: str) -> None:
    args: dict[str, object] = {"dataset": "tiny", "spec": None, "seed": 0, "epoch": 0,
                               "batch_size": 8, **kw}
    with AugmentClient(servers[0]) as client:
        with pytest.raises(grpc.RpcError) as info:
            list(client.stream_epoch(args.pop("dataset"), args.pop("spec"), **args))  # type: ignore[arg-type]
        assert info.value.code() == code and message in info.value.details()
        assert len(list(client.stream_epoch("tiny", None, seed=0, epoch=0, batch_size=25))) == 2


def test_remote_dataset_prefetches_and_splits_over_dataloader_workers(servers: list[str]) -> None:
    import torch
    from torch.utils.data import DataLoader

    dataset = RemoteEpochDataset(servers, "tiny", None, seed=0, batch_size=5, prefetch=2)
    single = [(x, y) for x, y in dataset]
    assert sum(len(y) for _, y in single) == 50 and single[0][0].shape == (5, 3, 12, 12)
    loader = DataLoader(dataset, batch_size=None, num_workers=2)
    labels = torch.cat([y for _, y in loader])
    assert sorted(labels.tolist()) == sorted(torch.cat([y for _, y in single]).tolist())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_a_server_killed_mid_epoch_is_resumed_on_the_other_replica() -> None:
    # The second replica starts only after the stream began, so the stream is on the first one.
    first = ServerProcess(["--log-level", "WARNING"])
    b = f"127.0.0.1:{_free_port()}"
    second: ServerProcess | None = None
    try:
        with AugmentClient([first.address, b]) as client:
            client.wait_ready()
            stream = client.stream_epoch("digits", "digits", seed=9, epoch=0, batch_size=60,
                                         part="train", holdout_fraction=0.2, retries=7, backoff=0.25)
            got = [next(stream) for _ in range(3)]
            second = ServerProcess(["--log-level", "WARNING", "--port", b.rsplit(":", 1)[1]])
            first.process.send_signal(signal.SIGKILL)
            first.process.wait()
            got += list(stream)
        seen = np.concatenate([batch.indices for batch in got])
        train = part_indices(1797, part="train", holdout_fraction=0.2, seed=9)
        assert sorted(seen.tolist()) == train.tolist()  # nothing lost, nothing twice
        assert [batch.batch_index for batch in got] == list(range(len(got))) and len(got) == 24
    finally:
        for server in (first, second):
            if server is not None:
                server.stop()


def test_unary_calls_take_explicit_global_indices(servers: list[str]) -> None:
    images = [structured_image(seed=k) for k in range(3)]
    with AugmentClient(servers[0]) as client:
        remote = client.augment_images(images, SMALL, seed=5, indices=[900, 3, 41])
        texts = client.augment_texts(["the quick brown fox jumps", "a b c d e f"], TEXT_SPEC,
                                     seed=5, indices=[17, 2])
        with pytest.raises(grpc.RpcError) as info:
            client.augment_images(images, SMALL, seed=5, indices=[1, 2])
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "indices has 2 entries for 3 samples" in info.value.details()
    local = ImagePipeline(SMALL).batch(images, seed=5, indices=[900, 3, 41])
    assert all(np.array_equal(r.image, lo.image) for r, lo in zip(remote, local, strict=True))
    assert [r.index for r in remote] == [900, 3, 41]
    want = TextPipeline(TEXT_SPEC).batch(["the quick brown fox jumps", "a b c d e f"], seed=5,
                                         indices=[17, 2])
    assert [t.text for t in texts] == [w.text for w in want]


def test_remote_augment_dataset_equals_the_in_process_dataset(servers: list[str]) -> None:
    import torch
    from torch.utils.data import DataLoader

    from augsvc.image.dataset import AugmentedImageDataset

    base = [(structured_image(48, 48, seed=k), k % 3) for k in range(21)]
    remote = RemoteAugmentDataset(servers, base, SMALL, seed=8, batch_size=4, epoch=2, prefetch=3)
    local = AugmentedImageDataset(base, SMALL, seed=8, epoch=2)
    seen: list[int] = []
    for x, y in remote:
        assert x.dtype == torch.uint8 and x.shape[1:] == (3, 48, 48)
        for image, label in zip(x, y, strict=True):
            match = [i for i in range(len(base)) if torch.equal(local[i][0], image)]
            assert len(match) == 1 and base[match[0]][1] == int(label)
            seen.append(match[0])
    assert sorted(seen) == list(range(21))  # every sample once, in the epoch's shuffled order
    workers = DataLoader(remote, batch_size=None, num_workers=2)
    assert sum(len(y) for _, y in workers) == 21


def test_text_presets_by_name_over_unary_and_epoch_calls(servers: list[str]) -> None:
    texts = ["The quick brown fox jumps over the lazy dog near the river bank."] * 3
    with AugmentClient(servers[0]) as client:
        remote = client.augment_texts(texts, "eda", seed=4, n=2)
        batch = next(client.stream_epoch("wordnet_glosses", "synonym", seed=1, epoch=0,
                                         batch_size=8))
        with pytest.raises(grpc.RpcError) as info:
            client.augment_texts(texts, "seed7", seed=4)
    assert [r.text for r in remote] == [r.text for r in TextPipeline("eda").batch(texts, seed=4, n=2)]
    dataset = open_dataset("wordnet_glosses")
    originals, _ = dataset.samples(batch.indices)
    want = TextPipeline("synonym").batch(originals, seed=1, indices=[int(i) for i in batch.indices])
    assert batch.samples == [w.text for w in want]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown preset 'seed7'" in \
        info.value.details()


class _KillsItsWorkers(EpochStreamer):
    """Kills every batch worker once, on the server, right after the first batch is built.

    Killing from the test after the client's first batch would race: tiny batches are
    built and buffered by gRPC flow control before the client reads one. Here the kill
    lands while most of the epoch is still to be submitted, so the pool must break.
    """

    killed: ProcessPoolExecutor | None = None

    def _message(self, *args: Any, **kwargs: Any) -> Any:
        pool = self.pool()
        if self.killed is None and pool is not None:
            self.killed = pool
            for pid in list(pool._processes):
                os.kill(pid, signal.SIGKILL)
        return super()._message(*args, **kwargs)


def test_a_dead_batch_worker_is_replaced_and_the_stream_resumes(npz: Path) -> None:
    epochs = _KillsItsWorkers({"tiny": str(npz)}, workers=2)
    server, port = build_server("127.0.0.1:0", epochs=epochs)
    server.start()
    try:
        with AugmentClient(f"127.0.0.1:{port}") as client:
            got = list(client.stream_epoch("tiny", SMALL, seed=0, epoch=0, batch_size=5,
                                           backoff=0.05))
            again = list(client.stream_epoch("tiny", SMALL, seed=0, epoch=0, batch_size=5))
        assert epochs.killed is not None and epochs.pool() is not epochs.killed  # a fresh pool
        assert sorted(np.concatenate([b.indices for b in got]).tolist()) == list(range(50))
        assert [b.batch_index for b in got] == list(range(10))
        for a, b in zip(got, again, strict=True):
            assert all(np.array_equal(x, y) for x, y in zip(a.samples, b.samples, strict=True))
    finally:
        server.stop(0)
        epochs.close()


def test_concurrent_inline_streams_keep_the_library_bytes(servers: list[str]) -> None:
    # Batches built on request threads: each thread must have its own pipeline (they hold
    # random state), or concurrent streams would mix their draws.
    from concurrent.futures import ThreadPoolExecutor

    kw = {"seed": 6, "epoch": 1, "batch_size": 50, "limit": 200, "part": "train",
          "holdout_fraction": 0.1}
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: _collect(servers[0], "digits", **kw), range(4)))
    dataset, pipeline = open_dataset("digits"), ImagePipeline(image_preset("digits"))
    for batches in runs:
        for batch in batches:
            for index, image in zip(batch.indices, batch.samples, strict=True):
                want = pipeline(dataset.sample(int(index))[0], seed=6,
                                index=augment_index(1, int(index), 1797)).image
                assert np.array_equal(image, want)


def test_pooled_image_batches_travel_through_reused_shared_memory_slots() -> None:
    kw = {"seed": 2, "batch_size": 100, "limit": 600}
    epochs = EpochStreamer(workers=2)
    server, port = build_server("127.0.0.1:0", epochs=epochs)
    server.start()
    try:
        runs = [_collect(f"127.0.0.1:{port}", "digits", epoch=e, **kw) for e in range(3)]
        held = epochs._slots._held
        with AugmentClient(f"127.0.0.1:{port}") as client:  # leaves after one batch
            stream = client.stream_epoch("digits", "digits", epoch=3, **kw)
            next(stream)
            stream.close()  # cancels the call
        deadline = time.monotonic() + 30
        while sum(s.size for s in epochs._slots._free) < epochs._slots._held and \
                time.monotonic() < deadline:
            time.sleep(0.05)  # the abandoned batches' workers finish, then give their slots back
        free, after = sum(s.size for s in epochs._slots._free), epochs._slots._held
    finally:
        server.stop(0)
        epochs.close()
    slot = runs[0][0].stacked.nbytes
    # the first window of the first epoch learns the size; then window + 1 slots are reused
    assert slot <= held <= (epochs.window + 1) * slot
    assert free == after == held
    dataset, pipeline = open_dataset("digits"), ImagePipeline(image_preset("digits"))
    chosen = sorted(np.concatenate([b.indices for b in runs[0]]).tolist())
    assert len(set(chosen)) == 600
    for epoch, batches in enumerate(runs):
        assert sorted(np.concatenate([b.indices for b in batches]).tolist()) == chosen
        for batch in batches[-2:]:  # sent from slots
            index = int(batch.indices[-1])
            want = pipeline(dataset.sample(index)[0], seed=2,
                            index=augment_index(epoch, index, 1797)).image
            assert np.array_equal(batch.samples[-1], want)


def test_without_shared_memory_room_batches_travel_pickled_and_stay_the_same() -> None:
    kw = {"seed": 5, "epoch": 1, "batch_size": 64, "limit": 300}
    inline = EpochStreamer()
    starved = EpochStreamer(workers=2)
    starved._slots = SlotPool(budget=0)
    got = []
    for epochs in (inline, starved):
        server, port = build_server("127.0.0.1:0", epochs=epochs)
        server.start()
        try:
            got.append(_collect(f"127.0.0.1:{port}", "digits", **kw))
        finally:
            server.stop(0)
            epochs.close()
    assert starved._slots._held == 0
    for a, b in zip(*got, strict=True):
        assert np.array_equal(a.stacked, b.stacked) and a.indices.tolist() == b.indices.tolist()


def test_slots_are_reserved_up_front_and_refused_when_the_memory_is_not_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slots = SlotPool(budget=64 * 1024 * 1024)
    try:
        slot = slots.take(4 * 1024 * 1024)
        assert slot is not None
        assert os.fstat(slot._fd).st_blocks * 512 >= slot.size  # pages allocated, not promised
        slots.give(slot)

        def full(fd: int, offset: int, length: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "posix_fallocate", full)
        assert slots.take(8 * 1024 * 1024) is None  # the worker would have died of SIGBUS
        assert slots._held == 4 * 1024 * 1024
        assert slots.take(4 * 1024 * 1024) is slot  # a reserved free slot is still handed out
    finally:
        slots.close()
