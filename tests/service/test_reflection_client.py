"""An independent client on a real server: `buf curl` (Go, from npm) knowing nothing but reflection."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from augsvc.image import ImagePipeline
from augsvc.service.server import SERVICE_NAME, build_server
from tests.conftest import structured_image

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "tools" / "buf" / "node_modules" / ".bin" / "buf"  # `make buf`, pinned by package-lock.json
SPEC = {"transforms": [{"name": "random_crop", "height": 40, "width": 48},
                       {"name": "horizontal_flip"},
                       {"name": "shift_scale_rotate", "p": 0.8},
                       {"name": "brightness_contrast", "p": 0.7}]}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    if not BUF.exists():
        pytest.fail(f"{BUF.relative_to(ROOT)} is missing: run `make buf` (npm ci of tools/buf)")
    server, port = build_server("127.0.0.1:0", workers=2)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop(0)


def buf_curl(base_url: str, method: str, body: dict[str, Any] | None = None
             ) -> subprocess.CompletedProcess[str]:
    """Call ``method`` ("package.Service/Method") with a JSON body; the schema comes from reflection."""
    args = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    if body is not None:
        args += ["--data", json.dumps(body)]
    return subprocess.run([*args, f"{base_url}/{method}"], capture_output=True, text=True,
                          timeout=60, check=False)


def call(base_url: str, method: str, body: dict[str, Any] | None = None) -> Any:
    done = buf_curl(base_url, method, body)
    assert done.returncode == 0, f"buf curl {method} failed ({done.returncode}): {done.stderr}"
    return json.loads(done.stdout)


def test_list_transforms_through_reflection(base_url: str) -> None:
    listed = call(base_url, f"{SERVICE_NAME}/ListTransforms")
    domains = {t["name"]: t["domain"] for t in listed["transforms"]}
    assert domains["horizontal_flip"] == "image" and domains["synonym"] == "text"
    crop = next(t for t in listed["transforms"] if t["name"] == "random_crop")
    assert json.loads(crop["paramsJson"])[0]["name"] == "height" and "bboxes" in crop["targets"]
    assert "default" in listed["imagePresets"]


def test_health_check_is_serving(base_url: str) -> None:
    for service in ("", SERVICE_NAME):
        assert call(base_url, "grpc.health.v1.Health/Check", {"service": service}) == \
            {"status": "SERVING"}


def test_augment_images_equals_the_library_byte_for_byte(base_url: str) -> None:
    images = [structured_image(seed=k) for k in range(3)]
    # proto3 JSON: bytes are base64, 64-bit integers are strings
    reply = call(base_url, f"{SERVICE_NAME}/AugmentImages", {
        "requestId": "buf", "pipeline": {"specJson": json.dumps(SPEC)}, "seed": "11",
        "startIndex": "40",
        "samples": [{"image": {"array": {"data": base64.b64encode(im.tobytes()).decode(),
                                         "shape": [str(n) for n in im.shape], "dtype": "uint8"}}}
                    for im in images]})
    assert reply["requestId"] == "buf"
    pipeline = ImagePipeline(SPEC)
    for k, (image, got) in enumerate(zip(images, reply["samples"], strict=True)):
        want = pipeline(image, seed=11, index=40 + k).image
        array = got["image"]["array"]
        assert int(got["index"]) == 40 + k and array["dtype"] == str(want.dtype)
        assert [int(n) for n in array["shape"]] == list(want.shape)
        assert base64.b64decode(array["data"]) == want.tobytes()


def test_bad_spec_is_invalid_argument_naming_the_transform(base_url: str) -> None:
    spec = [{"name": "horizontal_flip"}, {"name": "median_blur", "blur_limit": [3, 4]}]
    done = buf_curl(base_url, f"{SERVICE_NAME}/AugmentImages", {"pipeline": {"specJson": json.dumps(spec)}})
    assert done.returncode != 0, done.stdout
    error = json.loads(done.stderr)
    assert error["code"] == "invalid_argument"
    assert "transforms[1] (median_blur): field 'blur_limit'" in error["message"]


def test_list_datasets_through_reflection(base_url: str) -> None:
    datasets = {d["name"]: d for d in call(base_url, f"{SERVICE_NAME}/ListDatasets")["datasets"]}
    digits = datasets["digits"]
    assert digits["kind"] == "image" and int(digits["size"]) == 1797
    assert digits["classNames"] == [str(d) for d in range(10)]
