"""The torch batch backend's pixel operations beyond lookup tables: median blur, HSV shift, affine
warp and bilinear resize.

Each takes a (n, C, H, W) uint8 batch on any device, and each sample's parameters as drawn on the
host by the transform itself; each reproduces what OpenCV (the build albumentations calls) makes
of the same pixels. How close, measured against opencv-python 5.0 on x86-64 (AVX2), over real
photos and, for HSV, every possible pixel value:

- ``median_blur``: exact. ``cv2.medianBlur`` takes the true median of the k x k window with
  BORDER_REPLICATE; here a comparator network (forgetful selection: keep ``k*k // 2 + 2``
  values, drop the smallest and largest, take in the next, ...) over the k*k shifted views of a
  replicate-padded batch: elementwise min/max only, no sort and no k*k copy of the batch.
- ``hue_saturation_value``: exact. albumentations converts uint8 RGB to HSV with OpenCV
  (integer arithmetic with the 12-bit ``sdiv``/``hdiv`` division tables: reproduced in int32,
  equal for all 2**24 colours), shifts H, S, V by 256-entry tables (built here as
  albumentations builds them) and converts back, in float32: ``v * factor(h, s) * 255`` where
  the factor (1, 1 - s, or ``fma(-s, f, 1)`` as the compiler contracts it) depends only on
  (h, s), so it is a 256 x 256 table made once on the host (float64 emulates the fused
  multiply-add; equal for all 2**24 HSV values). OpenCV's SIMD loop truncates the result where
  its scalar tail loop rounds it, so which columns of an image truncate depends on its width and
  on the OpenCV build: found once per image size by converting a probe image with OpenCV itself.
- ``shift_scale_rotate`` (albumentations ``Affine``, bilinear): OpenCV 5's ``warpAffine`` runs in
  float32 -- inverse matrix cast to float32, source coordinates ``fma(M0, x, y*M1 + M2)``,
  bilinear ``fma(a, p01 - p00, p00)`` along x then y, rounded half to even. The same arithmetic
  here (float64 steps emulate each fused multiply-add), and for the last ``W mod 16`` columns,
  which OpenCV's scalar loop does on AVX2, its ``fma(x, M0, y*M1) + M2``. Equal on every pixel
  measured; as the split between the loops depends on the CPU OpenCV runs on, the guarantee is
  a tolerance: at most 1 level, on under 0.1% of the pixels (see the tests).
  Border modes: constant (any fill), replicate, reflect, reflect_101, wrap.
- ``resize`` and ``random_resized_crop`` (bilinear): exact. OpenCV's uint8 INTER_LINEAR is fixed
  point: per axis a float32 source position ``(d + 0.5) * scale - 0.5``, its two taps clamped
  into the image and weighted ``rint((1 - f) * 2048)``, ``rint(f * 2048)``; rows are weighted
  sums in int32, and columns combine as its SIMD loop does,
  ``((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2 >> 2``. Integer arithmetic: the
  same on every device.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache, partial
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from albucore import add_constant
from albumentations.augmentations.geometric import functional as fgeometric

from augsvc.image.transforms import _HueSaturationValue

__all__ = ["CLASSES", "DRAWS", "RESIZING", "affine_params", "apply", "hsv_tables", "median_blur",
           "output_size", "refusal", "resize_linear", "shift_hsv", "warp_affine"]

RESIZING = (A.Resize, A.RandomResizedCrop)
"""The classes among CLASSES that change the image size."""
CLASSES = (A.MedianBlur, A.HueSaturationValue, A.Affine, *RESIZING)
"""The albumentations classes these operations run."""

_BORDERS = (cv2.BORDER_CONSTANT, cv2.BORDER_REPLICATE, cv2.BORDER_REFLECT, cv2.BORDER_REFLECT_101,
            cv2.BORDER_WRAP)
_WARP_UNROLL = 16  # pixels per step of OpenCV's SIMD warp loop on x86-64 with AVX2 (2 x 8 floats)
_PIXELS_PER_PIECE = 1 << 22  # pixels (samples x H x W) worked on at once, to bound memory
_F32 = np.float32


def refusal(name: str, t: A.BasicTransform) -> str | None:
    """Why the batch backend cannot run ``t`` (one of CLASSES), or None when it can."""
    if isinstance(t, A.Affine | A.Resize | A.RandomResizedCrop):
        if t.interpolation != cv2.INTER_LINEAR:
            return f"{name} (interpolation other than linear)"
        if getattr(t, "area_for_downscale", None) is not None:
            return f"{name} (area_for_downscale)"
        if getattr(t, "fit_output", False):
            return f"{name} (fit_output)"
        if getattr(t, "border_mode", cv2.BORDER_CONSTANT) not in _BORDERS:
            return f"{name} (border_mode {t.border_mode})"
    return None


def apply(t: A.BasicTransform, x: torch.Tensor, params: Sequence[dict[str, Any]]) -> torch.Tensor:
    """``t`` on each sample of ``x`` (uint8, n x C x H x W) with that sample's ``params``."""
    if isinstance(t, RESIZING):
        whole = (0, 0, x.shape[3], x.shape[2])
        return resize_linear(x, [p.get("crop_coords", whole) for p in params], output_size(t))
    if isinstance(t, A.MedianBlur):
        out = x.clone()
        for kernel in sorted({int(p["kernel"]) for p in params}):
            rows = [j for j, p in enumerate(params) if p["kernel"] == kernel]
            out[rows] = median_blur(x[rows], kernel)
        return out
    if isinstance(t, A.HueSaturationValue):
        tables = {j: hsv_tables(t, p, x.shape[1]) for j, p in enumerate(params)}
        shifted = {j: table for j, table in tables.items() if table is not None}
        luts = torch.from_numpy(np.stack(list(shifted.values()) or [np.zeros((3, 256), np.uint8)]))
        return _some(x, list(shifted), lambda on: shift_hsv(on, luts.to(x.device)))
    rows = [j for j, p in enumerate(params)  # allclose's atol is 1e-8 for a 0: a cheap first look
            if abs(p["matrix"][0, 1]) > 1e-8 or not fgeometric.is_identity_matrix(p["matrix"])]
    matrices = [params[j]["matrix"] for j in rows]
    fill = list(t.fill) if isinstance(t.fill, Sequence) else [t.fill] * x.shape[1]
    return _some(x, rows, lambda on: warp_affine(on, matrices, t.border_mode, fill))


