"""The lean runner against albumentations' own Compose: byte for byte, for the same random state.

Every registered transform and every group kind runs both ways from the same per-sample stream:
the lean runner (``augsvc.image.lean``, what pipelines call) and ``compose(**data)``. Outputs,
applied parameters and what the streams are left at must be equal. Pipelines with boxes or
keypoints keep calling the Compose (its processors convert and filter them); that path is
checked against a Compose built apart.
"""

from __future__ import annotations

import copy
from typing import Any

import albumentations as A
import cv2
import numpy as np
import pytest

from augsvc.image import ImagePipeline
from augsvc.image.lean import lean_runner
from tests.conftest import structured_image
from tests.image.test_transforms import (
    BOX,
    CASES,
    INPUTS,
    KEYPOINTS,
    MASK,
    NAMES,
    RGB,
    SCENE,
    SEEDS,
    pipeline,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:HueSaturationValue. hue_shift:UserWarning"),
    pytest.mark.filterwarnings("ignore:The image is already gray:UserWarning"),
]
INDICES = range(12)  # samples per case: transforms with p < 1 fire on some, not others


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def assert_lean_equals_compose(pipe: ImagePipeline, data: dict[str, Any], rgba: bool = False
                               ) -> None:
    built = pipe._variants.get((False, rgba)) or pipe._variant((False, rgba))
    assert built.run is not None, "this pipeline should run lean"
    random = pipe._random
    for seed, _ in SEEDS:
        for index in INDICES:
            for _, t in built.leaves:  # transforms a sample does not reach keep their params
                t.params = {}
            random.reseed(seed, index)
            want = built.compose(**copy.deepcopy(data))
            want_params = [copy.deepcopy(t.params) for _, t in built.leaves]
            after = (random.python.random(), random.numpy.random())
            for _, t in built.leaves:
                t.params = {}
            random.reseed(seed, index)
            got = built.run(copy.deepcopy(data))
            assert _equal(got, want), f"seed {seed} index {index}: outputs differ"
            assert _equal([t.params for _, t in built.leaves], want_params), "params differ"
            assert (random.python.random(), random.numpy.random()) == after, "streams differ"


@pytest.mark.parametrize("p", [1.0, 0.5])
@pytest.mark.parametrize("name", NAMES)
def test_every_transform_runs_lean_byte_for_byte(name: str, p: float) -> None:
    assert_lean_equals_compose(pipeline(name, p), {"image": RGB})


@pytest.mark.parametrize("name", NAMES)
def test_every_transform_moves_masks_lean_byte_for_byte(name: str) -> None:
    pipe = pipeline(name, 0.7, targets=True)
    assert_lean_equals_compose(pipe, {"image": SCENE, "mask": MASK})
    masks = np.stack([MASK, 1 - MASK, np.roll(MASK, 5, axis=1)])
    assert_lean_equals_compose(pipe, {"image": SCENE, "masks": masks})
    assert_lean_equals_compose(pipe, {"image": SCENE, "masks": []})


# normalize's case has a mean per RGB channel: refused for 1 or 4 channels.
KINDS = [(n, k) for n in NAMES for k in sorted(INPUTS)
         if not (n == "normalize" and k in ("gray", "rgba"))]


@pytest.mark.parametrize(("name", "kind"), KINDS)
def test_every_transform_runs_lean_on_every_input_kind(name: str, kind: str) -> None:
    image = INPUTS[kind]
    assert_lean_equals_compose(pipeline(name, 0.8), {"image": image}, rgba=kind == "rgba")


def _leaf(name: str, p: float) -> dict[str, Any]:
    return {"name": name, "p": p, **CASES[name].fields}


