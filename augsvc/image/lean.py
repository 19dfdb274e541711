"""Run a built albumentations ``Compose`` without its per-call bookkeeping.

``compose(**data)`` spends microseconds per call on work a validated augsvc pipeline does not
need: shape and argument checks (the pipeline has checked its inputs), processors (there are none
without boxes or keypoints), parameter tracking and keyword dispatch through every transform's
``__call__``. :func:`lean_runner` compiles the tree once into plain Python steps that draw the
same random numbers in the same order and call the same albumentations methods with the same
parameters, so the result is byte-identical to ``compose(**data)`` for the same random state.

What each step reproduces, from albumentations 2.0's sources:

- ``Compose``: one ``py_random.random() < p`` draw per call, then its children in order.
- ``OneOf``: when it has children and (forced or ``random() < p``), one child chosen with
  ``random_generator.choice(len, p=transforms_ps)`` and run forced.
- ``SomeOf``: when ``random() < p`` (a forced ``SomeOf`` still draws), ``n`` children chosen with
  ``random_generator.choice(len, size=n, replace=replace)``, sorted, each run unforced.
- ``Sequential``: when forced or ``random() < p``, every child, unforced.
- A transform: ``params`` reset; ``should_apply``; ``get_params``; ``update_transform_params``;
  ``get_params_dependent_on_data``; then each target it handles (``apply``, ``apply_to_mask``…)
  on a contiguous input, its output made contiguous (``apply_with_params``).

A tree this does not know (another group class, a transform that overrides ``__call__`` or
``apply_with_params``, processors, replay or parameter saving) gets no runner: the caller keeps
calling the ``Compose``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import albumentations as A
import numpy as np
from albumentations.core.transforms_interface import BasicTransform
from albumentations.core.utils import ensure_contiguous_output as _contiguous

__all__ = ["LeanRunner", "lean_runner", "stand_in"]

Data = dict[str, Any]
_Step = Callable[[Data, bool], Data]


@lru_cache(maxsize=64)
def stand_in(shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 image of ``shape`` that costs nothing: all ones (its mean is exactly 1.0); made
    once. What drawing a transform's parameters reads, where no pixels are needed yet."""
    return np.broadcast_to(np.uint8(1), shape)


class _NotLean(Exception):
    """The tree holds something the lean runner does not reproduce."""


class LeanRunner:
    """Calling it equals ``compose(**data)`` for the same random state."""

    def __init__(self, compose: A.Compose, steps: list[_Step]) -> None:
        self.compose = compose
        self._steps = steps
        self._p = compose.p

    def __call__(self, data: Data) -> Data:
        if not self.compose.py_random.random() < self._p:
            return data
        for step in self._steps:
            data = step(data, False)
        return data

    def rest(self, data: Data) -> Data:
        """The steps after the first, for a caller that has run Compose's draw and the first
        transform itself (``augsvc.image.reduced``)."""
        for step in self._steps[1:]:
            data = step(data, False)
        return data


def lean_runner(compose: A.Compose) -> LeanRunner | None:
    """A runner equal to ``compose(**data)`` for the same random state, or None when the tree
    holds something it does not reproduce (then call the ``Compose``)."""
    if (type(compose) is not A.Compose or compose.processors or compose.additional_targets
            or compose.save_applied_params or compose.strict or compose.replay_mode):
        return None
    try:
        return LeanRunner(compose, [_step(t) for t in compose.transforms])
    except _NotLean:
        return None


def _step(node: Any) -> _Step:
    if isinstance(node, BasicTransform):
        return _transform(node)
    if getattr(node, "replay_mode", False):
        raise _NotLean
    children = [_step(t) for t in node.transforms]
    kind = type(node)
    if kind is A.OneOf:
        return _one_of(node, children)
    if kind is A.SomeOf:
        return _some_of(node, children)
    if kind is A.Sequential:
        return _sequential(node, children)
    raise _NotLean


def _one_of(node: A.OneOf, children: list[_Step]) -> _Step:
    ps, p, count = node.transforms_ps, node.p, len(children)

    def run(data: Data, force: bool) -> Data:
        if ps and (force or node.py_random.random() < p):
            data = children[int(node.random_generator.choice(count, p=ps))](data, True)
        return data

    return run


def _some_of(node: A.SomeOf, children: list[_Step]) -> _Step:
    p, count, n, replace = node.p, len(children), node.n, node.replace

    def run(data: Data, force: bool) -> Data:
        if node.py_random.random() < p:
            chosen = node.random_generator.choice(count, size=n, replace=replace)
            chosen.sort()
            for i in chosen:
                data = children[i](data, False)
        return data

    return run


def _sequential(node: A.Sequential, children: list[_Step]) -> _Step:
    p = node.p

    def run(data: Data, force: bool) -> Data:
        if force or node.py_random.random() < p:
            for child in children:
                data = child(data, False)
        return data

    return run


def _transform(t: BasicTransform) -> _Step:
    cls = type(t)
    if (cls.__call__ is not BasicTransform.__call__
            or cls.apply_with_params is not BasicTransform.apply_with_params
            or cls.should_apply is not BasicTransform.should_apply
            or t.replay_mode or t.deterministic):
        raise _NotLean
    functions = t._key2func  # target name -> bound method (apply, apply_to_mask, ...)
    apply = functions.get("image")
    # The base class's methods, inlined where the class keeps them: get_params returns {},
    # get_params_dependent_on_data returns its params, update_transform_params adds the image's
    # shape and the interpolation / fill / fill_mask attributes the transform has.
    own_params = cls.get_params is not BasicTransform.get_params
    own_update = cls.update_transform_params is not BasicTransform.update_transform_params
    own_data_params = cls.get_params_dependent_on_data is not BasicTransform.get_params_dependent_on_data
    attributes = [name for name in ("interpolation", "fill", "fill_mask") if hasattr(t, name)]

    def run(data: Data, force: bool) -> Data:
        p = t.p  # should_apply, inlined
        if p <= 0.0 or (p < 1.0 and not force and not t.py_random.random() < p):
            t.params = {}
            return data
        params = t.get_params() if own_params else {}
        if own_update or "image" not in data:
            params = t.update_transform_params(params=params, data=data)
        else:
            params["shape"] = data["image"].shape
            for name in attributes:
                params[name] = getattr(t, name)
        if own_data_params:
            params.update(t.get_params_dependent_on_data(params=params, data=data))
        t.params = params
        if len(data) == 1 and apply is not None:  # the image alone: the common call
            image = data.get("image")
            if type(image) is np.ndarray:  # ensure_contiguous_output of an array, inlined
                return {"image": _contiguous(apply(np.ascontiguousarray(image), **params))}
        out: Data = {}
        for key, value in data.items():
            function = functions.get(key)
            if function is None or value is None or (
                    key == "masks" and isinstance(value, list | tuple) and not value):
                out[key] = value
            else:
                out[key] = _contiguous(function(_contiguous(value), **params))
        return out

    return run
