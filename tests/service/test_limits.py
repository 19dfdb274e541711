"""Requests the server cannot afford are refused before any work, each with its status and a reason."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from augsvc.errors import BusyError, LimitError
from augsvc.service.config import ConfigError, ServeConfig
from augsvc.service.errors import status_for
from augsvc.service.memory_budget import (
    MemoryBudget,
    machine_memory,
    memory_ceiling,
    parse_memory,
)
from augsvc.service.metrics import Metrics
from augsvc.service.server import build_server
from augsvc.wire.metadata import RETRY_PUSHBACK_KEY
from augsvc.wire.tensors import Limits, to_tensor
from augsvc.wire.v1 import augment_pb2 as pb
from augsvc.wire.v1 import augment_pb2_grpc as pb_grpc
from tests.conftest import wait_for

BUDGET = MemoryBudget(64 * 2**20)
LIMITS = Limits(max_pixels=4_000_000, max_reply_bytes=8 * 2**20, max_text_variants=1000,
                max_spec_bytes=100_000)


@pytest.fixture(scope="module")
def stub() -> Iterator[pb_grpc.AugmenterStub]:
    server, port = build_server("127.0.0.1:0", workers=4, limits=LIMITS, budget=BUDGET)
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}",
                               options=[("grpc.max_receive_message_length", -1)]) as channel:
        yield pb_grpc.AugmenterStub(channel)
    server.stop(0)


def images(spec: Any, arrays: list[np.ndarray] | None = None, **kw: Any) -> pb.AugmentImagesRequest:
    arrays = arrays if arrays is not None else [np.zeros((8, 8, 3), np.uint8)]
    return pb.AugmentImagesRequest(
        pipeline=pb.Pipeline(spec_json=spec if isinstance(spec, str) else json.dumps(spec)),
        samples=[pb.ImageSample(image=pb.Image(array=to_tensor(a))) for a in arrays], seed=0, **kw)


def refused(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height and whose pixel data is a few bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize(("spec", "named"), [
    ([{"name": "random_crop", "height": 60000, "width": 60000, "pad_if_needed": True}],
     "random_crop would make a 60000x60000 image from 8x8"),
    ([{"name": "resize", "height": 65536, "width": 65536}],
     "resize would make a 65536x65536 image from 8x8"),
    ([{"some_of": [{"name": "horizontal_flip"},
                   {"name": "random_resized_crop", "height": 3000, "width": 3000}], "n": 1}],
     "random_resized_crop would make a 3000x3000 image"),
])
def test_a_pipeline_that_would_make_a_huge_image_is_refused(stub: pb_grpc.AugmenterStub,
                                                            spec: Any, named: str) -> None:
    error = refused(stub.AugmentImages, images(spec))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"samples[0]: {named}" in error.details()
    assert "over the limit of 4000000 pixels per image" in error.details()


def test_a_request_whose_replies_add_up_over_the_limit_is_refused(stub: pb_grpc.AugmenterStub) -> None:
    spec = [{"name": "resize", "height": 1000, "width": 1000}]  # 3 MB each: fine alone
    error = refused(stub.AugmentImages, images(spec, [np.zeros((8, 8, 3), np.uint8)] * 3))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "9000000 bytes, over the reply limit of 8388608" in error.details()
    reply = stub.AugmentImages(images(spec, [np.zeros((8, 8, 3), np.uint8)] * 2), timeout=30)
    assert [tuple(s.image.array.shape) for s in reply.samples] == [(1000, 1000, 3)] * 2


def test_normalize_counts_four_bytes_a_value(stub: pb_grpc.AugmenterStub) -> None:
    spec = [{"name": "resize", "height": 1000, "width": 1000}, {"name": "normalize"}]
    error = refused(stub.AugmentImages, images(spec))  # 1000 x 1000 x 3 x 4 = 12 MB
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "12000000 bytes" in error.details()


@pytest.mark.parametrize(("payload", "code", "words"), [
    (b"", grpc.StatusCode.INVALID_ARGUMENT, "the encoded image is empty"),
    (png_header(100_000, 100_000), grpc.StatusCode.RESOURCE_EXHAUSTED, "decompression bomb"),
    (png_header(30_000, 30_000), grpc.StatusCode.RESOURCE_EXHAUSTED, "decompression bomb"),
    (png_header(3000, 2000), grpc.StatusCode.RESOURCE_EXHAUSTED,
     "header says 3000x2000 (width x height) pixels, over the limit of 4000000"),
    (png_header(40, 30)[:40], grpc.StatusCode.INVALID_ARGUMENT, "cannot decode"),
    (b"\xff\xd8\xff\xe0garbage", grpc.StatusCode.INVALID_ARGUMENT, "cannot decode"),
])
def test_bad_encoded_images_get_their_status(stub: pb_grpc.AugmenterStub, payload: bytes,
                                             code: grpc.StatusCode, words: str) -> None:
    request = pb.AugmentImagesRequest(pipeline=pb.Pipeline(preset="default"),
                                      samples=[pb.ImageSample(image=pb.Image(encoded=payload))])
    error = refused(stub.AugmentImages, request)
    assert error.code() == code
    assert words in error.details() and error.details().startswith("samples[0].image")


def _nested_one_of(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"name": "horizontal_flip"}
    for _ in range(levels):
        node = {"one_of": [node]}
    return {"transforms": [node]}


@pytest.mark.parametrize(("spec", "code", "words"), [
    ("[" * 20_000 + "]" * 20_000, grpc.StatusCode.INVALID_ARGUMENT, "nested more than"),
    ("[" * 100_000 + "]" * 100_000, grpc.StatusCode.RESOURCE_EXHAUSTED, "over the limit of 100000"),
    ('{"transforms": [' + '{"one_of": [' * 5000, grpc.StatusCode.INVALID_ARGUMENT, "nested more than"),
    (json.dumps(_nested_one_of(400)), grpc.StatusCode.INVALID_ARGUMENT, "nested more than"),
    (json.dumps(_nested_one_of(17)), grpc.StatusCode.INVALID_ARGUMENT,
     "groups are nested more than 16 levels deep"),
    (json.dumps([{"name": "horizontal_flip"}] * 1001), grpc.StatusCode.INVALID_ARGUMENT,
     "more than 1000 transforms and groups"),
    (json.dumps([{"name": "horizontal_flip", "pad": "x" * 100_000}]),
     grpc.StatusCode.RESOURCE_EXHAUSTED, "over the limit of 100000"),
    ('[{"name": "horizontal_flip"}', grpc.StatusCode.INVALID_ARGUMENT, "not valid JSON"),
])
def test_deep_huge_or_broken_specs_get_their_status(stub: pb_grpc.AugmenterStub, spec: str,
                                                    code: grpc.StatusCode, words: str) -> None:
    error = refused(stub.AugmentImages, images(spec))
    assert error.code() == code and words in error.details()


def test_sixteen_levels_of_groups_still_work(stub: pb_grpc.AugmenterStub) -> None:
    reply = stub.AugmentImages(images(json.dumps(_nested_one_of(16))), timeout=30)
    assert len(reply.samples) == 1


def test_albumentations_dicts_are_bounded_too(stub: pb_grpc.AugmenterStub) -> None:
    node: dict[str, Any] = {"__class_fullname__": "HorizontalFlip", "p": 0.5}
    for _ in range(20):  # 41 levels of JSON: under the text check, over the composition check
        node = {"__class_fullname__": "OneOf", "transforms": [node], "p": 1.0}
    spec = {"__version__": "2.0.8", "transform": {"__class_fullname__": "Compose",
                                                  "transforms": [node], "p": 1.0}}
    error = refused(stub.AugmentImages, images(spec))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "compositions are nested more than 16 levels deep" in error.details()


def test_texts_times_n_has_a_limit(stub: pb_grpc.AugmenterStub) -> None:
    request = pb.AugmentTextsRequest(pipeline=pb.Pipeline(spec_json='[{"name": "random_swap"}]'),
                                     texts=["a b c"], n=1_000_000, seed=0)
    error = refused(stub.AugmentTexts, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1 texts x n=1000000 is 1000000 augmented texts, over the limit of 1000" in error.details()
    request.n = 1000
    assert len(stub.AugmentTexts(request, timeout=30).samples) == 1000


def test_stream_epoch_is_refused_before_its_first_batch(stub: pb_grpc.AugmenterStub) -> None:
    spec = json.dumps([{"name": "resize", "height": 65536, "width": 65536}])
    request = pb.StreamEpochRequest(dataset="digits", batch_size=4, seed=0,
                                    pipeline=pb.Pipeline(spec_json=spec))
    error = refused(lambda r, timeout: list(stub.StreamEpoch(r, timeout=timeout)), request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "resize would make a 65536x65536 image" in error.details()


def test_stream_epoch_batches_are_bounded_by_the_reply_limit(stub: pb_grpc.AugmenterStub) -> None:
    spec = json.dumps([{"name": "resize", "height": 1000, "width": 1000}])  # 1 MB a gray digit
    request = pb.StreamEpochRequest(dataset="digits", batch_size=16, seed=0, limit=32,
                                    pipeline=pb.Pipeline(spec_json=spec))
    error = refused(lambda r, timeout: list(stub.StreamEpoch(r, timeout=timeout)), request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "ask for" not in error.details() and "over the reply limit of 8388608" in error.details()


def test_a_request_over_the_memory_budget_is_refused_for_good(stub: pb_grpc.AugmenterStub) -> None:
    # A 600x600 float reply (4.3 MB) is within the reply limit, but the 2000x2000 input is held
    # on the way: 3 x 48 MB (counted as float32 throughout) is over the 64 MiB budget.
    spec = [{"name": "random_crop", "height": 600, "width": 600}, {"name": "normalize"}]
    error = refused(stub.AugmentImages, images(spec, [np.zeros((2000, 2000, 3), np.uint8)]))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "more than this server's budget of 64 MiB (--max-memory)" in error.details()


def test_a_request_that_does_not_fit_now_is_asked_to_retry(stub: pb_grpc.AugmenterStub) -> None:
    spec = [{"name": "resize", "height": 1000, "width": 1000}]  # needs 5 x 3 MB
    with BUDGET.reserve(60 * 2**20, "a request in flight"), pytest.raises(grpc.RpcError) as info:
        stub.AugmentImages(images(spec), timeout=30)
    error: Any = info.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "retry in 1 s" in error.details()
    assert dict(error.trailing_metadata())[RETRY_PUSHBACK_KEY] == "1000"
    assert len(stub.AugmentImages(images(spec), timeout=30).samples) == 1  # free again


def test_the_budget_holds_and_releases_reservations() -> None:
    budget = MemoryBudget(100)
    with pytest.raises(LimitError, match="more than this server's budget"), budget.reserve(101):
        pass
    inside = threading.Event()
    with budget.reserve(60):
        inside.set()
        with pytest.raises(BusyError) as busy, budget.reserve(41):
            pass
        assert busy.value.retry_after == 1.0
        with budget.reserve(40):
            assert budget.reserved == 100
    assert budget.reserved == 0 and inside.is_set()
    with pytest.raises(RuntimeError), budget.reserve(100):
        raise RuntimeError("a failing request")
    assert budget.reserved == 0  # released however the request ends


@pytest.mark.parametrize(("text", "value"), [
    ("8GiB", 8 * 2**30), ("512MB", 512 * 10**6), ("1.5g", 1_500_000_000), ("3000000000", 3_000_000_000),
    ("auto", "auto"), ("AUTO", "auto"), ("off", "off"), ("0", "off"),
    ("12", None), ("lots", None), ("8 parsecs", None), ("-1G", None),
])
def test_memory_settings_parse(text: str, value: Any) -> None:
    assert parse_memory(text) == value


def test_auto_shares_most_of_the_machine_among_processes() -> None:
    assert memory_ceiling("auto", 1) == int(machine_memory() * 0.8)
    assert memory_ceiling("auto", 4) == int(machine_memory() * 0.8) // 4
    assert memory_ceiling("off") is None and memory_ceiling("2GiB", 4) == 2 * 2**30
    assert ServeConfig(max_memory="6GiB", processes=2).memory_ceiling == 6 * 2**30
    with pytest.raises(ConfigError, match=r"max_memory: is not allowed.*allowed: auto, off, or a size"):
        ServeConfig(max_memory="plenty")


def test_memory_errors_are_resource_exhausted() -> None:
    code, message = status_for(MemoryError("Unable to allocate 10.1 GiB"))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-memory" in message


CEILING_PROGRAM = """
import numpy as np
from augsvc.image import ImagePipeline
from augsvc.service.memory_budget import apply_ceiling
apply_ceiling(2 * 2**30)
pipeline = ImagePipeline([{"name": "random_crop", "height": 40000, "width": 40000, "pad_if_needed": True}])
try:
    pipeline(np.zeros((8, 8, 3), np.uint8), seed=0)
