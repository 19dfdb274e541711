"""The page's JSON API over HTTP, without a browser: its results are the library's (in-process
and through a real server), and every bad request gets the library's message and a 4xx."""

from __future__ import annotations

import base64
import json

import albumentations as A
import cv2
import grpc
import numpy as np
import pytest

from augsvc.datasets import open_dataset
from augsvc.errors import InputError, LimitError, SpecError
from augsvc.explore.api import MAX_N
from augsvc.explore.backends import RemoteBackend
from augsvc.explore.draw import render
from augsvc.explore.examples import SAMPLE_TARGETS
from augsvc.image import ImagePipeline
from augsvc.image.presets import IMAGE_PRESETS
from augsvc.image.samples import sample_photos
from augsvc.service.server import build_server
from augsvc.wire.images import decode_image
from augsvc.wire.tensors import Limits
from augsvc.wire.v1 import augment_pb2 as pb
from tests.explore.conftest import MAX_PIXELS, MAX_UPLOAD, Page, raw, start_page, stop_page

SPEC = """\
transforms:
  - name: random_resized_crop
    height: 96
    width: 96
  - name: horizontal_flip
  - name: brightness_contrast
    p: 0.5
"""
PAGES = ["local_page", "remote_page"]


def decode(src: str) -> np.ndarray:
    """An image of the page (a PNG data URL) as RGB."""
    data = base64.b64decode(src.split(",", 1)[1])
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def image_request(**changes: object) -> dict[str, object]:
    request: dict[str, object] = {"spec": SPEC, "seed": "3", "n": 4,
                                  "source": {"kind": "sample", "name": "chelsea"}}
    request.update(changes)
    return request


@pytest.fixture(params=PAGES)
def page(request: pytest.FixtureRequest) -> Page:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_the_grid_is_the_library_s_samples(page: Page) -> None:
    status, reply = page.call("POST", "/api/image", image_request())
    assert status == 200, reply
    pipeline, image = ImagePipeline(SPEC), sample_photos(["chelsea"])["chelsea"]
    assert len(reply["images"]) == 4 and reply["seed"] == "3"
    for k, item in enumerate(reply["images"]):
        out = pipeline(image, seed=3, index=k, return_params=True)
        assert item["index"] == k and item["params"] == out.params
        assert (item["width"], item["height"]) == (96, 96)
        assert np.array_equal(decode(item["src"]), render(out.image))
    assert np.array_equal(decode(reply["original"]["src"]), render(image))
    assert reply["spec"] == pipeline.to_spec()


def test_the_seed_decides_the_images(local_page: Page) -> None:
    def sources(seed: str) -> list[str]:
        status, reply = local_page.call("POST", "/api/image", image_request(seed=seed))
        assert status == 200
        return [item["src"] for item in reply["images"]]

    first = sources("3")
    assert sources("3") == first
    changed = sources("4")
    assert all(a != b for a, b in zip(first, changed, strict=True))


def test_the_server_and_the_library_give_the_same_page(local_page: Page, remote_page: Page) -> None:
    targets = json.dumps(SAMPLE_TARGETS["astronaut"])
    for request in (image_request(source={"kind": "sample", "name": "astronaut"}, targets=targets),
                    image_request(source={"kind": "dataset", "name": "digits", "index": "7"},
                                  spec="digits", n=3)):
        local, remote = (p.call("POST", "/api/image", request) for p in (local_page, remote_page))
        assert local[0] == remote[0] == 200
        assert local[1]["backend"] == "library" and remote[1]["backend"] == "server"
        for key in ("original", "images", "source", "spec"):
            assert local[1][key] == remote[1][key], key


