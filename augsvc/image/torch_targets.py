"""The torch batch backend's inputs and targets: checks, the geometry it applies to masks, boxes.

Checks of the images and masks a :class:`~augsvc.image.torch_batch.TorchBatchPipeline` call takes,
the crop that moves both, and the nearest-neighbour ops albumentations 2.0.8 uses for masks
(``mask_interpolation`` defaults to ``cv2.INTER_NEAREST`` in Resize, RandomResizedCrop and Affine):

- ``resize_nearest``: exact. ``cv2.resize(..., INTER_NEAREST)`` takes, per axis, source index
  ``min(floor(d * (src / dst)), src - 1)`` (double arithmetic), done here in float64 on the host.
- ``warp_nearest``: ``cv2.warpAffine(..., INTER_NEAREST)`` in OpenCV 5 computes the float32
  source coordinates exactly as its bilinear warp does (see :mod:`augsvc.image.torch_ops`) and
  rounds them half to even; out-of-image pixels take the border mode, BORDER_CONSTANT filling
  with ``fill_mask`` (0 by default). Same arithmetic here: equal on every pixel measured, with
  the linear warp's caveat on the CPU-dependent split of OpenCV's loops.

Masks are never touched by pixel transforms (tone, HSV, blur, normalize). Boxes (``move_boxes``)
are a few numbers per sample: they stay on the host and go through albumentations' own code --
the box processor's conversion, clipping and filtering, each transform's box function -- with
the params the batch drew, so they equal the CPU path's; the warp is refused for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.augmentations.geometric import functional as fgeometric

from augsvc.errors import InputError
from augsvc.image import torch_ops
from augsvc.image.inputs import check_points
from augsvc.image.lean import stand_in
from augsvc.image.torch_ops import _WARP_UNROLL, _border, _inverse
from augsvc.seeding import check_seed

__all__ = [
    "apply_to_masks",
    "box_refusal",
    "check_images",
    "check_masks",
    "check_where",
    "crop",
    "mask_refusal",
    "move_boxes",
    "resize_nearest",
    "warp_nearest",
]

_MASK_CLASSES = (A.Affine, A.Resize, A.RandomResizedCrop)


def check_images(images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """``images`` as one (N, C, H, W) uint8 tensor, C 1 or 3, or InputError."""
    if not isinstance(images, torch.Tensor):
        if not all(isinstance(im, torch.Tensor) and im.ndim == 3 for im in images):
            raise InputError("images must be a (N, C, H, W) tensor or a list of (C, H, W) tensors")
        shapes = sorted({tuple(im.shape) for im in images})
        if len(shapes) > 1:
            raise InputError(f"a batch needs images of one size, got (C, H, W) {shapes}: call once "
                             "per size, or resize them first (ImagePipeline takes mixed sizes)")
        images = torch.stack(list(images)) if shapes else torch.empty(0, dtype=torch.uint8)
    if images.ndim != 4 or images.dtype != torch.uint8:
        raise InputError(f"images must be a (N, C, H, W) uint8 tensor, got shape "
                         f"{tuple(images.shape)} {images.dtype}")
    n, channels, height, width = images.shape
    if n == 0 or height == 0 or width == 0:
        raise InputError(f"images is empty (shape {tuple(images.shape)})")
    if channels not in (1, 3):
        raise InputError(f"the torch batch backend takes 1 or 3 channels, got {channels} "
                         "(RGBA: use ImagePipeline)")
    return images


def check_masks(masks: Any, images: torch.Tensor) -> torch.Tensor:
    """``masks`` (N, H, W) or (N, K, H, W), integer or bool, on the images' device, as (N, K, H, W)."""
    if not isinstance(masks, torch.Tensor) or masks.ndim not in (3, 4):
        raise InputError("masks must be a (N, H, W) or (N, K, H, W) tensor")
    if masks.dtype.is_floating_point or masks.dtype.is_complex:
        raise InputError(f"masks must hold integers (labels), got {masks.dtype}")
    shape = masks.shape if masks.ndim == 4 else (masks.shape[0], 1, *masks.shape[1:])
    n, _, height, width = images.shape
    if (shape[0], *shape[2:]) != (n, height, width):
        raise InputError(f"masks of shape {tuple(masks.shape)} do not fit images of shape "
                         f"{tuple(images.shape)} (same N, H and W)")
    if masks.device != images.device:
        raise InputError(f"masks are on {masks.device}, images on {images.device}: use one device")
    return masks.reshape(shape)


