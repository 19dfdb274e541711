"""The semantic_filter group and its sentence encoder (all-MiniLM-L6-v2, shipped offline)."""

from __future__ import annotations

import pytest

from augsvc.errors import SpecError
from augsvc.image import ImagePipeline
from augsvc.text import TextPipeline
from augsvc.text.similarity import load_encoder

SENTENCES = ["The quick brown fox jumps over the lazy dog near the river bank.",
             "Researchers published new results about climate change and ocean temperatures.",
             "She bought fresh vegetables and bread at the market yesterday morning."]


def filtered(threshold: float, retries: int = 2) -> TextPipeline:
    return TextPipeline({"transforms": [{"semantic_filter": [
        {"name": "embedding", "p": 1, "aug_p": 0.4, "related": "any",
         "context_threshold": None}], "threshold": threshold,
        "retries": retries}]})


def test_encoder_matches_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    from augsvc.resources import minilm_folder

    reference = SentenceTransformer(str(minilm_folder()), device="cpu")
    pairs = [("A cat sat on the mat.", "A cat was sitting on the rug."),
             ("A cat sat on the mat.", "Stock markets fell sharply today.")]
    ours = load_encoder().similarity([a for a, _ in pairs], [b for _, b in pairs])
    for (a, b), score in zip(pairs, ours, strict=True):
        va, vb = reference.encode([a, b], normalize_embeddings=True)
        assert score == pytest.approx(float(va @ vb), abs=2e-4)
    assert ours[0] > 0.6 > 0.2 > ours[1]


def test_kept_results_meet_the_threshold_and_rejected_ones_are_restored() -> None:
    encoder = load_encoder()
    outs = filtered(0.9).batch(SENTENCES * 3, seed=0, return_ops=True)
    kept = rejected = 0
    for source, out in zip(SENTENCES * 3, outs, strict=True):
        verdict = out.ops[-1]
        assert verdict["op"] == "semantic_filter" and 1 <= verdict["attempts"] <= 3
        if verdict["kept"]:
            kept += 1
            assert encoder.similarity([source], [out.text])[0] >= 0.9 - 1e-3
            assert verdict["similarity"] >= 0.9
        else:
            rejected += 1
            assert out.text == source and verdict["attempts"] == 3
            assert len(out.ops) == 1 and verdict["similarity"] < 0.9
    assert kept and rejected


def test_thresholds_at_the_extremes() -> None:
    everything = filtered(-1.0).batch(SENTENCES, seed=1, return_ops=True)
    assert all(o.ops[-1]["kept"] and o.ops[-1]["attempts"] == 1 for o in everything)
    assert all(o.text != s for o, s in zip(everything, SENTENCES, strict=True))
    nothing = filtered(1.0, retries=1).batch(SENTENCES, seed=1, return_ops=True)
    assert [o.text for o in nothing] == SENTENCES
    assert all(o.ops == [{"op": "semantic_filter", "similarity": o.ops[0]["similarity"],
                          "attempts": 2, "kept": False}] for o in nothing)


def test_filter_is_deterministic_across_batches() -> None:
    pipe = filtered(0.85)
    batch = [o.text for o in pipe.batch(SENTENCES, seed=5, start=20)]
    assert batch == [pipe(s, seed=5, index=20 + k).text for k, s in enumerate(SENTENCES)]


def test_semantic_filter_spec_errors() -> None:
    with pytest.raises(SpecError, match="did you mean 'threshold'"):
        TextPipeline({"transforms": [{"semantic_filter": [{"name": "keyboard"}], "treshold": 0.5}]})
    with pytest.raises(SpecError, match="retries"):
        TextPipeline({"transforms": [{"semantic_filter": [{"name": "keyboard"}], "retries": -1}]})
    with pytest.raises(SpecError, match="exactly one group key"):
        ImagePipeline({"transforms": [{"semantic_filter": [{"name": "rotate"}]}]})
    spec = filtered(0.7).to_spec()
    assert TextPipeline(spec).to_spec() == spec and spec["transforms"][0]["threshold"] == 0.7
