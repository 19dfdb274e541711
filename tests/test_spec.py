"""Spec parsing: validation errors, groups, round trips, loading, albumentations' own format."""

from __future__ import annotations

import json
import random

import albumentations as A
import numpy as np
import pytest

from augsvc.errors import SpecError
from augsvc.image import ImagePipeline
from augsvc.seeding import SampleRandom
from augsvc.spec import load_spec
from tests.conftest import structured_image

GROUPED = {
    "transforms": [
        {"name": "horizontal_flip", "p": 0.5},
        {"one_of": [{"name": "median_blur", "blur_limit": 5}, {"name": "gaussian_blur"}], "p": 0.8},
        {"some_of": [{"name": "gamma"}, {"name": "brightness_contrast", "brightness_limit": 0.3},
                     {"name": "hue_saturation_value"}], "n": 2, "p": 1.0},
        {"sometimes": [{"name": "rotate", "limit": 15}], "p": 0.5},
        {"sequential": [{"name": "center_crop", "height": 48, "width": 48}]},
    ],
    "bbox_format": "coco",
}


def error_of(spec: object) -> SpecError:
    with pytest.raises(SpecError) as info:
        ImagePipeline(spec)
    return info.value


def test_unknown_transform_suggests_the_closest_name() -> None:
    err = error_of({"transforms": [{"name": "horizontal_flipp"}]})
    assert "did you mean 'horizontal_flip'" in str(err)
    assert err.path == "transforms[0]" and err.field == "name" and err.value == "horizontal_flipp"


def test_unknown_field_names_transform_and_known_fields() -> None:
    err = error_of([{"name": "median_blur", "blur_limt": 5}])
    assert err.transform == "median_blur" and err.field == "blur_limt"
    assert "did you mean 'blur_limit'" in str(err) and "blur_limit" in str(err.allowed)


@pytest.mark.parametrize(
    ("entry", "field", "needle"),
    [
        ({"name": "median_blur", "blur_limit": [3, 4]}, "blur_limit", "odd"),
        ({"name": "brightness_contrast", "brightness_limit": 1.5}, "brightness_limit", "[-1, 1]"),
        ({"name": "brightness_contrast", "contrast_limit": [0.3, 0.1]}, "contrast_limit", "lo <= hi"),
        ({"name": "random_crop", "height": 0, "width": 10}, "height", "[1, 65536]"),
        ({"name": "random_crop", "width": 10}, "height", "required"),
        ({"name": "resize", "height": 10.5, "width": 10}, "height", "integer"),
        ({"name": "rotate", "border_mode": "mirror"}, "border_mode", "'reflect'"),
        ({"name": "horizontal_flip", "p": 1.5}, "p", "[0, 1]"),
        ({"name": "gamma", "gamma_limit": "big"}, "gamma_limit", "pair"),
        ({"name": "to_gray", "method": "from-lab"}, "method", "did you mean 'from_lab'"),
        ({"name": "normalize", "std": [0.2, 0.0, 0.2]}, "std", "out of range"),
        ({"name": "coarse_dropout", "fill_mask": "x"}, "fill_mask", "finite number"),
    ],
)
def test_bad_field_values_name_field_value_and_allowed(entry: dict, field: str, needle: str) -> None:
    err = error_of([entry])
    assert err.transform == entry["name"]
    assert err.field == field
    assert needle in str(err), str(err)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"transforms": [{"some_of": [{"name": "gamma"}], "n": 2}]}, "integer in [1, 1]"),
        ({"transforms": [{"one_of": []}]}, "non-empty list"),
        ({"transforms": [{"one_of": [{"name": "gamma"}], "k": 1}]}, "unknown field"),
        ({"transforms": [{"p": 0.5}]}, "exactly one group key"),
        ({"transforms": [{"name": "gamma"}], "bbox_fromat": "coco"}, "did you mean 'bbox_format'"),
        ({"transforms": [{"name": "gamma"}], "bbox_format": "xyxy"}, "'pascal_voc'"),
        ({"transforms": "gamma"}, "must be a list"),
        ({"transforms": [["gamma"]]}, "must be a mapping"),
        ({"transforms": [{"one_of": [{"name": "gamm"}]}]}, "transforms[0].one_of[0]"),
    ],
)
def test_bad_structure_is_reported_with_its_path(spec: dict, needle: str) -> None:
    assert needle in str(error_of(spec))


def test_scalars_widen_to_ranges() -> None:
    spec = ImagePipeline([{"name": "rotate", "limit": 15}, {"name": "median_blur", "blur_limit": 5}]
                         ).to_spec()
    assert spec["transforms"][0]["limit"] == [-15.0, 15.0]
    assert spec["transforms"][1]["blur_limit"] == [5, 5]


