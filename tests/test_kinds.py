"""augsvc.kinds: the presets and pipelines of images and texts, by kind."""

from __future__ import annotations

import pytest

from augsvc.errors import InputError
from augsvc.image.pipeline import ImagePipeline
from augsvc.kinds import PRESETS, make_pipeline, outputs
from augsvc.text.pipeline import TextPipeline


def test_kinds_build_the_pipeline_of_their_kind() -> None:
    image = make_pipeline("image", "digits")
    text = make_pipeline("text", "eda")
    assert isinstance(image, ImagePipeline) and isinstance(text, TextPipeline)
    assert image.to_spec() == ImagePipeline(PRESETS["image"]["digits"]).to_spec()
    assert outputs(text.batch(["a b c"], seed=0)) == [text("a b c", seed=0).text]
    with pytest.raises(InputError, match="kind must be one of image, text, got 'audio'"):
        make_pipeline("audio", {})


def test_augment_batch_is_the_pipeline_with_or_without_targets() -> None:
    import numpy as np

    from augsvc.image.targets import Target, augment_with_targets
    from augsvc.kinds import augment_batch

    images = [np.full((40, 40, 3), k * 40, np.uint8) for k in range(3)]
    targets = [Target(np.array([[2.0, 2.0, 20.0, 20.0]]), np.array([k])) for k in range(3)]
    spec = {"transforms": [{"name": "random_crop", "height": 30, "width": 30},
                           {"name": "horizontal_flip", "p": 0.5}]}
    pipeline = ImagePipeline(spec)
    alone, none = augment_batch(pipeline, images, None, seed=4, indices=[7, 8, 9])
    assert none is None
    assert all(np.array_equal(a, r.image) for a, r in zip(
        alone, pipeline.batch(images, seed=4, indices=[7, 8, 9]), strict=True))
    got, moved = augment_batch(pipeline, images, targets, seed=4, indices=[7, 8, 9])
    want, want_targets = augment_with_targets(pipeline, images, targets, seed=4, indices=[7, 8, 9])
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert moved is not None and [t.boxes.tolist() for t in moved] == \
        [t.boxes.tolist() for t in want_targets]  # type: ignore[union-attr]
    same, kept = augment_batch(None, images, targets, seed=4, indices=[7, 8, 9])
    assert kept is not None  # no pipeline: the very samples and targets, as they are
    assert all(a is b for a, b in zip(same, images, strict=True))
    assert all(a is b for a, b in zip(kept, targets, strict=True))
