"""AugmentClient against real servers: one, and two replicas behind round_robin."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from augsvc.client import AugmentClient
from augsvc.image import ImagePipeline
from augsvc.service.server import build_server
from augsvc.text import TextPipeline
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
