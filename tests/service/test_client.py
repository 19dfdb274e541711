"""AugmentClient against real servers: one, and two replicas behind round_robin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import grpc
import numpy as np
import pytest

from augsvc.client import AugmentClient
from augsvc.image import ImagePipeline
from augsvc.image.io import read_image
from augsvc.service.server import build_server
from augsvc.text import TextPipeline
from augsvc.wire.images import decode_image, encode_image
from augsvc.wire.tensors import Limits
from augsvc.wire.v1 import augment_pb2 as pb
from tests.conftest import structured_image

SPEC = [{"name": "shift_scale_rotate", "p": 1}, {"name": "gamma", "p": 0.5}]


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[str]]:
    servers = [build_server("127.0.0.1:0") for _ in range(2)]
    for server, _ in servers:
        server.start()
    yield [f"127.0.0.1:{port}" for _, port in servers]
    for server, _ in servers:
        server.stop(0)


def test_client_results_equal_the_library(replicas: list[str]) -> None:
    images = [structured_image(seed=k) for k in range(4)]
    mask = np.zeros(images[0].shape[:2], np.uint8)
    mask[5:20, 5:20] = 1
    with AugmentClient(replicas[0]) as client:
        client.wait_ready()
        remote = client.augment_images(images, SPEC, seed=9, start=50, return_params=True,
                                       masks=[mask, None, None, None])
        local = ImagePipeline(SPEC).batch(images, seed=9, start=50, masks=[mask, None, None, None],
                                          return_params=True)
        for r, lo in zip(remote, local, strict=True):
            assert r.index == lo.index and np.array_equal(r.image, lo.image)
            assert r.params == lo.params
        assert np.array_equal(remote[0].mask, local[0].mask) and remote[1].mask is None
        texts = client.augment_texts(["a quick brown fox jumps"], [{"name": "random_swap"}],
                                     seed=1, n=2, return_ops=True)
        local_texts = TextPipeline([{"name": "random_swap"}]).batch(
            ["a quick brown fox jumps"], seed=1, n=2, return_ops=True)
        assert [(t.text, t.ops) for t in texts] == [(t.text, t.ops) for t in local_texts]
        assert "rotate" in {t["name"] for t in client.list_transforms()}


def test_round_robin_over_two_replicas_gives_the_same_samples(replicas: list[str]) -> None:
    image = structured_image()
    with AugmentClient(replicas) as client:
        client.wait_ready()
        outs = [client.augment_images([image], SPEC, seed=4, start=i)[0].image for i in range(6)]
    local = [ImagePipeline(SPEC)(image, seed=4, index=i).image for i in range(6)]
    assert all(np.array_equal(a, b) for a, b in zip(outs, local, strict=True))


def test_client_surfaces_server_errors(replicas: list[str]) -> None:
    with AugmentClient(replicas[0]) as client, pytest.raises(grpc.RpcError) as info:
        client.augment_images([structured_image()], [{"name": "rotat"}])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "did you mean 'rotate'" in info.value.details()
    with pytest.raises(ValueError, match="at least one address"):
        AugmentClient([])


def test_replicas_by_host_name_are_resolved(replicas: list[str]) -> None:
    named = [address.replace("127.0.0.1", "localhost") for address in replicas]
    with AugmentClient(named) as client:
        client.wait_ready()
        assert {t["name"] for t in client.list_transforms()} >= {"horizontal_flip", "synonym"}
    with pytest.raises(ValueError, match="is not host:port"):
        AugmentClient(["localhost", "localhost:1"])


def test_keypoints_round_trip_equal_the_library(replicas: list[str]) -> None:
    images = [structured_image(seed=k) for k in range(3)]
    keypoints = [np.array([[10.0, 10.0], [40.0, 30.5], [70.0, 60.0]]), None,
                 np.array([[5.0, 50.0, 1.0], [40.0, 30.0, 2.0]])]  # an extra column rides along
    boxes = [None, np.array([[4.0, 4.0, 30.0, 40.0]]), None]
    with AugmentClient(replicas[0]) as client:
        remote = client.augment_images(images, SPEC, seed=3, start=7, keypoints=keypoints,
                                       bboxes=boxes)
    for k, r in enumerate(remote):
        local = ImagePipeline(SPEC)(images[k], keypoints=keypoints[k], bboxes=boxes[k], seed=3,
                                    index=7 + k)
        assert r.index == local.index == 7 + k and np.array_equal(r.image, local.image)
        if keypoints[k] is None:
            assert r.keypoints is None
        else:
            assert r.keypoints is not None and len(r.keypoints) > 0
            assert np.array_equal(r.keypoints, local.keypoints)
        assert (r.bboxes is None) == (boxes[k] is None)
        assert r.bboxes is None or np.array_equal(r.bboxes, local.bboxes)
    assert remote[0].keypoints.shape[1] == 2 and remote[2].keypoints.shape[1] == 3  # type: ignore[union-attr]


def _mixed_images() -> list[np.ndarray]:
    """RGB, RGBA, HxW and HxWx1 uint8 images: every layout PNG carries."""
    return [structured_image(seed=1), structured_image(seed=2, channels=4),
            structured_image(seed=3, channels=1), structured_image(seed=4, channels=1)[..., None]]


def test_png_input_gives_the_raw_input_results(replicas: list[str]) -> None:
    images = _mixed_images()
    with AugmentClient(replicas[0]) as client:
        raw = client.augment_images(images, SPEC, seed=5, start=2)
        png = client.augment_images(images, SPEC, seed=5, start=2, encode="png")
    for r, p, image in zip(raw, png, images, strict=True):
        assert p.index == r.index and p.image.shape == r.image.shape == image.shape
        assert p.image.dtype == np.uint8 and np.array_equal(p.image, r.image)


def test_jpeg_file_bytes_and_jpeg_input_are_accepted(replicas: list[str], tmp_path: Path) -> None:
    photo = structured_image(seed=6)
    path = tmp_path / "photo.jpg"
    assert cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    decoded = read_image(path)  # the server decodes image bytes as augsvc reads image files
    with AugmentClient(replicas[0]) as client:
        remote = client.augment_images([path.read_bytes(), photo], SPEC, seed=8, start=0)
        jpeg = client.augment_images([photo], SPEC, seed=8, start=1, encode="jpeg")
    assert np.array_equal(remote[0].image, ImagePipeline(SPEC)(decoded, seed=8, index=0).image)
    assert np.array_equal(remote[1].image, ImagePipeline(SPEC)(photo, seed=8, index=1).image)
    sent = decode_image(encode_image(photo, pb.ENCODING_JPEG), "photo", Limits())
    assert np.array_equal(jpeg[0].image, ImagePipeline(SPEC)(sent, seed=8, index=1).image)


def test_png_output_equals_raw_and_jpeg_output_is_close(replicas: list[str]) -> None:
    images = _mixed_images()
    with AugmentClient(replicas[0]) as client:
        raw = client.augment_images(images, SPEC, seed=2, start=40, keypoints=[
            np.array([[20.0, 20.0]]), None, None, None])
        png = client.augment_images(images, SPEC, seed=2, start=40, output_encoding="png",
                                    keypoints=[np.array([[20.0, 20.0]]), None, None, None])
        jpeg = client.augment_images(images[:1], SPEC, seed=2, start=40, output_encoding="jpeg")
    for r, p in zip(raw, png, strict=True):
        assert p.image.shape == r.image.shape and np.array_equal(p.image, r.image)
    assert np.array_equal(png[0].keypoints, raw[0].keypoints)  # only the image is encoded
    assert jpeg[0].image.shape == raw[0].image.shape and jpeg[0].image.dtype == np.uint8
    diff = np.abs(jpeg[0].image.astype(np.int16) - raw[0].image.astype(np.int16))
    assert diff.mean() < 4  # lossy, but close


def test_png_output_of_float_images_is_refused_by_the_server(replicas: list[str]) -> None:
    image = structured_image().astype(np.float32) / 255
    with AugmentClient(replicas[0]) as client, pytest.raises(grpc.RpcError) as info:
        client.augment_images([image], SPEC, seed=0, output_encoding="png")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "only uint8 images" in info.value.details()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"encode": "jpg"}, r"encode must be one of 'png', 'jpeg' or None; got 'jpg' \(did you mean 'jpeg'\?\)"),
    ({"encode": "raw"}, "encode must be one of 'png', 'jpeg' or None; got 'raw'"),
    ({"output_encoding": "webp"}, "output_encoding must be one of 'raw', 'png', 'jpeg'; got 'webp'"),
    ({"output_encoding": None}, "output_encoding must be one of 'raw', 'png', 'jpeg'; got None"),
    ({"keypoints": [None]}, r"keypoints has 1 entries for 2 images \(give None for an image without\)"),
    ({"masks": [None, None, None]}, "masks has 3 entries for 2 images"),
])
def test_bad_arguments_raise_value_errors(replicas: list[str], kwargs: dict[str, Any],
                                          message: str) -> None:
    with AugmentClient(replicas[0]) as client, pytest.raises(ValueError, match=message):
        client.augment_images([structured_image(), structured_image()], SPEC, **kwargs)


@pytest.mark.parametrize(("image", "encode", "message"), [
    (np.zeros((8, 8, 3), np.float32), "png", r"images\[0\]: encode='png' needs a uint8 image, "
                                             "this one is float32; pass encode=None"),
    (np.zeros((8, 8, 4), np.uint8), "jpeg", r"images\[0\]: JPEG has no alpha channel; use encode='png'"),
    (np.zeros((8, 8, 2), np.uint8), "png", r"images\[0\]: only images with 1, 3 or 4 channels"),
    (np.zeros(8, np.uint8), "png", r"images\[0\]: encode='png' needs an HxW or HxWxC image"),
    (b"", None, r"images\[0\] is empty: give the bytes of a PNG/JPEG file"),
])
def test_images_that_cannot_be_encoded_raise_value_errors(
        replicas: list[str], image: Any, encode: Any, message: str) -> None:
    with AugmentClient(replicas[0]) as client, pytest.raises(ValueError, match=message):
        client.augment_images([image], SPEC, encode=encode)
