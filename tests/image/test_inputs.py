"""Bad and unusual inputs: clear exceptions for the bad, correct results for the unusual."""

from __future__ import annotations

import numpy as np
import pytest

from augsvc.errors import InputError, SpecError
from augsvc.image import ImagePipeline
from tests.conftest import structured_image

FLIP = ImagePipeline([{"name": "horizontal_flip", "p": 1}])


@pytest.mark.parametrize(
    ("image", "needle"),
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((4, 4, 3, 1), np.uint8), "HxW or HxWxC"),
        (np.zeros((4,), np.uint8), "HxW or HxWxC"),
        (np.zeros((4, 4, 3), np.float64), "uint8 or float32"),
        (np.zeros((4, 4, 3), np.int32), "uint8 or float32"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_images_raise_input_error(image: object, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        FLIP(image)  # type: ignore[arg-type]


def test_crop_bigger_than_image_names_the_transform_and_sizes() -> None:
    pipeline = ImagePipeline([{"name": "random_crop", "height": 100, "width": 100}])
    with pytest.raises(InputError) as info:
        pipeline(structured_image(), seed=0, index=4)
    message = str(info.value)
    assert "random_crop" in message and "sample 4" in message and "pad_if_needed" in message
    padded = ImagePipeline([{"name": "random_crop", "height": 100, "width": 100,
                             "pad_if_needed": True}])
    assert padded(structured_image(), seed=0).image.shape == (100, 100, 3)


def test_zero_size_crop_is_refused_when_the_spec_is_built() -> None:
    with pytest.raises(SpecError, match="height"):
        ImagePipeline([{"name": "center_crop", "height": 0, "width": 5}])


def test_transform_that_cannot_take_the_channels_says_so() -> None:
    pipeline = ImagePipeline([{"name": "hue_saturation_value", "p": 1}])
    two_channels = structured_image()[..., :2].copy()
    with pytest.raises(InputError, match=r"hue_saturation_value on sample 0 .*3-channel"):
        pipeline(two_channels, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"mask": np.zeros((10, 10), np.uint8)}, "mask size"),
        ({"mask": [[0]]}, "mask must be"),
        ({"bboxes": [[1, 2, 3]]}, "shape \\(N, >= 4\\)"),
        ({"bboxes": [[1, 2, "x", 4]]}, "numbers"),
        ({"keypoints": [[np.nan, 1]]}, "finite"),
        ({"seed": -1}, "seed must be in"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"index": -2}, "non-negative"),
    ],
)
def test_bad_targets_and_seeds_raise_input_error(kwargs: dict, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        FLIP(structured_image(), **kwargs)


def test_batch_checks_lengths_and_names_the_bad_sample() -> None:
    images = [structured_image(), np.zeros((0, 3), np.uint8)]
    with pytest.raises(InputError, match="sample 1 \\(index 11\\)"):
        FLIP.batch(images, start=10)
    with pytest.raises(InputError, match="masks has 1 entries for 2 images"):
        FLIP.batch(images, masks=[None])


def test_batch_of_mixed_sizes_dtypes_and_channels() -> None:
    images = [
        structured_image(30, 50),
        structured_image(64, 40, channels=1),
        structured_image(33, 33, channels=4),
        structured_image(20, 70).astype(np.float32) / 255.0,
    ]
    pipeline = ImagePipeline([{"name": "horizontal_flip", "p": 1}, {"name": "gamma", "p": 1},
                              {"name": "rotate", "p": 1, "limit": 10}])
    outs = pipeline.batch(images, seed=0)
    for image, out in zip(images, outs, strict=True):
        assert out.image.shape == image.shape and out.image.dtype == image.dtype
        assert not np.array_equal(out.image, image)
    assert outs[3].image.min() >= 0.0 and outs[3].image.max() <= 1.0
    assert [o.index for o in outs] == [0, 1, 2, 3]


def test_masks_boxes_and_keypoints_travel_in_a_batch() -> None:
    image = structured_image()
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[10:20, 5:15] = 1
    outs = FLIP.batch([image, image], masks=[mask, None], bboxes=[[[5, 10, 15, 20, 3]], None],
                      keypoints=[None, [[5, 10]]])
    assert np.array_equal(outs[0].mask, mask[:, ::-1])
    assert np.allclose(outs[0].bboxes, [[65, 10, 75, 20, 3]])
    assert outs[1].mask is None and outs[1].bboxes is None
    assert np.allclose(outs[1].keypoints, [[74, 10]])


def test_boxes_do_not_change_the_image_draws() -> None:
    pipeline = ImagePipeline([{"name": "random_crop", "height": 40, "width": 40},
                              {"name": "shift_scale_rotate", "p": 0.8},
                              {"name": "brightness_contrast"}])
    image = structured_image()
    for index in range(8):
        plain = pipeline(image, seed=4, index=index).image
        boxed = pipeline(image, bboxes=[[10, 10, 30, 30]], keypoints=[[20, 20]], seed=4,
                         index=index)
        assert np.array_equal(plain, boxed.image), index
        assert boxed.bboxes is not None and boxed.keypoints is not None


def test_a_list_of_masks_moves_with_the_image() -> None:
    image = structured_image()
    first = np.zeros(image.shape[:2], np.uint8)
    first[5:15, 5:25] = 1
    second = np.zeros(image.shape[:2], np.uint8)
    second[30:50, 40:60] = 2
    out = ImagePipeline([{"name": "vertical_flip", "p": 1}])(image, masks=[first, second])
    assert out.masks is not None and len(out.masks) == 2
    assert np.array_equal(out.masks[0], first[::-1]) and np.array_equal(out.masks[1], second[::-1])
    with pytest.raises(InputError, match="list of HxW"):
        FLIP(image, masks=np.stack([first, second]))
    with pytest.raises(InputError, match="mask size"):
        FLIP(image, masks=[first[:10]])


def test_rgba_with_boxes_keeps_alpha_and_matches_rgba_alone() -> None:
    image = structured_image(channels=4)
    pipeline = ImagePipeline([{"name": "brightness_contrast", "p": 1}, {"name": "rotate", "p": 1}])
    boxed = pipeline(image, bboxes=[[10, 10, 30, 30]], seed=2, index=1)
    alone = pipeline(image, seed=2, index=1)
    assert np.array_equal(boxed.image, alone.image)
    rgb_only = ImagePipeline([{"name": "brightness_contrast", "p": 1}])
    out = rgb_only(image, bboxes=[[10, 10, 30, 30]], seed=0)
    assert np.array_equal(out.image[..., 3], image[..., 3])
    assert not np.array_equal(out.image[..., :3], image[..., :3])


def test_a_preset_name_builds_the_preset() -> None:
    from augsvc.image.presets import image_preset

    assert ImagePipeline("digits").to_spec() == ImagePipeline(image_preset("digits")).to_spec()
