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