def mask_refusal(name: str, t: A.BasicTransform) -> str | None:
    """Why masks cannot go through ``t`` on the batch backend, or None when they can."""
    if isinstance(t, _MASK_CLASSES) and t.mask_interpolation != cv2.INTER_NEAREST:
        return f"{name} (mask_interpolation other than nearest)"
    if isinstance(t, A.Affine) and len(set(np.ravel(t.fill_mask).tolist())) > 1:
        return f"{name} (fill_mask differing by channel)"
    return None


def crop(x: torch.Tensor, coords: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """Crop sample j of ``x`` to ``coords[j]`` (x_min, y_min, x_max, y_max), all of one size."""
    if len(set(coords)) == 1:
        x_min, y_min, x_max, y_max = coords[0]
        return x[:, :, y_min:y_max, x_min:x_max]
    device = x.device
    height, width = coords[0][3] - coords[0][1], coords[0][2] - coords[0][0]
    ys = torch.tensor([c[1] for c in coords], device=device)[:, None] + torch.arange(height, device=device)
    xs = torch.tensor([c[0] for c in coords], device=device)[:, None] + torch.arange(width, device=device)
    rows = torch.arange(len(coords), device=device).view(-1, 1, 1, 1)
    chans = torch.arange(x.shape[1], device=device).view(1, -1, 1, 1)
    return x[rows, chans, ys[:, None, :, None], xs[:, None, None, :]]


def _nearest(dst: int, src: int, start: int) -> np.ndarray:
    """OpenCV's INTER_NEAREST resize along one axis: the source index of each of ``dst`` pixels."""
    scale = 1.0 / (dst / src)  # as cv::resize: 1 / inv_scale, in double
    return np.minimum(np.floor(np.arange(dst) * scale).astype(np.int64), src - 1) + start


def resize_nearest(m: torch.Tensor, crops: Sequence[Sequence[int]], size: tuple[int, int]
                   ) -> torch.Tensor:
    """``cv2.resize(crop, size[::-1], INTER_NEAREST)`` of the crop ``crops[j]`` (x_min, y_min,
    x_max, y_max) of sample ``j`` of ``m`` (n, K, H, W), any dtype."""
    n, k, _, width = m.shape
    out_h, out_w = size
    ys = torch.from_numpy(np.stack([_nearest(out_h, y1 - y0, y0) for _, y0, _, y1 in crops]))
    xs = torch.from_numpy(np.stack([_nearest(out_w, x1 - x0, x0) for x0, _, x1, _ in crops]))
    rows = torch.gather(m, 2, ys.to(m.device).view(n, 1, out_h, 1).expand(n, k, out_h, width))
    return torch.gather(rows, 3, xs.to(m.device).view(n, 1, 1, out_w).expand(n, k, out_h, out_w))


def warp_nearest(m: torch.Tensor, matrices: Sequence[np.ndarray], border_mode: int, fill: Any
                 ) -> torch.Tensor:
    """``cv2.warpAffine(mask, matrix[:2], (W, H), INTER_NEAREST, border_mode, fill)`` of sample
    ``j`` of ``m`` (n, K, H, W) with ``matrices[j]`` (the forward matrix albumentations draws)."""
    n, k, height, width = m.shape
    device = m.device
    inverse = torch.from_numpy(np.stack([_inverse(a) for a in matrices])).to(device).view(n, 6, 1, 1)
    xs = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, width)
    ys = torch.arange(height, device=device, dtype=torch.float32).view(1, height, 1)
    tail = width - width % _WARP_UNROLL
    coords = []
    for a, b, c in (inverse[:, 0:3].unbind(1), inverse[:, 3:6].unbind(1)):
        # OpenCV's SIMD loop: fma(M0, x, y*M1 + M2); its scalar tail: fma(x, M0, y*M1) + M2
        coord = (a.double() * xs.double() + (ys * b + c).double()).float()
        if tail < width:
            late = (xs.double() * a.double() + (ys * b).double()).float() + c
            coord = torch.where(xs >= tail, late, coord)
        coords.append(coord.round().long())  # half to even, as cvRound
    cx, inside_x = _border(coords[0], width, border_mode)
    cy, inside_y = _border(coords[1], height, border_mode)
    index = (cy * width + cx).view(n, 1, -1).expand(-1, k, -1)
    out = torch.gather(m.reshape(n, k, height * width), 2, index)
    if inside_x is not None and inside_y is not None:
        value = float(np.ravel(fill)[0]) if np.size(fill) else 0.0
        if m.dtype == torch.uint8:
            value = min(max(round(value), 0), 255)
        border = torch.tensor(value, device=device).to(m.dtype)
        out = torch.where((inside_x & inside_y).view(n, 1, -1), out, border)
    return out.view(n, k, height, width)


