"""TextPipeline: a validated text spec run over batches, one random stream per sample.

Groups are decided per sample, then each transform runs once on the batch of samples that
reached it, so operations that batch well (embedding look-ups, masked-LM passes) see every
sample of a request at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from augsvc.errors import Cancelled, InputError, SpecError
from augsvc.seeding import check_seed, sample_entropy
from augsvc.spec import GroupNode, Node, PipelineSpec, load_spec, parse_spec
from augsvc.text.nlpaug_compat import translate_aliases
from augsvc.text.ops import TextSample
from augsvc.text.presets import TEXT_PRESETS
from augsvc.text.registry import TEXT_GROUPS, TEXT_TRANSFORMS

__all__ = ["AugmentedText", "TextPipeline"]


@dataclass
class AugmentedText:
    """One augmented text: its global index, variant number and, on request, the edits made."""

    text: str
    index: int
    variant: int = 0
    ops: list[dict[str, Any]] | None = None


def _variant_rng(seed: int | None, index: int, variant: int) -> random.Random:
    return random.Random(sample_entropy(seed, index, variant))


class TextPipeline:
    """A text augmentation pipeline built from a spec (dict, JSON/YAML text or file) or a preset
    name from ``augsvc.text.presets`` ("eda", "synonym", "embedding", "synonym_embedding").

    Raises:
        SpecError: unknown transform or field, or a value out of range.
    """

    def __init__(self, spec: Any) -> None:
        source = load_spec(spec, TEXT_PRESETS)
        source = translate_aliases(source)  # nlpaug's names, as in the README
        self.spec: PipelineSpec = parse_spec(source, TEXT_TRANSFORMS, groups=TEXT_GROUPS)
        _check_filters(self.spec.nodes, "transforms", inside=False)

    def to_spec(self) -> dict[str, Any]:
        """The canonical spec (it round-trips)."""
        return self.spec.to_dict()

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.to_spec(),))

    def __call__(self, text: str, *, seed: int | None = None, index: int = 0,
                 return_ops: bool = False) -> AugmentedText:
        """Augment one text as global sample ``index`` under ``seed``."""
        return self.batch([text], seed=seed, start=index, return_ops=return_ops)[0]

    def batch(self, texts: Sequence[str], *, seed: int | None = None, start: int = 0, n: int = 1,
              indices: Sequence[int] | None = None, return_ops: bool = False,
              stop: Callable[[], bool] | None = None) -> list[AugmentedText]:
        """Augment ``texts``; text ``k`` is global index ``start + k``.

        Args:
            n: augmentations per text; the result holds ``n`` entries per text, in order
                (variant 0 of text 0, variant 1 of text 0, ...).
            indices: replaces ``start`` when given: text ``k`` is global index ``indices[k]``.
            stop: asked before each transform and each semantic_filter attempt; True ends the
                work there (a server passes "the client has gone").

        Raises:
            InputError: a text is not a ``str``, or the seed/index is invalid.
            Cancelled: ``stop()`` said so.
        """
        if indices is not None and len(indices) != len(texts):
            raise InputError(f"indices has {len(indices)} entries for {len(texts)} texts")
        where = [start + k for k in range(len(texts))] if indices is None else [int(i) for i in indices]
        check_seed(seed, min(where, default=start))
        if n < 1:
            raise InputError(f"n must be >= 1, got {n}")
        for k, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(f"text {k} (index {where[k]}) must be a str, "
                                 f"got {type(text).__name__}")
        samples = [TextSample(text, _variant_rng(seed, where[k], v), where[k])
                   for k, text in enumerate(texts) for v in range(n)]
        _run(self.spec.nodes, samples, stop=stop or _never)
        return [AugmentedText(s.text, s.index, i % n, s.ops if return_ops else None)
                for i, s in enumerate(samples)]


def _never() -> bool:
    return False


def _run(nodes: Sequence[Node], samples: list[TextSample], *, stop: Callable[[], bool],
         forced: bool = False) -> None:
    """Run ``nodes`` in order; a node fires for a sample with its probability p unless forced.

    ``one_of`` picks one child per sample, weighted by the children's p, and runs it;
    ``some_of`` picks ``n`` children uniformly and runs them in tree order. ``stop()`` is asked
    before each node (Cancelled when it says True).
    """
    for node in nodes:
        if stop():
            raise Cancelled("stopped: the caller asked the work to end")
        # Every sample draws its own decision, so the batch composition never matters.
        chosen = samples if forced else [s for s in samples if s.rng.random() < node.p]
        if not chosen:
            continue
        if not isinstance(node, GroupNode):
            TEXT_TRANSFORMS[node.name].run(chosen, node.params)
            continue
        if node.kind in ("sequential", "sometimes"):
            _run(node.children, chosen, stop=stop)
            continue
        if node.kind == "semantic_filter":
            _semantic_filter(node, chosen, stop)
            continue
        picks: dict[int, list[TextSample]] = {}
        weights = [c.p for c in node.children]
        for sample in chosen:
            if node.kind == "one_of":  # some child has p > 0: parse_spec refuses groups without
                idx = sample.rng.choices(range(len(node.children)), weights=weights)
            elif node.replace:
                idx = sorted(set(sample.rng.choices(range(len(node.children)), k=node.n)))
            else:
                idx = sorted(sample.rng.sample(range(len(node.children)), node.n))
            for i in idx:
                picks.setdefault(i, []).append(sample)
        for i in sorted(picks):  # children in tree order, each on the samples that picked it
            _run([node.children[i]], picks[i], stop=stop, forced=True)


def _semantic_filter(node: GroupNode, samples: list[TextSample], stop: Callable[[], bool]) -> None:
    """Run the children, keeping a result only if it stays close in meaning to its input.

    Samples below the threshold are reset and retried (their random streams move on, so a retry
    draws anew); after the last attempt they keep the text they entered with. Each sample
    records one ``semantic_filter`` entry: the similarity (the best one seen, if rejected), the
    attempts used and whether the result was kept.
    """
    from augsvc.text.similarity import load_encoder

    before = [s.text for s in samples]
    marks = [len(s.ops) for s in samples]
    pending = list(range(len(samples)))
    best: dict[int, float] = {}
    encoder = None
    for attempt in range(1, node.params["retries"] + 2):
        for i in pending:
            samples[i].text = before[i]
            del samples[i].ops[marks[i]:]
        _run(node.children, [samples[i] for i in pending], stop=stop)  # asks stop() first
        changed = [i for i in pending if samples[i].text != before[i]]
        encoder = encoder or (load_encoder() if changed else None)
        scores = dict(zip(changed, encoder.similarity([before[i] for i in changed],
                                                      [samples[i].text for i in changed]),
                          strict=True)) if encoder and changed else {}
        still = []
        for i in pending:
            score = scores.get(i, 1.0)
            best[i] = max(best.get(i, -1.0), score)
            if score >= node.params["threshold"]:
                samples[i].ops.append({"op": "semantic_filter", "similarity": score,
                                       "attempts": attempt, "kept": True})
            else:
                still.append(i)
        pending = still
        if not pending:
            return
    for i in pending:
        samples[i].text = before[i]
        del samples[i].ops[marks[i]:]
        samples[i].ops.append({"op": "semantic_filter", "similarity": best[i],
                               "attempts": node.params["retries"] + 1, "kept": False})


def _check_filters(nodes: Sequence[Node], path: str, *, inside: bool) -> None:
    """Refuse a semantic_filter inside another: their retries multiply (11 x 11 x ... attempts)."""
    for i, node in enumerate(nodes):
        if isinstance(node, GroupNode):
            here = f"{path}[{i}].{node.kind}"
            if node.kind == "semantic_filter" and inside:
                raise SpecError("a semantic_filter cannot be inside another semantic_filter "
                                "(their retries would multiply)", path=f"{path}[{i}]",
                                allowed="one semantic_filter around the transforms it checks")
            _check_filters(node.children, here, inside=inside or node.kind == "semantic_filter")