GROUPS = {
    "one_of": {"one_of": [_leaf("horizontal_flip", 1.0), _leaf("gamma", 0.5),
                          _leaf("median_blur", 2.0 / 3)], "p": 0.8},
    "some_of": {"some_of": [_leaf("vertical_flip", 0.5), _leaf("brightness_contrast", 1.0),
                            _leaf("rotate", 0.7)], "n": 2, "p": 0.9},
    "some_of_replace": {"some_of": [_leaf("horizontal_flip", 0.5), _leaf("gamma", 1.0)],
                        "n": 3, "replace": True},
    "sequential": {"sequential": [_leaf("hue_saturation_value", 0.5),
                                  _leaf("random_crop", 1.0)], "p": 0.6},
    "nested": {"one_of": [{"sequential": [_leaf("vertical_flip", 1.0), _leaf("gamma", 0.3)]},
                          {"some_of": [_leaf("horizontal_flip", 1.0), _leaf("clahe", 1.0)],
                           "n": 1}], "p": 1.0},
}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_group_kind_runs_lean_byte_for_byte(group: str) -> None:
    spec = {"transforms": [_leaf("horizontal_flip", 0.5), GROUPS[group], _leaf("gamma", 0.5)]}
    pipe = ImagePipeline(spec)
    assert_lean_equals_compose(pipe, {"image": RGB})
    assert_lean_equals_compose(pipe, {"image": SCENE, "mask": MASK})


def test_albumentations_dicts_run_lean_byte_for_byte() -> None:
    compose = A.Compose([A.OneOf([A.HorizontalFlip(p=1), A.MedianBlur(blur_limit=5, p=1)], p=0.7),
                         A.SomeOf([A.RandomGamma(p=1), A.Rotate(p=0.5)], n=1),
                         A.Sequential([A.RandomBrightnessContrast(p=0.5)], p=0.5)])
    assert_lean_equals_compose(ImagePipeline(A.to_dict(compose)), {"image": RGB})


def test_pipelines_with_boxes_or_keypoints_keep_the_compose_and_match_albumentations() -> None:
    pipe = pipeline("rotate", 0.7, targets=True)
    built = pipe._variant((True, False))
    assert lean_runner(built.compose) is None and built.run is None
    kwargs = {**CASES["rotate"].kwargs, "border_mode": cv2.BORDER_CONSTANT, "fill": 0.0}
    transform = A.Compose([A.Rotate(**kwargs, p=0.7)],
                          bbox_params=A.BboxParams(format="pascal_voc"),
                          keypoint_params=A.KeypointParams(format="xy"))
    for seed, index in SEEDS:
        out = pipe(SCENE, mask=MASK, bboxes=[BOX], keypoints=KEYPOINTS, seed=seed, index=index)
        pipe._random.reseed(seed, index)
        transform.set_random_state(pipe._random.numpy, pipe._random.python)
        want = transform(image=SCENE, mask=MASK, bboxes=np.array([BOX], np.float64),
                         keypoints=np.array(KEYPOINTS, np.float64))
        assert np.array_equal(out.image, want["image"]) and np.array_equal(out.mask, want["mask"])
        assert np.array_equal(out.bboxes, want["bboxes"])
        assert np.array_equal(out.keypoints, want["keypoints"])


def test_what_the_lean_runner_does_not_reproduce_keeps_the_compose() -> None:
    class Replaced(A.HorizontalFlip):
        def __call__(self, *args: Any, force_apply: bool = False, **kwargs: Any) -> Any:
            return super().__call__(*args, force_apply=force_apply, **kwargs)

    assert lean_runner(A.Compose([Replaced()])) is None
    assert lean_runner(A.Compose([A.RandomOrder([A.HorizontalFlip()])])) is None
    assert lean_runner(A.Compose([A.HorizontalFlip()], save_applied_params=True)) is None
    assert lean_runner(A.Compose([A.HorizontalFlip()], additional_targets={"x": "image"})) is None
    assert lean_runner(A.Compose([A.HorizontalFlip()])) is not None


def test_pipeline_results_equal_the_compose_path_with_params() -> None:
    """The fast call (no targets, no params) and the full one give the same image."""
    pipe = ImagePipeline("seed7")
    image = structured_image(256, 256)
    for index in INDICES:
        fast = pipe(image, seed=4, index=index)
        full = pipe(image, seed=4, index=index, return_params=True)
        assert np.array_equal(fast.image, full.image)
