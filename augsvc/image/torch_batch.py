"""TorchBatchPipeline: an image pipeline applied to a whole (N, C, H, W) uint8 torch batch at once.

The first slice of a batch backend for GPUs. Sample ``k`` of a call is augmented exactly as
``ImagePipeline(spec)(image_k, seed=seed, index=i_k)`` would augment it (``i_k = start + k`` or
``indices[k]``): same transforms fire, same sampled values, same pixels. It works in two phases.

1. Draw (host, per sample): the internal :class:`ImagePipeline`'s random streams are reseeded for
   (seed, index) and consumed as albumentations 2.0.8 does: Compose's own ``random() < p``, then
   for each transform ``should_apply()``, ``get_params()``, ``update_transform_params()`` and
   ``get_params_dependent_on_data()`` -- the transforms' own methods (Affine's as
   ``torch_ops.affine_params``, which leaves its unused bbox matrix for ``return_params``), fed a
   cached zero-cost stand-in of the image's current shape, not its pixels: no CPU pixel op runs.
2. Apply (on the batch's device, vectorised): flips by ``torch.where`` over per-sample masks,
   crops by one gather per group of equal size, the tone transforms as per-sample lookup tables
   gathered on the device, and median blur, HSV shift, affine warp and resizes by
   :mod:`augsvc.image.torch_ops` on the samples they fired for.

Exactness (no tolerance except the affine warp's; the tests use ``assert_array_equal``):

- flips and crops move pixels without arithmetic;
- brightness_contrast, gamma and normalize are, for uint8 images, 256-entry lookup tables in
  albucore itself (``multiply_add_lut``: float32 ``ramp * alpha + beta``, clipped to [0, 255] and
  truncated; ``gamma_transform``: float64 ``(ramp / 255) ** gamma * 255`` truncated;
  ``normalize_lut``: float32 ``(ramp - mean * max) * (1 / (std * max))`` via ``cv2.LUT``). We do
  not re-derive that arithmetic: each sample's table is made by the transform's own
  ``apply_with_params`` on a 1x256 ramp image (256 pixels per sample, whatever the image size),
  so the device gathers albucore's own values, bit for bit, on any device;
- ``brightness_by_max: false`` scales brightness by the mean of the image as it is at that step;
  the mean is an exact int64 sum on the device divided on the host, which is what ``np.mean``
  of a uint8 image computes (its float64 partial sums of integers are exact below 2**53);
- median_blur, hue_saturation_value, resize and random_resized_crop reproduce OpenCV's uint8
  arithmetic exactly; shift_scale_rotate (albumentations Affine) reproduces OpenCV 5's float32
  warp, equal on every pixel measured, guaranteed within 1 level on under 0.1% (torch_ops).

Supported: a flat list of horizontal_flip, vertical_flip, random_crop and center_crop (without
pad_if_needed), random_resized_crop, resize, brightness_contrast, gamma, hue_saturation_value,
median_blur, shift_scale_rotate (any border mode, no fit_output; resizes and warps bilinear only)
and normalize (per-channel statistics, uint8 input; only flips and crops after it), with any
``p`` -- the whole ``seed7`` preset; albumentations' ``A.to_dict`` form with the same classes
(Affine for shift_scale_rotate). Images must be uint8 with 1 or 3 channels. ``masks=`` (N, [K,]
H, W integer labels) move with the geometry as albumentations moves ``mask``, exactly: flips and
crops by indexing, resizes and warps nearest (:mod:`augsvc.image.torch_targets`); pixel
transforms leave them. ``bboxes=`` move on the host by albumentations' own box code (equal
output), through anything but the warp. Anything else -- other transforms, groups, a
``mask_interpolation`` other than nearest, keypoints (not yet) -- raises :class:`SpecError`.
When transforms with ``p < 1`` leave samples of one batch in different sizes or dtypes (a crop
or normalize that fired for some), the call raises :class:`InputError` before any pixel work:
a tensor cannot hold them; call once per group (``indices=``) or use ``p=1`` for those.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import albumentations as A
import numpy as np
import torch
from albumentations.augmentations.crops.transforms import CropSizeError

from augsvc.errors import InputError, SpecError
from augsvc.image import torch_ops, torch_targets
from augsvc.image.lean import stand_in
from augsvc.image.pipeline import ImagePipeline
from augsvc.image.results import clean_params
from augsvc.spec import GroupNode, Node

__all__ = ["SUPPORTED", "TorchBatchPipeline"]

SUPPORTED = ("horizontal_flip", "vertical_flip", "random_crop", "center_crop", "random_resized_crop",
             "resize", "brightness_contrast", "gamma", "hue_saturation_value", "median_blur",
             "shift_scale_rotate", "normalize")
"""Transforms the batch backend runs, by augsvc name."""

_LUT_CLASSES = (A.RandomBrightnessContrast, A.RandomGamma)
_TARGETS = ("mask", "keypoints")
_RAMP = np.arange(256, dtype=np.uint8)
_Params = list[list[dict[str, Any]]]


@dataclass(frozen=True)
class _Step:
    """One transform of the pipeline and how the batch backend applies it."""

    name: str
    transform: A.BasicTransform
    kind: Literal["flip", "crop", "lut", "normalize", "pixel", "resize"]
    dim: int = -1  # the dimension a flip reverses


@dataclass
class _Group:
    """Samples of the batch that are of one size and dtype at this point, by batch position."""

    rows: list[int]
    x: torch.Tensor
    m: torch.Tensor | None = None  # the masks, (n, K, H, W)


def _step(name: str, t: A.BasicTransform, after_normalize: bool) -> _Step | str:
    """How to run ``t`` on a batch, or why it cannot be."""
    if isinstance(t, A.HorizontalFlip | A.VerticalFlip):
        return _Step(name, t, "flip", -1 if isinstance(t, A.HorizontalFlip) else -2)
    if isinstance(t, A.RandomCrop | A.CenterCrop):
        return f"{name} (pad_if_needed)" if t.pad_if_needed else _Step(name, t, "crop")
    pixel = isinstance(t, torch_ops.CLASSES)
    if pixel or isinstance(t, _LUT_CLASSES) or (isinstance(t, A.Normalize) and t.normalization == "standard"):
        if after_normalize:
            return f"{name} (after normalize: float32 input)"
        if isinstance(t, A.RandomBrightnessContrast) and t.ensure_safe_range and not t.brightness_by_max:
            return f"{name} (ensure_safe_range with brightness_by_max false)"
        if pixel:
            return torch_ops.refusal(name, t) or _Step(
                name, t, "resize" if isinstance(t, torch_ops.RESIZING) else "pixel")
        return _Step(name, t, "normalize" if isinstance(t, A.Normalize) else "lut")
    return name


def _group_names(nodes: Sequence[Node]) -> list[str]:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, GroupNode):
            out += [f"{node.kind} (group)", *_group_names(node.children)]
    return out


class TorchBatchPipeline:
    """Augment a (N, C, H, W) uint8 torch batch on its own device, sample by sample exactly as
    :class:`ImagePipeline` would (see the module docstring).

    Args:
        spec: any spec form :class:`ImagePipeline` accepts.

    Raises:
        SpecError: the spec is invalid, or uses anything outside the supported set; the message
            names every such transform and group.

    Like ImagePipeline it holds random generators (reseeded for every sample, so results never
    depend on earlier calls) and is not thread-safe: give each thread its own.
    """

    def __init__(self, spec: Any) -> None:
        self.pipeline = ImagePipeline(spec)
        built = self.pipeline._variants[False, False]
        self._compose = built.compose
        problems: list[str] = []
        if self.pipeline.spec is not None:
            problems += _group_names(self.pipeline.spec.nodes)
        else:
            problems += [f"{type(t).__name__} (group)" for t in self._compose.transforms
                         if isinstance(t, A.BaseCompose)]
        self._steps: list[_Step] = []
        self._mask_problems: list[str] = []
        self._box_problems: list[str] = []
        after_normalize = False
        for name, t in built.leaves:
            step = _step(name, t, after_normalize)
            if isinstance(step, str):
                problems.append(step)
            else:
                self._steps.append(step)
                self._mask_problems += [why] if (why := torch_targets.mask_refusal(name, t)) else []
                self._box_problems += [why] if (why := torch_targets.box_refusal(name, t)) else []
                after_normalize = after_normalize or step.kind == "normalize"
        if problems:
            raise SpecError("the torch batch backend does not support "
                            + ", ".join(dict.fromkeys(problems))
                            + "; use ImagePipeline for this spec",
                            allowed="a flat list of " + ", ".join(SUPPORTED))
        self._dependent = [functools.partial(torch_ops.DRAWS[type(t)], t) if type(t) in torch_ops.DRAWS
                           else t.get_params_dependent_on_data for t in (s.transform for s in self._steps)]

    def __repr__(self) -> str:
        return f"TorchBatchPipeline({[s.name for s in self._steps]})"

    @overload
    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor], *, seed: int, start: int = 0,
                 indices: Sequence[int] | None = None, return_params: bool = False,
                 masks: torch.Tensor | None = None, bboxes: Sequence[Any],
                 **targets: Any) -> tuple[Any, ...]: ...

    @overload
    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor], *, seed: int, start: int = 0,
                 indices: Sequence[int] | None = None, return_params: Literal[False] = False,
                 masks: None = None, **targets: Any) -> torch.Tensor: ...

    @overload
    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor], *, seed: int, start: int = 0,
                 indices: Sequence[int] | None = None, return_params: Literal[True],
                 masks: None = None, **targets: Any) -> tuple[torch.Tensor, _Params]: ...

    @overload
    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor], *, seed: int, start: int = 0,
                 indices: Sequence[int] | None = None, return_params: Literal[False] = False,
                 masks: torch.Tensor, **targets: Any) -> tuple[torch.Tensor, torch.Tensor]: ...

    @overload
    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor], *, seed: int, start: int = 0,
                 indices: Sequence[int] | None = None, return_params: Literal[True],
                 masks: torch.Tensor, **targets: Any) -> tuple[torch.Tensor, torch.Tensor, _Params]: ...

    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor], *, seed: int, start: int = 0,
                 indices: Sequence[int] | None = None, return_params: bool = False,
                 masks: torch.Tensor | None = None, bboxes: Sequence[Any] | None = None,
                 **targets: Any) -> Any:
        """Augment ``images``; sample ``k`` is global index ``start + k`` (or ``indices[k]``).

        Args:
            images: a (N, C, H, W) uint8 tensor, C 1 or 3, on any device; or a list of N
                (C, H, W) tensors of one size, which are stacked.
            seed: the seed (required: this backend exists for reproducible runs).
            start: the global index of the first sample.
            indices: when given, replaces ``start``: the global index of every sample.
            return_params: also return, per sample, the transforms that fired and their values,
                as ``ImagePipeline``'s ``AugmentedImage.params``.
            masks: a (N, H, W) or (N, K, H, W) integer tensor on the images' device, moved with
                the geometry as ``ImagePipeline``'s ``mask`` (``masks``: K per sample) would be.
            bboxes: N arrays (n_k, 4 + extra) in the spec's ``bbox_format``, moved on the host as
                ``ImagePipeline`` moves ``bboxes`` (clipped, filtered); not through a warp.

        Returns:
            the batch, on the input's device: uint8, or float32 after normalize; with ``masks``
            a tuple (batch, masks) (masks in their shape and dtype, at the batch's H and W);
            ``bboxes`` appends a list of N (m_k, 4 + extra) float arrays; ``return_params`` the
            params: (batch, params), (batch, masks, params), (batch, masks, bboxes, params), ...

        Raises:
            InputError: malformed images, seed or indices; samples that would come out in
                different sizes or dtypes; a crop larger than the image.
            SpecError: ``mask`` or ``keypoints`` were given (not supported yet), masks with a
                transform that would not move them by nearest neighbour, or boxes with a warp.
        """
        given = [k for k in _TARGETS if targets.get(k) is not None]
        if given or set(targets) - set(_TARGETS):
            if not given:
                raise TypeError(f"unexpected arguments: {', '.join(sorted(targets))}")
            raise SpecError(f"the torch batch backend augments images, masks= and bboxes= only; "
                            f"{', '.join(given)} not supported yet: use ImagePipeline.batch",
                            allowed="images, masks, bboxes")
        x = torch_targets.check_images(images)
        m = None if masks is None else torch_targets.check_masks(masks, x)
        if m is not None and self._mask_problems:
            raise SpecError("the torch batch backend cannot move masks through "
                            + ", ".join(self._mask_problems), allowed="nearest mask_interpolation")
        n, channels, height, width = x.shape
        where = torch_targets.check_where(seed, start, indices, n)
        plans = [self._draw(seed, where[k], (height, width, channels), k) for k in range(n)]
        boxes = None if bboxes is None else self._boxes(bboxes, plans, (height, width, channels))
        torch_targets.check_uniform(plans, where, [(s.name, s.kind, s.transform.p) for s in self._steps])
        groups = [_Group(list(range(n)), x, m)]
        for i, step in enumerate(self._steps):
            done: list[_Group] = []
            for group in groups:
                fired = [r for r in group.rows if i in plans[r][0]]
                done += self._apply(step, group, fired, [plans[r][0][i] for r in fired]) if fired \
                    else [group]
            groups = _merge(done)
        (group,) = groups
        order = torch.tensor(np.argsort(group.rows), device=x.device)
        result: list[Any] = [_own(group.x, order, x)]
        if masks is not None and group.m is not None:
            result.append(_own(group.m, order, masks).reshape(n, *masks.shape[1:-2], *group.m.shape[2:]))
        result += [] if boxes is None else [boxes]
        if not return_params:
            return result[0] if len(result) == 1 else tuple(result)
        params = [[{"name": self._steps[i].name, "params": clean_params(  # partial: a deferred value
            {k: v() if isinstance(v, functools.partial) else v for k, v in p.items()})}
            for i, p in fired.items()] for fired, _ in plans]
        return (*result, params)

    def _boxes(self, bboxes: Sequence[Any], plans: list[tuple[dict[int, dict[str, Any]], Any]],
               shape: tuple[int, int, int]) -> list[np.ndarray]:
        if len(bboxes) != len(plans) or self._box_problems or self._compose.p < 1:
            why = ("cannot move boxes through " + ", ".join(self._box_problems) if self._box_problems
                   else "moves bboxes: one (n, 4+) array per image, and a pipeline of p 1")
            raise SpecError(f"the torch batch backend {why}", allowed="flips, crops, resizes, tone")
        key = (True, False)  # ImagePipeline's variant with box processing (its transforms: the same)
        built = self.pipeline._variants.get(key) or self.pipeline._variants.setdefault(
            key, self.pipeline._make(with_targets=True, rgba=False))
        if "bboxes" not in built.compose.processors:
            raise SpecError("bboxes given to a pipeline without bbox_params", allowed="bbox_params")
        transforms = [s.transform for s in self._steps]
        return [torch_targets.move_boxes(built.compose, transforms, fired, b, shape)
                for (fired, _), b in zip(plans, bboxes, strict=True)]

    def _draw(self, seed: int, index: int, shape: tuple[int, int, int], k: int
              ) -> tuple[dict[int, dict[str, Any]], tuple[int, int, bool]]:
        """Consume the random streams for one sample as Compose and its transforms would.

        Returns:
            the parameters of each step that fired, by step number, and the sample's output
            (height, width, is float32).
        """
        self.pipeline._random.reseed(seed, index)
        fired: dict[int, dict[str, Any]] = {}
        floats = False
        if not self._compose.py_random.random() < self._compose.p:  # Compose.__call__'s own draw
            return fired, (shape[0], shape[1], floats)
        for i, step in enumerate(self._steps):
            t = step.transform
            if not t.should_apply():
                continue
            data = {"image": stand_in(shape)}
            try:
                params = t.update_transform_params(params=t.get_params(), data=data)
                params.update(self._dependent[i](params=params, data=data))
            except CropSizeError as exc:
                raise InputError(f"{step.name} on sample {k} (index {index}, image "
                                 f"{shape[0]}x{shape[1]}): {exc}") from exc
            fired[i] = params
            if step.kind == "crop":
                x_min, y_min, x_max, y_max = params["crop_coords"]
                shape = (y_max - y_min, x_max - x_min, shape[2])
            elif step.kind == "resize":
                shape = (*torch_ops.output_size(t), shape[2])
            floats = floats or step.kind == "normalize"
        return fired, (shape[0], shape[1], floats)

    def _apply(self, step: _Step, group: _Group, fired: list[int], params: list[dict[str, Any]]
               ) -> list[_Group]:
        """Apply ``step`` to the samples ``fired`` (batch positions) of ``group``, and its masks."""
        x, m, device = group.x, group.m, group.x.device
        pos = {r: j for j, r in enumerate(group.rows)}
        every = len(fired) == len(group.rows)
        if step.kind == "lut":  # uint8 to uint8: rows that did not fire get the identity table
            tables = np.broadcast_to(_RAMP, (len(group.rows), x.shape[1], 256)).copy()
            t = step.transform
            if isinstance(t, A.RandomBrightnessContrast) and not t.brightness_by_max:
                # Drawn against a stand-in of mean 1.0, beta holds the raw factor: scale it by the
                # mean of the image as it is now, as albumentations does (np.mean; exact here).
                sums = x.sum(dim=(1, 2, 3), dtype=torch.int64).tolist()
                for r, p in zip(fired, params, strict=True):
                    p["beta"] = p["beta"] * (sums[pos[r]] / x[0].numel())
            for r, p in zip(fired, params, strict=True):
                tables[pos[r]] = _table(t, p, x.shape[1])
            return [_Group(group.rows, _lookup(x, tables), m)]
        index = torch.tensor([pos[r] for r in fired], device=device)
        on, on_m = (x, m) if every else (x[index], None if m is None else m[index])
        if step.kind == "flip":
            on, on_m = on.flip(step.dim), None if on_m is None else on_m.flip(step.dim)
        elif step.kind in ("pixel", "resize"):
            on_m = None if on_m is None else torch_targets.apply_to_masks(step.transform, on_m, params)
            on = torch_ops.apply(step.transform, on, params)
        elif step.kind == "crop":
            coords = [p["crop_coords"] for p in params]
            on = torch_targets.crop(on, coords)
            on_m = None if on_m is None else torch_targets.crop(on_m, coords)
        else:
            on = _lookup(on, np.stack([_table(step.transform, p, x.shape[1]) for p in params]))
        if every:
            return [_Group(group.rows, on, on_m)]
        if step.kind in ("flip", "pixel"):  # same size and dtype: the samples that did not fire stay put
            return [_Group(group.rows, x.index_copy(0, index, on),
                           None if m is None or on_m is None else m.index_copy(0, index, on_m))]
        fired_set = set(fired)
        rest = [r for r in group.rows if r not in fired_set]
        kept = torch.tensor([pos[r] for r in rest], device=device)
        return [_Group(fired, on, on_m), _Group(rest, x[kept], None if m is None else m[kept])]


def _table(t: A.BasicTransform, params: dict[str, Any], channels: int) -> np.ndarray:
    """(C, 256): what ``t`` makes of each uint8 value in each channel, by its own apply()."""
    ramp = _RAMP[None, :, None].repeat(channels, axis=2)  # (1, 256, C), contiguous: a new copy
    out = t.apply_with_params(params, image=ramp)["image"]
    return np.asarray(out).reshape(256, channels).T


def _lookup(x: torch.Tensor, tables: np.ndarray) -> torch.Tensor:
    """Per sample and channel table lookup: x (n, C, H, W) uint8, tables (n, C, 256)."""
    n, channels, height, width = x.shape
    lut = torch.from_numpy(np.ascontiguousarray(tables)).to(x.device)
    out = torch.gather(lut, 2, x.reshape(n, channels, height * width).long())
    return out.view(n, channels, height, width)


def _merge(groups: list[_Group]) -> list[_Group]:
    """Join groups whose samples are of one size and dtype again."""
    by_key: dict[tuple[Any, ...], list[_Group]] = {}
    for group in groups:
        by_key.setdefault((*group.x.shape[1:], group.x.dtype), []).append(group)
    return [parts[0] if len(parts) == 1 else
            _Group([r for g in parts for r in g.rows], torch.cat([g.x for g in parts]),
                   None if parts[0].m is None else torch.cat([g.m for g in parts if g.m is not None]))
            for parts in by_key.values()]


def _own(out: torch.Tensor, order: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
    """``out`` in batch order, contiguous, and never the caller's ``given`` tensor itself."""
    if not bool((order == torch.arange(len(order), device=order.device)).all()):
        out = out[order]
    out = out.contiguous()
    if out.untyped_storage().data_ptr() == given.untyped_storage().data_ptr():
        out = out.clone()  # nothing changed the pixels: still never hand back the caller's tensor
    return out