def test_targets_move_with_the_image(local_page: Page) -> None:
    targets = SAMPLE_TARGETS["astronaut"]
    status, reply = local_page.call("POST", "/api/image", image_request(
        source={"kind": "sample", "name": "astronaut"}, targets=json.dumps(targets)))
    assert status == 200
    image = sample_photos(["astronaut"])["astronaut"]
    mask = np.zeros(image.shape[:2], np.uint8)
    for k, polygon in enumerate(targets["mask"]):
        cv2.fillPoly(mask, [np.array(polygon, np.int32)], k + 1)
    pipeline = ImagePipeline(SPEC)
    for k, item in enumerate(reply["images"]):
        out = pipeline(image, mask=mask, bboxes=targets["bboxes"], keypoints=targets["keypoints"],
                       seed=3, index=k)
        assert item["bboxes"] == len(out.bboxes) and item["keypoints"] == len(out.keypoints)
        drawn = render(out.image, mask=out.mask, bboxes=out.bboxes, keypoints=out.keypoints)
        assert np.array_equal(decode(item["src"]), drawn)
    assert reply["original"]["bboxes"] == 2 and reply["original"]["keypoints"] == 3


@pytest.mark.parametrize("spec", [
    "transforms:\n  - name: rotat\n",
    '{"transforms": [{"name": "median_blur", "blur_limit": [3, 4]}]}',
    "transforms:\n  - one_of: [{name: gaussian_blur, p: 0}]\n",
    "transforms: [\n",
    '{"transforms": [{"name": "horizontal_flip"}], "bbox_formt": "coco"}',
])
def test_a_broken_spec_gets_the_library_s_message_on_the_spec_field(page: Page, spec: str) -> None:
    with pytest.raises(SpecError) as expected:
        ImagePipeline(spec)
    status, reply = page.call("POST", "/api/image", image_request(spec=spec))
    assert status == 400
    error = reply["error"]
    assert error["field"] == "spec" and error["type"] == "SpecError"
    assert error["message"] == str(expected.value)
    assert (error["path"], error["spec_field"]) == (expected.value.path, expected.value.field)


def test_names_and_files(local_page: Page, tmp_path: object) -> None:
    status, reply = local_page.call("POST", "/api/image", image_request(spec="defualt"))
    assert status == 400 and "did you mean 'default'" in reply["error"]["message"]
    status, reply = local_page.call("POST", "/api/image", image_request(spec="  "))
    assert status == 400 and reply["error"]["message"].startswith("the spec is empty")
    assert local_page.call("POST", "/api/image", image_request(spec="seed7"))[0] == 200
    # a spec file on this machine is never read from the page
    from pathlib import Path

    spec_file = Path(str(tmp_path)) / "spec.yaml"
    spec_file.write_text(SPEC)
    status, reply = local_page.call("POST", "/api/image", image_request(spec=str(spec_file)))
    assert status == 400 and reply["error"]["field"] == "spec"


def test_albumentations_to_dict_is_a_spec(local_page: Page) -> None:
    compose = A.Compose([A.HorizontalFlip(p=1.0), A.RandomBrightnessContrast(p=1.0)])
    text = json.dumps(A.to_dict(compose))
    status, reply = local_page.call("POST", "/api/image", image_request(spec=text, n=2))
    assert status == 200 and [p["name"] for p in reply["images"][0]["params"]] == [
        "HorizontalFlip", "RandomBrightnessContrast"]


def test_uploads(page: Page) -> None:
    image = np.dstack([np.arange(64 * 80, dtype=np.uint8).reshape(64, 80)] * 3)
    status, reply = page.call("POST", "/api/upload", png(image), kind="application/octet-stream")
    assert status == 200 and (reply["width"], reply["height"]) == (80, 64)
    status, grid = page.call("POST", "/api/image", image_request(
        source={"kind": "upload", "id": reply["id"]}, spec=[{"name": "horizontal_flip"}], n=2))
    assert status == 200 and np.array_equal(decode(grid["images"][0]["src"]), image[:, ::-1])
    status, grid = page.call("POST", "/api/image", image_request(source={"kind": "upload", "id": "x"}))
    assert status == 400 and grid["error"]["field"] == "image"


def test_an_undecodable_upload_gets_the_library_s_message(page: Page) -> None:
    junk = b"this is not an image at all" * 10
    with pytest.raises(InputError) as expected:
        decode_image(pb.Image(encoded=junk), "upload", Limits())
    status, reply = page.call("POST", "/api/upload", junk, kind="application/octet-stream")
    assert status == 400
    assert reply["error"] == {"field": "image", "type": "InputError", "message": str(expected.value)}


