"""Bearer-token auth and TLS on real servers over loopback; health and reflection stay open."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from augsvc.client import AugmentClient
from augsvc.service.server import SERVICE_NAME, build_server
from augsvc.wire.v1 import augment_pb2 as pb
from augsvc.wire.v1 import augment_pb2_grpc as pb_grpc

TOKEN = "s3cret-token"
SWAP = [{"name": "random_swap", "p": 1}]


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for localhost and 127.0.0.1 (its own CA), and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def authed() -> Iterator[str]:
    server, port = build_server("127.0.0.1:0", workers=4, token=TOKEN)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"))
    server, port = build_server("127.0.0.1:0", workers=4, token=TOKEN,
                                tls=(cert.read_bytes(), key.read_bytes()))
    server.start()
    yield f"127.0.0.1:{port}", cert
    server.stop(0)


def texts_request() -> pb.AugmentTextsRequest:
    import json

    return pb.AugmentTextsRequest(pipeline=pb.Pipeline(spec_json=json.dumps(SWAP)), texts=["a b c d"], seed=0)


@pytest.mark.parametrize(("metadata", "needle"), [
    ((), "missing credentials: send the metadata 'authorization: Bearer <token>'"),
    ((("authorization", "Bearer wrong"),), "invalid bearer token"),
    ((("authorization", TOKEN),), "invalid bearer token"),  # no "Bearer " scheme
    ((("authorization", f"Bearer {TOKEN}x"),), "invalid bearer token"),
])
def test_calls_without_the_right_token_are_unauthenticated(authed: str, metadata: tuple[tuple[str, str], ...],
                                                          needle: str) -> None:
    with grpc.insecure_channel(authed) as channel:
        stub = pb_grpc.AugmenterStub(channel)
        with pytest.raises(grpc.RpcError) as unary:
            stub.AugmentTexts(texts_request(), metadata=metadata, timeout=10)
        assert unary.value.code() == grpc.StatusCode.UNAUTHENTICATED and needle in unary.value.details()
        with pytest.raises(grpc.RpcError) as stream:
            list(stub.StreamAugmentTexts(iter([texts_request()]), metadata=metadata, timeout=10))
        assert stream.value.code() == grpc.StatusCode.UNAUTHENTICATED and needle in stream.value.details()


def test_the_right_token_works_and_health_and_reflection_stay_open(authed: str) -> None:
    with AugmentClient(authed, token=TOKEN, timeout=10) as client:
        assert client.augment_texts(["a b c d"], SWAP, seed=0)[0].text != "a b c d"
        assert "rotate" in {t["name"] for t in client.list_transforms()}
    with grpc.insecure_channel(authed) as channel:
        stub = pb_grpc.AugmenterStub(channel)
        replies = list(stub.StreamAugmentTexts(iter([texts_request()] * 2),
                                               metadata=(("authorization", f"Bearer {TOKEN}"),)))
        assert len(replies) == 2
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10)  # no token
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        answer = next(reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
        assert SERVICE_NAME in {s.name for s in answer.list_services_response.service}


def test_tls_round_trip_with_a_token(tls_server: tuple[str, Path]) -> None:
    address, cert = tls_server
    with AugmentClient(address, token=TOKEN, tls=cert, timeout=10) as client:  # CA as a path
        assert client.augment_texts(["a b c d"], SWAP, seed=0)[0].text != "a b c d"
    with AugmentClient(f"localhost:{address.rsplit(':', 1)[1]}", token=TOKEN, tls=cert.read_bytes(),
                       timeout=10) as client:  # CA as bytes, the DNS name in the SAN
        assert len(client.list_transforms()) > 10
    with AugmentClient(address, tls=str(cert), timeout=10) as client, \
            pytest.raises(grpc.RpcError) as info:  # TLS alone is not auth
        client.list_transforms()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_plaintext_client_cannot_talk_to_a_tls_server(tls_server: tuple[str, Path]) -> None:
    address, _ = tls_server
    with AugmentClient(address, token=TOKEN, timeout=3, retries=0) as client, \
            pytest.raises(grpc.RpcError) as info:
        client.list_transforms()
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
