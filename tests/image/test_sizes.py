"""Output-size bounds (augsvc.image.sizes) against what albumentations really makes."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from augsvc.errors import LimitError
from augsvc.image import IMAGE_TRANSFORMS, ImagePipeline
from augsvc.image.albu_dict import ALLOWED_CLASSES
from augsvc.image.sizes import SIZE_KEEPING, SIZE_RULES, UnknownSizeError, output_bound
from tests.conftest import structured_image
from tests.image.test_transforms import CASES

SIZES = [(64, 80), (17, 250), (300, 41)]
SIZE_CHANGING = ["random_crop", "center_crop", "random_resized_crop", "resize"]


def _covered(cls: type) -> bool:
    return any(c in SIZE_RULES for c in cls.__mro__) or issubclass(cls, SIZE_KEEPING)


@pytest.mark.parametrize("name", sorted(IMAGE_TRANSFORMS))
def test_every_transform_has_a_size_rule(name: str) -> None:
    info = IMAGE_TRANSFORMS[name]
    assert _covered(info.impl or info.albu), f"{name}: add a rule to augsvc.image.sizes"


def test_every_allowed_albumentations_class_has_a_size_rule() -> None:
    missing = [n for n in ALLOWED_CLASSES
               if n not in {"Compose", "OneOf", "SomeOf", "Sequential"} and not _covered(getattr(A, n))]
    assert missing == []


def test_a_class_without_a_rule_is_refused() -> None:
    class Grow(A.DualTransform):  # size-changing and unknown to the rules
        pass

    with pytest.raises(UnknownSizeError, match="no output-size rule for Grow"):
        output_bound(A.Compose([Grow(p=1.0)]), 10, 10)


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("name", sorted(IMAGE_TRANSFORMS))
def test_each_transform_stays_within_its_bound(name: str, size: tuple[int, int]) -> None:
    fields = dict(CASES[name].fields)
    if name in ("random_crop", "center_crop"):
        fields["pad_if_needed"] = True  # a crop larger than the image fails without it
    pipeline = ImagePipeline([{"name": name, "p": 1.0, **fields}])
    bound = pipeline.output_bound(*size)
    image = structured_image(*size)
    for index in range(4):
        out = pipeline(image, seed=0, index=index).image
        assert out.shape[0] <= bound.height and out.shape[1] <= bound.width
        if name in SIZE_CHANGING:  # sure to fire: the bound is the size, not just above it
            assert out.shape[:2] == (bound.height, bound.width)
    assert bound.peak_pixels >= max(size[0] * size[1], bound.pixels)


def test_a_padding_crop_peaks_at_the_padded_image() -> None:
    pipeline = ImagePipeline([{"name": "random_crop", "height": 600, "width": 600,
                               "pad_if_needed": True}])
    bound = pipeline.output_bound(100, 1000)
    assert (bound.height, bound.width, bound.peak) == (600, 600, (600, 1000))
    assert isinstance(bound.peak_by, A.RandomCrop)


def test_a_transform_that_may_not_fire_keeps_the_input_size_in_the_bound() -> None:
    pipeline = ImagePipeline([{"name": "resize", "height": 50, "width": 500, "p": 0.5}])
    bound = pipeline.output_bound(300, 40)
    assert (bound.height, bound.width) == (300, 500)


def _random_tree(rng: np.random.Generator, depth: int) -> dict:
    """A random group or leaf of size-changing transforms, some sure to fire, some not."""
    if depth == 0 or rng.random() < 0.4:
        name = str(rng.choice([*SIZE_CHANGING, "horizontal_flip", "rotate"]))
        node: dict = {"name": name, "p": float(rng.choice([1.0, 0.5]))}
        if name in SIZE_CHANGING:
            node.update(height=int(rng.integers(5, 120)), width=int(rng.integers(5, 120)))
        if name in ("random_crop", "center_crop"):
            node["pad_if_needed"] = True
        return node
    kind = str(rng.choice(["one_of", "some_of", "sequential", "sometimes"]))
    children = [_random_tree(rng, depth - 1) for _ in range(int(rng.integers(1, 4)))]
    group: dict = {kind: children, "p": float(rng.choice([1.0, 0.7]))}
    if kind == "some_of":
        group.update(n=int(rng.integers(1, len(children) + 1)))
    return group


def test_random_group_trees_stay_within_their_bound() -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        spec = [_random_tree(rng, 3) for _ in range(int(rng.integers(1, 4)))]
        pipeline = ImagePipeline(spec)
        height, width = int(rng.integers(8, 150)), int(rng.integers(8, 150))
        bound = pipeline.output_bound(height, width)
        image = structured_image(height, width)
        for index in range(6):
            out = pipeline(image, seed=1, index=index).image
            assert out.shape[0] <= bound.height and out.shape[1] <= bound.width, spec
            assert out.shape[0] * out.shape[1] <= bound.peak_pixels


@pytest.mark.parametrize("shear", [0.0, 20.0])
def test_affine_fit_output_from_an_albumentations_dict_stays_within_its_bound(shear: float) -> None:
    compose = A.Compose([A.Affine(scale=(0.5, 1.8), rotate=(-60, 60), shear=(-shear, shear),
                                  fit_output=True, p=1.0)])
    pipeline = ImagePipeline(A.to_dict(compose))
    bound = pipeline.output_bound(64, 80)
    image = structured_image(64, 80)
    grew = False
    for index in range(20):
        out = pipeline(image, seed=2, index=index).image
        assert out.shape[0] <= bound.height and out.shape[1] <= bound.width
        grew |= out.shape[0] > 64 or out.shape[1] > 80
    assert grew  # the case exercises a canvas that grows


@pytest.mark.parametrize(("spec", "name", "side"), [
    ([{"name": "random_crop", "height": 60000, "width": 60000, "pad_if_needed": True}],
     "random_crop", "60000x60000"),
    ([{"name": "resize", "height": 65536, "width": 65536}, {"name": "resize", "height": 8, "width": 8}],
     "resize", "65536x65536"),
    ([{"one_of": [{"name": "horizontal_flip"},
                  {"name": "random_resized_crop", "height": 9000, "width": 9000}]}],
     "random_resized_crop", "9000x9000"),
])
def test_a_limit_refuses_the_sample_before_any_work(spec: list, name: str, side: str) -> None:
    pipeline = ImagePipeline(spec, max_pixels=64_000_000)
    with pytest.raises(LimitError, match=f"{name} would make a {side} image from 8x8 .*over the "
                                         "limit of 64000000 pixels"):
        pipeline(np.zeros((8, 8, 3), np.uint8), seed=0)


def test_the_limit_survives_pickling_and_copying() -> None:
    import copy
    import pickle

    pipeline = ImagePipeline([{"name": "resize", "height": 100, "width": 100}], max_pixels=5000)
    for clone in (pickle.loads(pickle.dumps(pipeline)), copy.deepcopy(pipeline)):
        assert clone.max_pixels == 5000
        with pytest.raises(LimitError):
            clone(np.zeros((8, 8), np.uint8))


def test_within_the_limit_the_result_is_unchanged() -> None:
    spec = [{"name": "random_crop", "height": 40, "width": 40}, {"name": "horizontal_flip"}]
    image = structured_image(64, 80)
    limited = ImagePipeline(spec, max_pixels=64 * 80)(image, seed=3, index=9).image
    assert np.array_equal(limited, ImagePipeline(spec)(image, seed=3, index=9).image)
