"""How large an image a pipeline can make, known before any pixel is touched.

A pipeline can turn a small input into a huge one: an 8x8 image through ``random_crop``
60000x60000 with ``pad_if_needed`` is a 10 GB array. :func:`output_bound` walks the
albumentations tree a pipeline runs (augsvc specs and ``A.to_dict`` pipelines alike) and gives,
for an input of a given size, an upper bound on the output size and on the largest image held
along the way, so a caller with a limit refuses the request instead of allocating.

Each transform class that changes the image size has a rule in ``SIZE_RULES``; the others are in
``SIZE_KEEPING``. A class in neither is refused (:class:`UnknownSizeError`), so a new transform
cannot skip the accounting: a guard test checks every registry entry is covered, and a property
test checks each rule against what albumentations really makes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import albumentations as A

__all__ = ["SIZE_KEEPING", "SIZE_RULES", "SizeBound", "UnknownSizeError", "output_bound"]


@dataclass(frozen=True)
class Step:
    """What one transform does to the size: the output (height, width) and the largest image it
    holds on the way (the padded image of a padding crop)."""

    height: int
    width: int
    peak: tuple[int, int]


@dataclass(frozen=True)
class SizeBound:
    """Upper bounds for one input size.

    Attributes:
        height, width: the output is at most this tall and wide.
        peak: (height, width) of the largest image along the way (input, intermediates, output):
            none has more pixels.
        peak_by: the transform that made the peak (None: the input itself is the largest).
    """

    height: int
    width: int
    peak: tuple[int, int]
    peak_by: A.BasicTransform | None = None

    @property
    def pixels(self) -> int:
        """Pixels of the output bound."""
        return self.height * self.width

    @property
    def peak_pixels(self) -> int:
        return self.peak[0] * self.peak[1]


class UnknownSizeError(TypeError):
    """A transform class has no size rule: its output size cannot be bounded."""


def _crop(t: A.BasicTransform, h: int, w: int) -> Step:
    # Without padding, a crop larger than the image fails; with it, the image is first padded
    # to at least the crop size, and that padded image is the largest thing held.
    if t.pad_if_needed:  # type: ignore[attr-defined]
        return Step(t.height, t.width, (max(h, t.height), max(w, t.width)))  # type: ignore[attr-defined]
    return Step(t.height, t.width, (t.height, t.width))  # type: ignore[attr-defined]


def _resize(t: A.BasicTransform, h: int, w: int) -> Step:
    return Step(t.height, t.width, (t.height, t.width))  # type: ignore[attr-defined]


def _resized_crop(t: A.BasicTransform, h: int, w: int) -> Step:
    height, width = t.size  # type: ignore[attr-defined]
    return Step(height, width, (height, width))


def _affine(t: A.BasicTransform, h: int, w: int) -> Step:
    if not t.fit_output:  # type: ignore[attr-defined]
        return Step(h, w, (h, w))
    # fit_output grows the canvas to hold the warped image: each side of the warped bounding box
    # is at most scale * (1 + |tan shear|) * (h + w), whatever the rotation.
    scale = max(abs(v) for limits in t.scale.values() for v in limits)  # type: ignore[attr-defined]
    shears = [abs(v) for limits in t.shear.values() for v in limits]  # type: ignore[attr-defined]
    worst = max(shears, default=0.0)
    slant = 1.0 + (math.inf if worst >= 89.0 else math.tan(math.radians(worst)))
    side = scale * slant * (h + w) + 2
    big = int(min(side, 2.0**62)) if math.isfinite(side) else 2**62
    return Step(big, big, (big, big))


SIZE_RULES: dict[type[A.BasicTransform], Callable[[A.BasicTransform, int, int], Step]] = {
    A.RandomCrop: _crop,
    A.CenterCrop: _crop,
    A.Resize: _resize,
    A.RandomResizedCrop: _resized_crop,
    A.Affine: _affine,  # also ShiftScaleRotate, its subclass
}
"""Transform classes that change the size, with how (subclasses follow their base's rule)."""

SIZE_KEEPING: tuple[type[A.BasicTransform], ...] = (
    A.ImageOnlyTransform,  # pixel-level transforms never change the size
    A.HorizontalFlip, A.VerticalFlip, A.NoOp, A.CoarseDropout,
    A.Rotate,  # the same size, or smaller with crop_border
)
"""Transform classes whose output is never larger than their input."""


def _step(t: A.BasicTransform, h: int, w: int) -> Step:
    for cls in type(t).__mro__:
        rule = SIZE_RULES.get(cls)
        if rule is not None:
            return rule(t, h, w)
    if isinstance(t, SIZE_KEEPING):
        return Step(h, w, (h, w))
    raise UnknownSizeError(f"no output-size rule for {type(t).__name__}: add it to "
                           "augsvc.image.sizes.SIZE_RULES or SIZE_KEEPING")


@dataclass
class _State:
    """Upper bounds while walking: current size, and the peak with who made it."""

    height: int
    width: int
    peak: tuple[int, int]
    peak_by: A.BasicTransform | None = None

    def merge(self, other: _State) -> None:
        """Either this or ``other`` happened: keep a bound on both."""
        self.height, self.width = max(self.height, other.height), max(self.width, other.width)
        self.raise_peak(other.peak, other.peak_by)

    def raise_peak(self, peak: tuple[int, int], by: A.BasicTransform | None) -> None:
        if peak[0] * peak[1] > self.peak[0] * self.peak[1]:
            self.peak, self.peak_by = peak, by

    def copy(self) -> _State:
        return _State(self.height, self.width, self.peak, self.peak_by)


def _walk(node: A.BasicTransform | A.BaseCompose, state: _State, certain: bool) -> _State:
    """The state after ``node``; ``certain``: the node is sure to run (else it may be skipped).

    Rules are monotone (a larger input never gives a smaller bound), so the element-wise
    maximum over what may happen is an upper bound of everything that can.
    """
    fires = certain and node.p >= 1.0
    if isinstance(node, A.BaseCompose):
        children: Sequence[A.BasicTransform | A.BaseCompose] = node.transforms
        if isinstance(node, A.OneOf):  # one child, applied with force
            picks, forced = 1, True
        elif isinstance(node, A.SomeOf):  # n children in turn, each with its own p
            picks, forced = node.n, False
        else:  # Compose, Sequential: each child in order, with its own p
            out = state.copy()
            for child in children:
                out = _walk(child, out, fires)
            if not fires:
                out.merge(state)
            return out
        out = state.copy()
        for _ in range(picks):
            options = [_walk(child, out.copy(), fires and forced) for child in children]
            for option in options[1:]:
                options[0].merge(option)
            if not (fires and forced):
                options[0].merge(out)
            if (options[0].height, options[0].width, options[0].peak) == \
                    (out.height, out.width, out.peak):
                break  # a fixed point: more rounds cannot grow the bound
            out = options[0]
        if not fires:
            out.merge(state)
        return out
    step = _step(node, state.height, state.width)
    out = _State(step.height, step.width, state.peak, state.peak_by)
    out.raise_peak(step.peak, node)
    if not fires:
        out.merge(state)
    return out


def output_bound(compose: A.BaseCompose, height: int, width: int) -> SizeBound:
    """Upper bounds on what ``compose`` makes of a ``height`` x ``width`` image.

    Raises:
        UnknownSizeError: a transform in ``compose`` has no size rule.
    """
    state = _walk(compose, _State(height, width, (height, width)), certain=True)
    return SizeBound(state.height, state.width, state.peak, state.peak_by)