def apply_to_masks(t: A.BasicTransform, m: torch.Tensor, params: Sequence[dict[str, Any]]) -> torch.Tensor:
    """What ``t`` (one of torch_ops.CLASSES) does to masks ``m`` (n, K, H, W): resizes and warps
    nearest; pixel transforms leave masks as they are."""
    if isinstance(t, torch_ops.RESIZING):
        whole = (0, 0, m.shape[3], m.shape[2])
        return resize_nearest(m, [p.get("crop_coords", whole) for p in params], torch_ops.output_size(t))
    if not isinstance(t, A.Affine):
        return m
    rows = [j for j, p in enumerate(params) if not fgeometric.is_identity_matrix(p["matrix"])]
    if not rows:
        return m  # albumentations leaves an identity warp out
    out = m.clone()
    out[rows] = warp_nearest(m[rows], [params[j]["matrix"] for j in rows], t.border_mode, t.fill_mask)
    return out


def box_refusal(name: str, t: A.BasicTransform) -> str | None:
    """Why boxes cannot go through ``t`` on the batch backend, or None when they can."""
    return f"{name} (boxes through a warp)" if isinstance(t, A.Affine) else None


def move_boxes(compose: A.Compose, transforms: Sequence[A.BasicTransform], fired: dict[int, dict[str, Any]],
               boxes: Any, shape: tuple[int, int, int]) -> np.ndarray:
    """One sample's boxes through the transforms that ``fired`` (by position), on the host, as
    ``compose`` (the pipeline with box processing) runs them: its own conversion into
    albumentations' normalised format, each transform's own box function, its clipping and
    filtering (min_visibility, ...) after every transform, and the conversion back."""
    data: dict[str, Any] = {"image": stand_in(shape), "bboxes": check_points(boxes, "bboxes", 4)}
    compose.preprocess(data)
    for i, t in enumerate(transforms):
        if i in fired:
            data["bboxes"] = t.apply_with_params(fired[i], bboxes=data["bboxes"])["bboxes"]
            if isinstance(t, torch_ops.RESIZING):
                shape = (*torch_ops.output_size(t), shape[2])
            elif "crop_coords" in fired[i]:
                x_min, y_min, x_max, y_max = fired[i]["crop_coords"]
                shape = (y_max - y_min, x_max - x_min, shape[2])
            data["image"] = stand_in(shape)
        data = compose.check_data_post_transform(data)
    return np.asarray(compose.postprocess(data)["bboxes"])


def check_uniform(plans: Sequence[tuple[Any, tuple[int, int, bool]]], where: list[int],
                  steps: Sequence[tuple[str, str, float]]) -> None:
    """InputError unless every sample's plan ends in one (height, width, is float32); ``steps``:
    each step's (name, kind, p)."""
    outs: dict[tuple[int, int, bool], list[int]] = {}
    for (_, out), index in zip(plans, where, strict=True):
        outs.setdefault(out, []).append(index)
    if len(outs) == 1:
        return
    kinds = ", ".join(f"{h}x{w} {'float32' if f else 'uint8'} for indices {ix[:8]}"
                      + ("..." if len(ix) > 8 else "") for (h, w, f), ix in outs.items())
    culprits = ", ".join(f"{name} (p={p})" for name, kind, p in steps
                         if kind in ("crop", "resize", "normalize") and 0 < p < 1)
    raise InputError(f"the samples of this batch come out in different sizes or dtypes ({kinds}), "
                     f"which one tensor cannot hold: {culprits or 'the spec'} change them only "
                     "when they fire; use p=1 for those, or call once per group with indices=")


def check_where(seed: int, start: int, indices: Sequence[int] | None, n: int) -> list[int]:
    """The global index of each of the ``n`` samples, checked."""
    if seed is None:
        raise InputError("seed is required: the torch batch backend is for reproducible runs")
    if indices is not None and len(indices) != n:
        raise InputError(f"indices has {len(indices)} entries for {n} images")
    where = [start + k for k in range(n)] if indices is None else list(indices)
    for index in where:
        check_seed(seed, index)
    return [int(i) for i in where]