except MemoryError as exc:
    print("MemoryError", exc)
small = ImagePipeline([{"name": "random_crop", "height": 400, "width": 400, "pad_if_needed": True}])
print("after", small(np.zeros((8, 8, 3), np.uint8), seed=0).image.shape)
"""


def test_the_ceiling_turns_an_allocation_the_accounting_missed_into_a_memory_error() -> None:
    # In a child process: the ceiling is process-wide and must not bind the test runner.
    out = subprocess.run([sys.executable, "-c", CEILING_PROGRAM], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "MemoryError augmenting sample 0" in out or "MemoryError Unable to allocate" in out
    assert "after (400, 400, 3)" in out  # the process goes on working


def test_text_work_stops_when_the_client_has_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    # 64 long texts through a filter whose threshold is never met: 11 encoder passes of 64
    # texts (tens of seconds of CPU) if the server ignored that the client's deadline passed.
    from augsvc.text.similarity import SentenceEncoder

    passes: list[int] = []
    similarity = SentenceEncoder.similarity

    def counted(self: SentenceEncoder, *args: Any) -> list[float]:
        passes.append(1)
        return similarity(self, *args)

    monkeypatch.setattr(SentenceEncoder, "similarity", counted)
    metrics = Metrics()
    server, port = build_server("127.0.0.1:0", workers=2, observers=[metrics])
    server.start()
    spec = [{"semantic_filter": [{"name": "keyboard", "aug_p": 0.7}], "threshold": 1.0,
             "retries": 10}]
    long_text = " ".join(["The quick brown fox jumps over the lazy dog."] * 40)
    request = pb.AugmentTextsRequest(pipeline=pb.Pipeline(spec_json=json.dumps(spec)), seed=0,
                                     texts=[long_text] * 64)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, \
                pytest.raises(grpc.RpcError) as info:
            pb_grpc.AugmenterStub(channel).AugmentTexts(request, timeout=0.5)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def ended() -> dict[str, float]:
            return {code: metrics.value("grpc_server_handled_total", grpc_type="unary_unary",
                                        grpc_service="augsvc.v1.Augmenter",
                                        grpc_method="AugmentTexts", grpc_code=code)
                    for code in ("OK", "CANCELLED", "DEADLINE_EXCEEDED")}
        # its handler has returned, and the call ended as the client's deadline ended it
        wait_for(lambda: any(ended().values()), 300, "the server never ended the call")
        assert ended() == {"OK": 0, "CANCELLED": 0, "DEADLINE_EXCEEDED": 1}
    finally:
        server.stop(0)
    assert 1 <= len(passes) < 11  # stopped at the first check after the deadline