def test_huge_images_and_files_are_refused_and_the_server_goes_on(local_page: Page) -> None:
    big = np.zeros((1500, 1500), np.uint8)  # 2.25 M pixels, over MAX_PIXELS
    with pytest.raises(LimitError) as expected:
        decode_image(pb.Image(encoded=png(big)), "upload", Limits(max_pixels=MAX_PIXELS))
    status, reply = local_page.call("POST", "/api/upload", png(big), kind="application/octet-stream")
    assert status == 413 and reply["error"]["field"] == "image"
    assert reply["error"]["message"] == str(expected.value)
    heavy = np.random.default_rng(0).integers(0, 256, 3 * MAX_UPLOAD // 2, np.uint8).tobytes()
    status, reply = local_page.call("POST", "/api/upload", heavy, kind="application/octet-stream")
    assert status == 413 and reply["error"] == {"field": "image", "type": "LimitError", "message": (
        f"upload: the file is {len(heavy)} bytes, over the limit of {MAX_UPLOAD} bytes")}
    # a pipeline that would make a huge image is refused by the library's bound, before work
    status, reply = local_page.call("POST", "/api/image", image_request(
        spec=[{"name": "resize", "height": 4000, "width": 4000}]))
    assert status == 413 and "over the limit of 2000000 pixels" in reply["error"]["message"]
    assert local_page.call("GET", "/api/config")[0] == 200


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"seed": "abc"}, "seed", "seed must be a whole number"),
    ({"seed": str(2**64)}, "seed", f"seed must be in [0, 2**64 - 1], got {2**64}"),
    ({"n": 0}, "n", f"n must be in [1, {MAX_N}], got 0"),
    ({"n": MAX_N + 1}, "n", f"n must be in [1, {MAX_N}], got {MAX_N + 1}"),
    ({"targets": "{bboxes"}, "targets", "targets are not valid JSON"),
    ({"targets": '{"bboxes": [[1, 2, 3]]}'}, "targets",
     "targets: bboxes must have shape (N, >= 4), got (1, 3)"),
    ({"targets": '{"boxes": []}'}, "targets", "targets: unknown key 'boxes'"),
    ({"targets": '{"mask": [[[1, 2]]]}'}, "targets", "targets: mask must be a list of polygons"),
    ({"source": {"kind": "sample", "name": "astronot"}}, "image", "did you mean 'astronaut'"),
    ({"source": {"kind": "dataset", "name": "digits", "index": 5000}}, "image",
     "index must be in [0, 1796], got 5000"),
    ({"source": None}, "image", "source must be"),
    ({"spec": [{"name": "random_crop", "height": 900, "width": 900}]}, "run", "random_crop on sample 0"),
])
def test_bad_inputs_name_their_field(page: Page, changes: dict[str, object], field: str,
                                     message: str) -> None:
    status, reply = page.call("POST", "/api/image", image_request(**changes))
    assert status == 400, reply
    assert reply["error"]["field"] == field and message in reply["error"]["message"]