def test_to_spec_round_trips_and_rebuilds_the_same_pipeline() -> None:
    first = ImagePipeline(GROUPED)
    spec = first.to_spec()
    second = ImagePipeline(json.loads(json.dumps(spec)))
    assert second.to_spec() == spec
    assert spec["transforms"][2]["n"] == 2 and spec["bbox_format"] == "coco"
    image = structured_image()
    for index in range(12):
        a = first(image, seed=3, index=index).image
        b = second(image, seed=3, index=index).image
        assert np.array_equal(a, b), index


def test_groups_pick_as_documented() -> None:
    pipeline = ImagePipeline({"transforms": [
        {"one_of": [{"name": "gamma", "p": 1}, {"name": "brightness_contrast", "p": 1}]},
        {"some_of": [{"name": "median_blur", "p": 1}, {"name": "gaussian_blur", "p": 1},
                     {"name": "clahe", "p": 1}], "n": 2},
        {"sometimes": [{"name": "to_gray", "p": 1}, {"name": "vertical_flip", "p": 1}], "p": 0.5},
    ]})
    image = structured_image()
    sometimes = 0
    for index in range(40):
        fired = {p["name"] for p in pipeline(image, seed=0, index=index, return_params=True).params}
        assert len(fired & {"gamma", "brightness_contrast"}) == 1
        assert len(fired & {"median_blur", "gaussian_blur", "clahe"}) == 2
        both = {"to_gray", "vertical_flip"}
        assert len(fired & both) in (0, 2)
        sometimes += len(fired & both) == 2
    assert 8 <= sometimes <= 32


def test_loads_yaml_and_json_text_and_files(tmp_path) -> None:
    yaml_text = "transforms:\n  - name: rotate\n    limit: 10\n"
    json_text = json.dumps({"transforms": [{"name": "rotate", "limit": 10}]})
    (tmp_path / "p.yaml").write_text(yaml_text)
    (tmp_path / "p.json").write_text(json_text)
    specs = [ImagePipeline(s).to_spec() for s in
             (yaml_text, json_text, tmp_path / "p.yaml", str(tmp_path / "p.json"))]
    assert all(s == specs[0] for s in specs)
    with pytest.raises(SpecError, match="not found"):
        load_spec(str(tmp_path / "missing.yaml"))
    with pytest.raises(SpecError, match="neither valid JSON nor YAML"):
        load_spec("transforms: [\n")


ALBU_PIPELINE = A.Compose([
    A.HorizontalFlip(p=0.5),
    A.OneOf([A.MedianBlur(blur_limit=(3, 5), p=1), A.GaussianBlur(p=1)], p=0.9),
    A.Affine(rotate=(-20, 20), scale=(0.9, 1.1), p=0.7),
    A.RandomBrightnessContrast(p=0.5),
])


def test_accepts_albumentations_to_dict_and_matches_albumentations() -> None:
    serialized = A.to_dict(ALBU_PIPELINE)
    pipeline = ImagePipeline(serialized)
    assert pipeline.to_spec() == serialized
    oracle = A.from_dict(serialized)
    image = structured_image()
    for index in range(10):
        rng = SampleRandom()
        rng.reseed(11, index)
        oracle.set_random_state(rng.numpy, rng.python)
        expected = oracle(image=image)["image"]
        out = pipeline(image, seed=11, index=index, return_params=True)
        assert np.array_equal(out.image, expected), index
        assert {p["name"] for p in out.params} <= {"HorizontalFlip", "MedianBlur", "GaussianBlur",
                                                   "Affine", "RandomBrightnessContrast"}


def test_albumentations_dict_outside_allow_list_is_refused() -> None:
    serialized = A.to_dict(A.Compose([A.HorizontalFlip(), A.ElasticTransform()]))
    err = error_of(serialized)
    assert "ElasticTransform" in str(err) and "not allowed" in str(err)
    assert "HorizontalFlip" in str(err.allowed)


def test_albumentations_dict_with_bad_arguments_is_a_spec_error() -> None:
    serialized = A.to_dict(A.Compose([A.Resize(height=8, width=8)]))
    del serialized["transform"]["transforms"][0]["height"]
    assert "albumentations rejected" in str(error_of(serialized))


