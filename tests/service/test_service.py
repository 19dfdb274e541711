"""The gRPC service on a real server over loopback: results, errors, health, reflection."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from augsvc.image import ImagePipeline, list_image_transforms
from augsvc.service.server import SERVICE_NAME, build_server
from augsvc.text import TextPipeline
from augsvc.wire.tensors import Encoded, Limits, encode_with_tensor, from_tensor, serialize, to_tensor
from augsvc.wire.v1 import augment_pb2 as pb
from augsvc.wire.v1 import augment_pb2_grpc as pb_grpc
from tests.conftest import structured_image

SPEC = {"transforms": [{"name": "random_crop", "height": 40, "width": 40},
                       {"name": "shift_scale_rotate", "p": 0.8},
                       {"name": "brightness_contrast", "p": 0.5}]}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    server, port = build_server("127.0.0.1:0", workers=4, limits=Limits(max_samples=8))
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
        yield chan
    server.stop(0)


def images_request(images: list[np.ndarray], **kw: object) -> pb.AugmentImagesRequest:
    return pb.AugmentImagesRequest(
        pipeline=pb.Pipeline(spec_json=json.dumps(SPEC)),
        samples=[pb.ImageSample(image=pb.Image(array=to_tensor(im))) for im in images], **kw)


def test_images_match_the_library_byte_for_byte(channel: grpc.Channel) -> None:
    stub = pb_grpc.AugmenterStub(channel)
    images = [structured_image(seed=k) for k in range(5)]
    reply = stub.AugmentImages(images_request(images, seed=3, start_index=100, request_id="r1",
                                              return_params=True))
    assert reply.request_id == "r1" and [s.index for s in reply.samples] == list(range(100, 105))
    local = ImagePipeline(SPEC).batch(images, seed=3, start=100, return_params=True)
    for got, want in zip(reply.samples, local, strict=True):
        assert np.array_equal(from_tensor(got.image.array, "x", Limits()), want.image)
        assert json.loads(got.params_json) == json.loads(json.dumps(want.params))


def test_png_in_and_out_and_boxes(channel: grpc.Channel) -> None:
    stub = pb_grpc.AugmenterStub(channel)
    image = structured_image()
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    request = pb.AugmentImagesRequest(
        pipeline=pb.Pipeline(spec_json=json.dumps([{"name": "horizontal_flip", "p": 1}])),
        samples=[pb.ImageSample(image=pb.Image(encoded=png.tobytes()),
                                bboxes=to_tensor(np.array([[5.0, 10, 15, 20, 7]])))],
        output_encoding=pb.ENCODING_PNG)
    sample = stub.AugmentImages(request).samples[0]
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(sample.image.encoded, np.uint8),
                                        cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(decoded, image[:, ::-1])
    assert np.allclose(from_tensor(sample.bboxes, "b", Limits()), [[65, 10, 75, 20, 7]])


def test_texts_match_the_library(channel: grpc.Channel) -> None:
    stub = pb_grpc.AugmenterStub(channel)
    spec = [{"name": "random_swap", "p": 1}, {"name": "keyboard", "p": 0.5}]
    texts = ["the quick brown fox jumps", "", "Unicode naïve café 🙂 stays here"]
    reply = stub.AugmentTexts(pb.AugmentTextsRequest(
        pipeline=pb.Pipeline(spec_json=json.dumps(spec)), texts=texts, seed=1, start_index=7, n=2,
        return_ops=True))
    local = TextPipeline(spec).batch(texts, seed=1, start=7, n=2, return_ops=True)
    assert [(s.index, s.variant, s.text) for s in reply.samples] == \
        [(r.index, r.variant, r.text) for r in local]
    assert [json.loads(s.ops_json) for s in reply.samples] == [r.ops for r in local]


def test_streams_answer_each_request_in_order(channel: grpc.Channel) -> None:
    stub = pb_grpc.AugmenterStub(channel)
    image = structured_image()
    requests = [images_request([image], seed=0, start_index=i, request_id=f"q{i}") for i in range(4)]
    replies = list(stub.StreamAugmentImages(iter(requests)))
    assert [r.request_id for r in replies] == ["q0", "q1", "q2", "q3"]
    local = [ImagePipeline(SPEC)(image, seed=0, index=i).image for i in range(4)]
    for reply, want in zip(replies, local, strict=True):
        assert np.array_equal(from_tensor(reply.samples[0].image.array, "x", Limits()), want)


@pytest.mark.parametrize(("request_", "code", "needle"), [
    (pb.AugmentImagesRequest(pipeline=pb.Pipeline(spec_json='{"transforms": [{"name": "rotat"}]}')),
     grpc.StatusCode.INVALID_ARGUMENT, "did you mean 'rotate'"),
    (pb.AugmentImagesRequest(pipeline=pb.Pipeline(spec_json="{nope")),
     grpc.StatusCode.INVALID_ARGUMENT, "not valid JSON"),
    (pb.AugmentImagesRequest(pipeline=pb.Pipeline(preset="nope")),
     grpc.StatusCode.INVALID_ARGUMENT, "unknown preset"),
    (pb.AugmentImagesRequest(pipeline=pb.Pipeline(preset="default"), samples=[pb.ImageSample(
        image=pb.Image(array=pb.Tensor(data=b"123", shape=[2, 2], dtype="uint8")))]),
     grpc.StatusCode.INVALID_ARGUMENT, "needs 4 bytes, got 3"),
    (pb.AugmentImagesRequest(pipeline=pb.Pipeline(preset="default"), samples=[pb.ImageSample(
        image=pb.Image(encoded=b"not an image"))]),
     grpc.StatusCode.INVALID_ARGUMENT, "cannot decode"),
    (pb.AugmentImagesRequest(pipeline=pb.Pipeline(preset="default"),
                             samples=[pb.ImageSample()] * 9),
     grpc.StatusCode.RESOURCE_EXHAUSTED, "over the limit of 8"),
])
def test_bad_requests_get_the_right_status(channel: grpc.Channel, request_: pb.AugmentImagesRequest,
                                           code: grpc.StatusCode, needle: str) -> None:
    stub = pb_grpc.AugmenterStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.AugmentImages(request_)
    assert info.value.code() == code and needle in info.value.details()
    good = stub.AugmentImages(images_request([structured_image()], seed=0))  # server still fine
    assert len(good.samples) == 1


def test_list_transforms_health_and_reflection(channel: grpc.Channel) -> None:
    listed = pb_grpc.AugmenterStub(channel).ListTransforms(pb.ListTransformsRequest())
    image_names = [t.name for t in listed.transforms if t.domain == "image"]
    assert image_names == list_image_transforms() and "default" in listed.image_presets
    crop = next(t for t in listed.transforms if t.name == "random_crop")
    assert json.loads(crop.params_json)[0]["name"] == "height" and "bboxes" in crop.targets
    assert {"synonym", "semantic_filter"} <= {t.name for t in listed.transforms
                                              if t.domain == "text"}
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    answer = next(reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        list_services="")])))
    names = {s.name for s in answer.list_services_response.service}
    assert SERVICE_NAME in names and "grpc.health.v1.Health" in names


def test_generated_code_is_current(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-Iaugsvc/wire/v1=protos/augsvc/v1",
                    f"--python_out={tmp_path}", f"--pyi_out={tmp_path}",
                    f"--grpc_python_out={tmp_path}", "augsvc/wire/v1/augment.proto"],
                   check=True, cwd=ROOT)
    for name in ("augment_pb2.py", "augment_pb2.pyi", "augment_pb2_grpc.py"):
        fresh = (tmp_path / "augsvc" / "wire" / "v1" / name).read_text()
        assert fresh == (ROOT / "augsvc" / "wire" / "v1" / name).read_text(), f"run `make proto` ({name})"


@pytest.mark.slow
def test_augsvc_serve_starts_serves_and_stops_cleanly() -> None:
    import signal
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "augsvc.cli", "serve", "--port", str(port)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
            grpc.channel_ready_future(chan).result(timeout=60)
            status = health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest())
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.returncode == 0
        assert f"on 127.0.0.1:{port}" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(("shape", "dtype"), [((0, 4, 4, 3), "uint8"), ((1, 127), "uint8"),
                                              ((2, 64), "uint8"), ((3, 50, 40, 3), "float32"),
                                              ((5, 128, 128), "uint16")])
def test_a_batch_serialized_ahead_parses_as_the_message_built_field_by_field(
        shape: tuple[int, ...], dtype: str) -> None:
    # Sizes cross the one-, two- and three-byte varint lengths (127, 128, 16384 bytes).
    array = np.random.default_rng(0).integers(0, 200, shape).astype(dtype)
    reply = pb.EpochBatch(request_id="r1", batch_index=3, num_batches=9, labels=[1, 2],
                          indices=[10, 11])
    encoded = encode_with_tensor(reply, "stacked", array)
    want = pb.EpochBatch()
    want.CopyFrom(reply)
    want.stacked.CopyFrom(to_tensor(array))
    assert pb.EpochBatch.FromString(encoded.wire) == want
    assert np.array_equal(from_tensor(pb.EpochBatch.FromString(encoded.wire).stacked, "x", Limits()),
                          array)
    assert serialize(encoded) == encoded.wire and serialize(want) == want.SerializeToString()
    assert isinstance(encoded, Encoded) and encoded.message is reply and not reply.HasField("stacked")