def test_malformed_requests_get_json_errors(local_page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    assert local_page.call("POST", "/api/image", b"{nope")[0] == 400
    assert local_page.call("POST", "/api/image", b"[1, 2]")[0] == 400
    assert local_page.call("POST", "/api/image", b"{}", kind="text/plain")[0] == 400
    assert local_page.call("POST", "/api/upload", b"\x89PNG", kind="text/plain")[0] == 400
    assert local_page.call("POST", "/api/nothing", {})[0] == 404
    assert local_page.call("GET", "/api/nothing")[0] == 404

    def boom(*args: object) -> None:
        raise RuntimeError("the backend broke")

    monkeypatch.setattr(local_page.server.explorer.backend, "augment_images", boom)
    status, reply = local_page.call("POST", "/api/image", image_request())
    assert status == 500 and reply["error"]["message"] == "internal error: RuntimeError: the backend broke"
    monkeypatch.undo()
    assert local_page.call("POST", "/api/image", image_request())[0] == 200


def test_the_page_and_its_files(local_page: Page) -> None:
    status, headers, body = raw(local_page, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, _ = raw(local_page, f"/static/{name}")
        assert status == 200 and headers["Content-Type"].startswith(kind)
    assert raw(local_page, "/static/../server.py")[0] == 404
    assert raw(local_page, "/static/nothing.js")[0] == 404
    assert b'src="/static/app.js"' in body and b'href="/static/style.css"' in body


def test_nothing_is_loaded_from_elsewhere() -> None:
    import tomllib
    from importlib import resources
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["package-data"]["augsvc.explore"] == ["static/*"]

    static = resources.files("augsvc.explore").joinpath("static")
    names = sorted(f.name for f in static.iterdir())
    assert names == ["app.js", "index.html", "style.css"]
    for name in names:
        text = static.joinpath(name).read_text(encoding="utf-8")
        for needle in ("http://", "https://", "//cdn", "@import", "url("):
            assert needle not in text, (name, needle)


def test_a_token_guards_the_page_and_the_api() -> None:
    from augsvc.explore.backends import LocalBackend

    page = start_page(LocalBackend(max_pixels=MAX_PIXELS), token="s3cret")
    try:
        assert raw(page, "/")[0] == 401
        assert raw(page, "/?token=wrong")[0] == 401
        assert raw(page, "/?token=s3cret")[0] == 200
        assert raw(page, "/api/config")[0] == 401
        assert raw(page, "/api/config", {"X-Augsvc-Token": "s3cret"})[0] == 200
        assert page.call("GET", "/api/config")[0] == 200  # the helper sends the header
        assert raw(page, "/static/app.js")[0] == 200  # the page's own files are public
        assert page.server.url.endswith("/?token=s3cret")
    finally:
        stop_page(page)


def test_only_loopback_host_names_reach_a_loopback_page(local_page: Page) -> None:
    assert raw(local_page, "/api/config", {"Host": "evil.example:80"})[0] == 403
    assert raw(local_page, "/api/config", {"Host": f"localhost:{local_page.server.server_port}"})[0] == 200


def test_presets_samples_and_datasets(page: Page) -> None:
    status, presets = page.call("GET", "/api/presets")
    assert status == 200
    assert {p["name"]: p["spec"] for p in presets["image"]} == IMAGE_PRESETS
    assert "eda" in {p["name"] for p in presets["text"]}
    status, samples = page.call("GET", "/api/samples")
    by_name = {s["name"]: s for s in samples}
    assert by_name["astronaut"]["targets"] == SAMPLE_TARGETS["astronaut"]
    assert (by_name["camera"]["channels"], by_name["logo"]["channels"]) == (1, 4)
    status, datasets = page.call("GET", "/api/datasets")
    assert {"digits", "lfw_subset", "skimage"} <= {d["name"] for d in datasets}
    assert {d["name"]: d["size"] for d in datasets}["digits"] == 1797
    status, reply = page.call("POST", "/api/image", image_request(
        source={"kind": "dataset", "name": "digits", "index": 7}, spec="digits", n=1))
    image, label = open_dataset("digits")[7]
    assert status == 200 and reply["source"] == {"kind": "dataset", "name": "digits", "index": 7,
                                                  "label": label}
    assert np.array_equal(decode(reply["original"]["src"]), render(image))


def test_server_errors_reach_the_page() -> None:
    server, port = build_server("127.0.0.1:0", token="server-token")
    server.start()
    pages = [start_page(RemoteBackend(f"127.0.0.1:{port}")),
             start_page(RemoteBackend(f"127.0.0.1:{port}", token="server-token"))]
    try:
        status, reply = pages[0].call("POST", "/api/image", image_request())
        assert status == 502 and reply["error"]["code"] == grpc.StatusCode.UNAUTHENTICATED.name
        assert pages[1].call("POST", "/api/image", image_request())[0] == 200
    finally:
        for page in pages:
            stop_page(page)
        server.stop(0)
    down = start_page(RemoteBackend(f"127.0.0.1:{port}"))
    try:
        status, reply = down.call("POST", "/api/image", image_request())
        assert status == 503 and reply["error"]["code"] == "UNAVAILABLE"
    finally:
        stop_page(down)