def test_listing_describes_every_parameter() -> None:
    from augsvc.image import IMAGE_TRANSFORMS

    for name, info in IMAGE_TRANSFORMS.items():
        described = info.describe()
        json.dumps(described)
        assert described["name"] == name and described["targets"][0] == "image"
        assert [p["name"] for p in described["params"]] == [p.name for p in info.params]
    crop = IMAGE_TRANSFORMS["random_crop"].describe()["params"][0]
    assert crop == {**crop, "name": "height", "required": True, "min": 1, "type": "int"}


def test_python_random_module_is_left_alone() -> None:
    random.seed(5)
    before = random.random()
    random.seed(5)
    ImagePipeline([{"name": "rotate", "p": 1}])(structured_image(), seed=1)
    assert random.random() == before


def _nested(levels: int) -> dict:
    node: dict = {"name": "horizontal_flip"}
    for _ in range(levels):
        node = {"one_of": [node]}
    return {"transforms": [node]}


@pytest.mark.parametrize("text", [
    "[" * 50_000 + "]" * 50_000,                           # JSON flow nesting
    "a: 1\nb: " + "[" * 50_000,                             # YAML flow nesting, unterminated
    json.dumps(_nested(100)),
])
def test_deeply_nested_spec_text_is_refused_before_parsing(text: str) -> None:
    with pytest.raises(SpecError, match="nested more than 72 levels deep"):
        load_spec(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"transforms": [{"name": "horizontal_flip", "note": "[[[[" * 100}]})
    assert load_spec(text)["transforms"][0]["note"].startswith("[[[[")


def test_block_yaml_nested_too_deeply_is_a_spec_error() -> None:
    text = "".join(" " * k + "a:\n" for k in range(3000))
    with pytest.raises(SpecError, match="nested too deeply"):
        load_spec(text)


def test_groups_nest_sixteen_levels_and_no_more() -> None:
    assert len(ImagePipeline(_nested(16)).transform_names) == 1
    with pytest.raises(SpecError, match=r"transforms\[0\](\.one_of\[0\]){16}: field 'one_of': groups "
                                        "are nested more than 16 levels deep"):
        ImagePipeline(_nested(17))


def test_a_spec_has_at_most_a_thousand_nodes() -> None:
    assert len(ImagePipeline([{"name": "horizontal_flip"}] * 1000).transform_names) == 1000
    with pytest.raises(SpecError, match=r"transforms\[1000\]: the spec has more than 1000"):
        ImagePipeline([{"name": "horizontal_flip"}] * 1001)


def test_a_long_string_that_is_no_file_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec("x" * 5000)


def test_a_string_is_text_then_a_preset_then_a_file(tmp_path, monkeypatch) -> None:
    from augsvc.spec import is_inline_spec

    presets = {"flip": {"transforms": [{"name": "horizontal_flip"}]}}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flip").write_text("transforms: [{name: vertical_flip}]\n")  # shadows nothing
    (tmp_path / "mine.yaml").write_text("transforms: [{name: rotate}]\n")
    assert load_spec("flip", presets) == presets["flip"]
    assert load_spec("flip", presets) is not presets["flip"]  # a copy: callers may change it
    assert load_spec("flip") == {"transforms": [{"name": "vertical_flip"}]}  # no presets: a file
    assert load_spec("mine.yaml", presets) == {"transforms": [{"name": "rotate"}]}
    assert load_spec(' {"transforms": []}', presets) == {"transforms": []}
    assert load_spec("transforms:\n  - name: gamma\n", presets) == {"transforms": [{"name": "gamma"}]}
    assert [is_inline_spec(s) for s in ("{}", " [1]", "a: 1\nb: 2", "default", "x.yaml")] == \
        [True, True, True, False, False]
    with pytest.raises(SpecError, match=r"spec file not found: flp; nor is it a preset \(flip\)"):
        load_spec("flp", presets)


def test_the_client_sends_a_string_by_the_same_rule(tmp_path, monkeypatch) -> None:
    from augsvc.wire.pipeline import pipeline_message

    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").write_text("transforms: [{name: rotate}]\n")
    (tmp_path / "mine.yaml").write_text("transforms: [{name: rotate}]\n")
    assert pipeline_message("default").preset == "default"  # augsvc's preset, not the file
    assert pipeline_message("server_only").preset == "server_only"  # the server decides
    assert json.loads(pipeline_message("mine.yaml").spec_json) == {"transforms": [{"name": "rotate"}]}
    assert pipeline_message('{"transforms": [}').spec_json == '{"transforms": [}'  # as given
    assert json.loads(pipeline_message("transforms:\n  - name: gamma\n").spec_json) == \
        {"transforms": [{"name": "gamma"}]}
    assert json.loads(pipeline_message({"transforms": []}).spec_json) == {"transforms": []}