def _some(x: torch.Tensor, rows: list[int], op: Any) -> torch.Tensor:
    """``op`` on the samples ``rows`` of ``x``; the others stay as they are."""
    if len(rows) == len(x):
        return op(x)  # type: ignore[no-any-return]
    out = x.clone()
    if rows:
        out[rows] = op(x[rows])
    return out


def _pieces(n: int, height: int, width: int) -> list[slice]:
    step = max(1, _PIXELS_PER_PIECE // (height * width))
    return [slice(s, s + step) for s in range(0, n, step)]


# --------------------------------------------------------------------------- median blur

def median_blur(x: torch.Tensor, ksize: int) -> torch.Tensor:
    """``cv2.medianBlur(image, ksize)`` of every sample: uint8 (n, C, H, W), odd ``ksize``."""
    n, _, height, width = x.shape
    if ksize == 1:
        return x.clone()
    r = ksize // 2
    rows = torch.arange(-r, height + r, device=x.device).clamp(0, height - 1)
    cols = torch.arange(-r, width + r, device=x.device).clamp(0, width - 1)
    out = torch.empty_like(x)
    for piece in _pieces(n, height, width):
        padded = x[piece].index_select(2, rows).index_select(3, cols)  # BORDER_REPLICATE
        views = [padded[:, :, dy:dy + height, dx:dx + width]
                 for dy in range(ksize) for dx in range(ksize)]
        out[piece] = _median(views)
    return out


def _median(values: list[torch.Tensor]) -> torch.Tensor:
    """The elementwise median of an odd number of tensors, by forgetful selection: of ``m + 2``
    values (``m = len // 2``) neither the smallest nor the largest can be the median; drop both,
    take in the next value, repeat. Outputs that are dropped are never computed."""
    m = len(values) // 2
    keep, rest = list(values[:m + 2]), list(values[m + 2:])
    while True:
        for i in range(len(keep) - 1, 0, -1):  # the smallest sinks to keep[0]
            a, b = keep[i - 1], keep[i]
            keep[i] = torch.maximum(a, b)
            if i > 1:
                keep[i - 1] = torch.minimum(a, b)
        keep = keep[1:]
        for i in range(len(keep) - 1):  # the largest rises to keep[-1]
            a, b = keep[i], keep[i + 1]
            keep[i] = torch.minimum(a, b)
            if i < len(keep) - 2:
                keep[i + 1] = torch.maximum(a, b)
        keep = keep[:-1]
        if not rest:
            (median,) = keep
            return median
        keep.append(rest.pop(0))


# --------------------------------------------------------------------------- HSV

def hsv_tables(t: A.HueSaturationValue, params: dict[str, Any], channels: int) -> np.ndarray | None:
    """(3, 256) uint8: what albumentations' ``shift_hsv`` does to each H, S and V value for these
    params, or None where it leaves the image as it is (every shift 0)."""
    hue, sat, val = params["hue_shift"], params["sat_shift"], params["val_shift"]
    if channels == 1 and isinstance(t, _HueSaturationValue):
        hue = sat = 0  # augsvc zeroes them for gray before albumentations looks for all-zero
    if hue == 0 and sat == 0 and val == 0:
        return None
    if channels == 1:
        hue = sat = 0  # albumentations zeroes them after (and warns)
    ramp = np.arange(256, dtype=np.uint8)[None, :]
    hues = np.mod(np.arange(256, dtype=np.int16) + hue, 180).astype(np.uint8)
    sats = add_constant(ramp.copy(), sat).reshape(256) if sat != 0 else ramp[0].copy()
    sats[0] = 0  # gray pixels stay gray
    vals = add_constant(ramp.copy(), val).reshape(256) if val != 0 else ramp[0].copy()
    return np.stack([hues, sats, vals]).astype(np.uint8)


def _fma(a: np.ndarray | float, b: np.ndarray | float, c: np.ndarray | float) -> np.ndarray:
    """float32 ``a * b + c`` rounded once, as a fused multiply-add (float64 holds the product)."""
    return np.asarray(np.float64(a) * np.float64(b) + np.float64(c)).astype(_F32)


@cache
def _hsv_consts(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """OpenCV's RGB2HSV division tables (sdiv, hdiv for hue range 180) and the HSV2RGB factors
    (256 * 256, 3) float32 by (h * 256 + s), channels R, G, B."""
    i = np.arange(1, 256, dtype=np.float64)
    sdiv = np.concatenate([[0], np.round((255 << 12) / i)]).astype(np.int32)
    hdiv = np.concatenate([[0], np.round((180 << 12) / (6.0 * i))]).astype(np.int32)
    h = np.arange(256, dtype=_F32)[:, None] * (_F32(6.0) / _F32(180))
    s = np.arange(256, dtype=_F32)[None, :] * _F32(1.0 / 255.0)
    sector = np.trunc(h)
    frac = h - sector
    one = np.ones((256, 256), _F32)
    tab = np.stack([one, one * (_F32(1) - s), _fma(-s, frac, 1.0), _fma(-s, _F32(1) - frac, 1.0)])
    bgr_of_sector = np.array([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]])
    pick = bgr_of_sector[sector.astype(np.int64)[:, 0] % 6][:, ::-1]  # (h, [r, g, b]) -> tab row
    factors = np.stack([tab[pick[:, c], np.arange(256)] for c in range(3)], axis=-1)
    return (torch.from_numpy(sdiv).to(device), torch.from_numpy(hdiv).to(device),
            torch.from_numpy(np.ascontiguousarray(factors.reshape(256 * 256, 3))).to(device))


@cache
def _probe() -> tuple[int, int, int, int]:
    """An HSV value (h, s, 255) whose red OpenCV truncates to ``low`` in its SIMD loop and rounds
    to ``low + 1`` in its scalar loop: (h, s, v, low)."""
    factors = _hsv_consts(torch.device("cpu"))[2][:, 0].numpy()
    red = (_F32(255) * _F32(1.0 / 255.0)) * factors * _F32(255)
    index = int(np.flatnonzero(np.trunc(red) != np.rint(red))[0])
    return index // 256, index % 256, 255, int(np.trunc(red[index]))


@lru_cache(maxsize=64)
def _truncating_columns(height: int, width: int, device: torch.device) -> torch.Tensor:
    """(H, W) bool: where OpenCV's uint8 HSV2RGB truncates (its SIMD loop) rather than rounds (its
    scalar loop) in an image of this size, found by converting a probe image with OpenCV."""
    h, s, v, low = _probe()
    probe = np.empty((height, width, 3), np.uint8)
    probe[...] = (h, s, v)
    return torch.from_numpy(cv2.cvtColor(probe, cv2.COLOR_HSV2RGB)[..., 0] == low).to(device)


def shift_hsv(x: torch.Tensor, luts: torch.Tensor) -> torch.Tensor:
    """albumentations' ``shift_hsv`` on uint8 RGB (or gray) samples: RGB -> HSV (OpenCV's integer
    arithmetic), sample ``j``'s tables ``luts[j]`` (3, 256) on H, S and V, HSV -> RGB (OpenCV's
    float32 arithmetic)."""
    n, channels, height, width = x.shape
    sdiv, hdiv, factors = _hsv_consts(x.device)
    truncate = _truncating_columns(height, width, x.device)
    scale, full = torch.tensor(_F32(1.0 / 255.0), device=x.device), torch.tensor(_F32(255.0), device=x.device)
    out = torch.empty_like(x)
    for piece in _pieces(n, height, width):
        rgb = x[piece].expand(-1, 3, -1, -1).to(torch.int32)
        r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
        v = torch.maximum(torch.maximum(r, g), b)
        diff = v - torch.minimum(torch.minimum(r, g), b)
        s = torch.div(diff * sdiv[v.long()] + 2048, 4096, rounding_mode="floor")
        h = torch.where(v == r, g - b, torch.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
        h = torch.div(h * hdiv[diff.long()] + 2048, 4096, rounding_mode="floor")
        h = torch.where(h < 0, h + 180, h)
        lut = luts[piece].long()
        k = len(lut)
        h, s, v = (torch.gather(lut[:, c], 1, plane.reshape(k, -1).long())
                   for c, plane in enumerate((h, s, v)))
        rgb_f = factors[h * 256 + s].permute(0, 2, 1)  # (k, 3, H*W)
        value = (v.unsqueeze(1).to(torch.float32) * scale) * rgb_f * full
        value = torch.where(truncate.reshape(1, 1, -1), value.trunc(), value.round())
        done = value.clamp(0, 255).to(torch.uint8).view(k, 3, height, width)
        out[piece] = done[:, :channels]  # gray: the three channels are equal (and RGB2GRAY keeps them)
    return out


# --------------------------------------------------------------------------- affine warp

def affine_params(t: A.Affine, params: dict[str, Any], data: Any = None) -> dict[str, Any]:
    """2.0.8's ``Affine.get_params_dependent_on_data`` (no fit_output): same draws, same matrix; but
    ``bbox_matrix``, unused by the warp and half its cost, is a ``partial`` to call if wanted."""
    shape = params["shape"][:2]
    translate, shear = t._get_translate_params(shape), t._get_shear_params()
    scale = t._get_scale(t.scale, t.keep_ratio, t.balanced_scale, t.py_random)
    rotate = t.py_random.uniform(*t.rotate)
    make = fgeometric.create_affine_transformation_matrix
    matrix = make(translate, shear, scale, rotate, fgeometric.center(shape))
    bbox = partial(make, translate, shear, scale, rotate, fgeometric.center_bbox(shape))
    return {"rotate": rotate, "scale": scale, "matrix": matrix, "bbox_matrix": bbox, "output_shape": shape}


DRAWS = {A.Affine: affine_params} if A.__version__ == "2.0.8" else {}  # by exact class: same values


def _inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse OpenCV's warpAffine computes (float64), as float32 (2, 3)."""
    m = np.asarray(matrix, dtype=np.float64).reshape(-1)[:6].tolist()
    d = m[0] * m[4] - m[1] * m[3]
    d = 1.0 / d if d != 0 else 0.0
    a11, a22 = m[4] * d, m[0] * d
    m[0], m[1], m[3], m[4] = a11, m[1] * -d, m[3] * -d, a22
    b1 = -m[0] * m[2] - m[1] * m[5]
    b2 = -m[3] * m[2] - m[4] * m[5]
    return np.array([[m[0], m[1], b1], [m[3], m[4], b2]], dtype=_F32)


def _border(i: torch.Tensor, size: int, mode: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Source indices ``i`` mapped inside [0, size) as OpenCV's border ``mode`` does, and for
    BORDER_CONSTANT the mask of those that were inside."""
    if mode == cv2.BORDER_CONSTANT:
        inside = (i >= 0) & (i < size)
        return i.clamp(0, size - 1), inside
    if mode == cv2.BORDER_REPLICATE or size == 1:
        return i.clamp(0, size - 1), None
    if mode == cv2.BORDER_WRAP:
        return torch.remainder(i, size), None
    if mode == cv2.BORDER_REFLECT_101:
        period = 2 * size - 2
        i = torch.remainder(i, period)
        return torch.where(i >= size, period - i, i), None
    period = 2 * size  # BORDER_REFLECT
    i = torch.remainder(i, period)
    return torch.where(i >= size, period - 1 - i, i), None


def warp_affine(x: torch.Tensor, matrices: Sequence[np.ndarray], border_mode: int,
                fill: Sequence[float]) -> torch.Tensor:
    """``cv2.warpAffine(image, matrix[:2], (W, H), INTER_LINEAR, border_mode, fill)`` of sample
    ``j`` with ``matrices[j]`` (the forward 3x3 or 2x3 matrix albumentations draws)."""
    n, channels, height, width = x.shape
    device = x.device
    inverse = torch.from_numpy(np.stack([_inverse(m) for m in matrices])).to(device)
    fill = [*fill, *[0.0] * channels][:channels]  # cv::Scalar: missing values are 0
    border = torch.tensor([min(max(round(float(f)), 0), 255) for f in fill],
                          dtype=torch.float32, device=device).view(1, channels, 1)
    xs = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, width)
    ys = torch.arange(height, device=device, dtype=torch.float32).view(1, height, 1)
    tail = width - width % _WARP_UNROLL
    out = torch.empty_like(x)
    for piece in _pieces(n, height, width):
        m = inverse[piece].view(-1, 6, 1, 1).unbind(1)
        k = len(m[0])
        flat = x[piece].reshape(k, channels, height * width).to(torch.float32)
        coords = []
        for a, b, c in ((m[0], m[1], m[2]), (m[3], m[4], m[5])):
            a, b, c = a.view(k, 1, 1), b.view(k, 1, 1), c.view(k, 1, 1)
            # OpenCV's SIMD loop: fma(M0, x, y*M1 + M2); its scalar tail: fma(x, M0, y*M1) + M2
            coord = (a.double() * xs.double() + (ys * b + c).double()).float()
            if tail < width:
                late = (xs.double() * a.double() + (ys * b).double()).float() + c
                coord = torch.where(xs >= tail, late, coord)
            coords.append(coord)
        sx, sy = coords
        ix, iy = sx.floor(), sy.floor()
        alpha, beta = (sx - ix).view(k, 1, -1).double(), (sy - iy).view(k, 1, -1).double()
        ix, iy = ix.long(), iy.long()
        corner = {}
        for dy in (0, 1):
            for dx in (0, 1):
                cx, inside_x = _border(ix + dx, width, border_mode)
                cy, inside_y = _border(iy + dy, height, border_mode)
                index = (cy * width + cx).view(k, 1, -1).expand(-1, channels, -1)
                value = torch.gather(flat, 2, index)
                if inside_x is not None and inside_y is not None:
                    value = torch.where((inside_x & inside_y).view(k, 1, -1), value, border)
                corner[dy, dx] = value
        top = (alpha * (corner[0, 1] - corner[0, 0]).double() + corner[0, 0].double()).float()
        low = (alpha * (corner[1, 1] - corner[1, 0]).double() + corner[1, 0].double()).float()
        mixed = (beta * (low - top).double() + top.double()).float()
        out[piece] = mixed.round().clamp(0, 255).to(torch.uint8).view(k, channels, height, width)
    return out


# --------------------------------------------------------------------------- resize

def output_size(t: A.BasicTransform) -> tuple[int, int]:
    """(height, width) that ``t`` (one of RESIZING) makes."""
    if isinstance(t, A.Resize):
        return int(t.height), int(t.width)
    return int(t.size[0]), int(t.size[1])


def _taps(dst: int, src: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's INTER_LINEAR along one axis of ``src`` pixels from ``start`` to ``dst`` pixels:
    the two source indices (2, dst) and their 11-bit weights (2, dst)."""
    scale = 1.0 / (dst / src)  # as cv::resize: 1 / inv_scale
    f = ((np.arange(dst) + 0.5) * scale - 0.5).astype(_F32)
    first = np.floor(f)
    f = (f - first).astype(_F32)
    weights = np.rint(np.stack([(_F32(1) - f) * _F32(2048), f * _F32(2048)]))
    index = np.clip(np.stack([first, first + 1]).astype(np.int64), 0, src - 1) + start
    return index, weights.astype(np.int32)


def resize_linear(x: torch.Tensor, crops: Sequence[Sequence[int]], size: tuple[int, int]
                  ) -> torch.Tensor:
    """``cv2.resize(crop, size[::-1], INTER_LINEAR)`` of the crop ``crops[j]`` (x_min, y_min,
    x_max, y_max) of sample ``j``: uint8 (n, C, height, width)."""
    n, channels, height, width = x.shape
    out_h, out_w = size
    taps = [(_taps(out_h, y1 - y0, y0), _taps(out_w, x1 - x0, x0)) for x0, y0, x1, y1 in crops]
    ys, wy, xs, wx = (torch.from_numpy(np.stack([t[axis][part] for t in taps])).to(x.device)
                      for axis in (0, 1) for part in (0, 1))  # (n, 2, out)
    out = torch.empty((n, channels, out_h, out_w), dtype=torch.uint8, device=x.device)
    for piece in _pieces(n, max(height, out_h), max(width, out_w)):
        image = x[piece].to(torch.int32)
        k = len(image)
        summed = []
        for tap in (0, 1):
            rows = torch.gather(image, 2, ys[piece, tap].view(k, 1, out_h, 1)
                                .expand(k, channels, out_h, width))
            left, right = (torch.gather(rows, 3, xs[piece, side].view(k, 1, 1, out_w)
                                        .expand(k, channels, out_h, out_w)) for side in (0, 1))
            row = left * wx[piece, 0].view(k, 1, 1, out_w) + right * wx[piece, 1].view(k, 1, 1, out_w)
            summed.append((wy[piece, tap].view(k, 1, out_h, 1) * (row >> 4)) >> 16)
        out[piece] = ((summed[0] + summed[1] + 2) >> 2).clamp(0, 255).to(torch.uint8)
    return out
