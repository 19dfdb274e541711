"""ImagePipeline: a validated spec built into albumentations, with per-sample seeding.

The output for sample ``index`` under ``seed`` is a pure function of (spec, seed, index): the
pipeline's random generators are reset from those two numbers before every sample, so results do
not depend on batch size, batch split, process or DataLoader worker.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import albumentations as A
import cv2
import numpy as np

from augsvc.errors import AugsvcError, InputError, LimitError
from augsvc.image.albu_dict import build_from_albu_dict, is_albu_dict
from augsvc.image.failures import explain_failure
from augsvc.image.inputs import check_image, check_mask, check_points
from augsvc.image.lean import LeanRunner, lean_runner
from augsvc.image.presets import IMAGE_PRESETS
from augsvc.image.reduced import first_shrink, jpeg_scale, run_from_source
from augsvc.image.registry import IMAGE_TRANSFORMS
from augsvc.image.results import AugmentedImage, clean_params
from augsvc.image.sizes import SizeBound, output_bound
from augsvc.params import Param
from augsvc.seeding import SampleRandom, check_seed
from augsvc.spec import GroupNode, Node, PipelineSpec, load_spec, parse_spec

__all__ = ["IMAGE_OPTIONS", "AugmentedImage", "ImagePipeline"]

IMAGE_OPTIONS: tuple[Param, ...] = (
    Param("bbox_format", "choice", "pascal_voc", "how boxes are given",
          choices=("pascal_voc", "coco", "yolo", "albumentations")),
    Param("min_visibility", "float", 0.0,
          "drop boxes that keep less than this fraction of their area", low=0.0, high=1.0),
    Param("keypoint_format", "choice", "xy", "how keypoints are given",
          choices=("xy", "yx", "xya", "xys", "xyas", "xysa")),
    Param("remove_invisible", "bool", True, "drop keypoints that leave the image"),
)

_UINT8, _FLOAT32 = np.dtype(np.uint8), np.dtype(np.float32)  # what check_image accepts
_BOUND_CACHE = 256  # output-size bounds kept per pipeline, by input size


_VARIANTS = [(targets, rgba) for targets in (False, True) for rgba in (False, True)]
"""Compose variants by (carries boxes or keypoints, image is RGBA)."""


@dataclass
class _Built:
    """An albumentations Compose, its leaf transforms (augsvc name, transform) in tree order,
    and the lean runner that replaces calling it where it can (see ``augsvc.image.lean``)."""

    compose: A.Compose
    leaves: list[tuple[str, A.BasicTransform]]
    run: LeanRunner | None = None

    def __post_init__(self) -> None:
        if self.run is None:
            self.run = lean_runner(self.compose)


class ImagePipeline:
    """An image augmentation pipeline built from a spec.

    Args:
        spec: a dict/list, JSON/YAML text, a path to a .json/.yaml file, albumentations'
            ``A.to_dict`` output (restricted to the classes augsvc wraps), or a preset name
            from ``augsvc.image.presets`` ("default", "seed7", "digits").
        max_pixels: when given, a sample is refused (``LimitError``) before any work if an image
            the pipeline could make from it, on the way or at the end, has more pixels than this
            (see :meth:`output_bound`). None: no limit.

    Raises:
        SpecError: the spec names an unknown transform or field, or a value is out of range.

    A pipeline holds random state and is not thread-safe: give each thread its own copy
    (``copy.deepcopy`` or ``ImagePipeline(p.to_spec())``). It pickles as its spec.
    """

    def __init__(self, spec: Any, *, max_pixels: int | None = None) -> None:
        if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int)
                                       or max_pixels < 1):
            raise ValueError(f"max_pixels must be an integer >= 1 or None, got {max_pixels!r}")
        self.max_pixels = max_pixels
        self._bounds: dict[tuple[int, int], SizeBound] = {}

        raw = load_spec(spec, IMAGE_PRESETS)
        self._albu_spec: dict[str, Any] | None = None
        self.spec: PipelineSpec | None = None
        self._random = SampleRandom()
        if is_albu_dict(raw):
            compose, self._albu_spec = build_from_albu_dict(raw)
            compose.set_random_state(self._random.numpy, self._random.python)
            built = _Built(compose, [(type(t).__name__, t) for t in _albu_leaves(compose)])
            # albumentations' own form runs exactly as albumentations would, whatever the input.
            self._variants = dict.fromkeys(_VARIANTS, built)
        else:
            self.spec = parse_spec(raw, IMAGE_TRANSFORMS, IMAGE_OPTIONS)
            self._variants = {(False, False): self._make(with_targets=False, rgba=False)}
        leaves = [t for _, t in self._variants[False, False].leaves]
        # Facts of the transforms, for every call: whether images come out as float32
        # (normalize), and whether a transform pads with BORDER_REFLECT_101 (2 pixels a side).
        self._makes_floats = any(isinstance(t, A.Normalize | A.ToFloat) for t in leaves)
        self._reflects = any(getattr(t, "border_mode", None) == cv2.BORDER_REFLECT_101
                             for t in leaves)

    def _make(self, *, with_targets: bool, rgba: bool) -> _Built:
        """Build one variant of the albumentations Compose.

        Variants exist so that common calls pay for nothing they do not use: box/keypoint
        processors cost several microseconds per call even with no boxes, and the alpha-keeping
        wrappers only matter for RGBA images. Every variant shares the pipeline's random stream
        and draws the same numbers, so a sample's result does not depend on which one ran.
        """
        assert self.spec is not None
        opts = self.spec.options
        leaves: list[tuple[str, A.BasicTransform]] = []
        targets: dict[str, Any] = {}
        if with_targets:
            targets = {
                "bbox_params": A.BboxParams(format=opts["bbox_format"],
                                            min_visibility=opts["min_visibility"]),
                "keypoint_params": A.KeypointParams(format=opts["keypoint_format"],
                                                    remove_invisible=opts["remove_invisible"]),
            }
        with warnings.catch_warnings():
            # Pipelines of pixel-only transforms carry boxes and keypoints through unchanged;
            # albumentations warns about that, we do not need to.
            warnings.filterwarnings("ignore", message="Got processor for")
            compose = A.Compose([self._build(n, leaves, rgba) for n in self.spec.nodes], **targets)
        compose.set_random_state(self._random.numpy, self._random.python)
        return _Built(compose, leaves)

    def _build(self, node: Node, leaves: list[tuple[str, A.BasicTransform]], rgba: bool
               ) -> A.BasicTransform | A.BaseCompose:
        if isinstance(node, GroupNode):
            children = [self._build(c, leaves, rgba) for c in node.children]
            if node.kind == "one_of":
                return A.OneOf(children, p=node.p)
            if node.kind == "some_of":
                return A.SomeOf(children, n=node.n, replace=node.replace, p=node.p)
            return A.Sequential(children, p=node.p)
        transform = IMAGE_TRANSFORMS[node.name].build(node.params, node.p, rgba=rgba)
        leaves.append((node.name, transform))
        return transform

    def jpeg_scale(self, height: int, width: int, *, seed: int | None, index: int) -> int:
        """The scale (1, 2, 4 or 8) at which sample ``index``'s ``height`` x ``width`` RGB JPEG
        can be decoded and give the first step at least the pixels it writes; 1: decode it
        whole. Pass the smaller decode with ``source_size=(height, width)``."""
        return jpeg_scale(self._variants[False, False].run, self._random, height, width, seed, index)

    def to_spec(self) -> dict[str, Any]:
        """The spec this pipeline was built from, in canonical form (it round-trips)."""
        if self._albu_spec is not None:
            return copy.deepcopy(self._albu_spec)
        assert self.spec is not None
        return self.spec.to_dict()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.to_spec(), self.max_pixels))

    def __deepcopy__(self, memo: dict[int, Any]) -> ImagePipeline:
        return type(self)(self.to_spec(), max_pixels=self.max_pixels)

    def __repr__(self) -> str:
        return f"ImagePipeline({self.transform_names})"

    @property
    def transform_names(self) -> list[str]:
        """Names of the transforms in tree order."""
        return [name for name, _ in self._variants[False, False].leaves]

    def output_bound(self, height: int, width: int) -> SizeBound:
        """Upper bounds on what this pipeline makes of a ``height`` x ``width`` image.

        Computed from the transforms' parameters before any work: the output's height and
        width, and the most pixels any image along the way holds (a padding crop first pads).
        Transforms that may not fire count as if they might.
        """
        key = (int(height), int(width))
        bound = self._bounds.get(key)
        if bound is None:
            if len(self._bounds) >= _BOUND_CACHE:
                self._bounds.clear()
            bound = self._bounds[key] = output_bound(self._variants[False, False].compose, *key)
        return bound

    def output_itemsize(self, dtype: np.dtype[Any] | type) -> int:
        """Bytes per value of the output for an input of ``dtype``: float32 once a transform
        (normalize) turns images into floats."""
        itemsize = np.dtype(dtype).itemsize
        return max(itemsize, 4) if self._makes_floats else itemsize

    def check_size(self, shape: Sequence[int], max_pixels: int, what: str = "image") -> SizeBound:
        """Refuse an input of ``shape`` whose bound (:meth:`output_bound`) is over ``max_pixels``.

        Returns:
            the bound, when it is within the limit.

        Raises:
            LimitError: naming the transform that would make the image, its size and the limit.
        """
        if len(shape) not in (2, 3):
            raise InputError(f"{what} must be HxW or HxWxC, got shape {tuple(shape)}")
        height, width = int(shape[0]), int(shape[1])
        bound = self.output_bound(height, width)
        if bound.peak_pixels > max_pixels:
            names = {id(t): name for name, t in self._variants[False, False].leaves}
            by = names.get(id(bound.peak_by), type(bound.peak_by).__name__)
            raise LimitError(f"{what}: {by} would make a {bound.peak[0]}x{bound.peak[1]} image "
                             f"from {height}x{width} "
                             f"({bound.peak_pixels} pixels), over the limit of {max_pixels} "
                             "pixels per image")
        return bound

    def __call__(
        self,
        image: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        masks: Sequence[np.ndarray] | None = None,
        bboxes: Any = None,
        keypoints: Any = None,
        seed: int | None = None,
        index: int = 0,
        return_params: bool = False,
        source_size: tuple[int, int] | None = None,
    ) -> AugmentedImage:
        """Augment one sample as global sample ``index`` under ``seed``.

        Args:
            image: HxW or HxWxC, uint8 or float32.
            mask: HxW or HxWxK array moved with the geometry (nearest interpolation).
            masks: a list of HxW masks (e.g. one per instance), each treated like ``mask``.
            bboxes: (N, 4 + k) boxes in the spec's ``bbox_format``; extra columns (labels) ride along.
            keypoints: (N, 2 + k) keypoints in the spec's ``keypoint_format``.
            seed: None for fresh randomness on every call.
            index: the sample's global index; with a seed, the result depends only on
                (spec, seed, index).
            return_params: also return the transforms that fired and their values.
            source_size: (height, width) of the full image when ``image`` is a smaller JPEG
                decode of it at the scale :meth:`jpeg_scale` chose (``augsvc.image.reduced``).

        Raises:
            InputError: the image, mask, boxes or keypoints are malformed, or do not fit a
                transform (e.g. a crop larger than the image).
            LimitError: with ``max_pixels`` set, the pipeline could make a larger image.
            TransformError: a transform failed for another reason; the message names it.
        """
        check_seed(seed, index)
        if not (type(image) is np.ndarray and (image.dtype is _UINT8 or image.dtype is _FLOAT32)
                and image.size and 2 <= image.ndim <= 3):
            check_image(image)  # the full check, and what is wrong
        shape = image.shape
        data: dict[str, Any] = {"image": image}
        if self._reflects and min(shape[:2]) < 2:
            # OpenCV's warps never return on a 1-pixel-wide image with BORDER_REFLECT_101.
            raise InputError(f"image of shape {image.shape} is too small for border_mode "
                             "reflect_101: give images at least 2x2 pixels, or another border_mode")
        if self.max_pixels is not None:
            self.check_size(shape, self.max_pixels)
        rgba = len(shape) == 3 and shape[2] == 4
        if mask is None and masks is None and bboxes is None and keypoints is None:
            built = self._variants.get((False, rgba)) or self._variant((False, rgba))
            if built.run is not None and not return_params:  # the common call, with nothing else
                self._random.reseed(seed, index)
                try:
                    if source_size is not None and first_shrink(built.run) is not None:
                        return AugmentedImage(run_from_source(built.run, image, source_size), index)
                    return AugmentedImage(built.run(data)["image"], index)
                except (AugsvcError, MemoryError):
                    raise
                except Exception as exc:
                    raise explain_failure(exc, built.leaves, image, index) from exc
        if mask is not None:
            data["mask"] = check_mask(mask, image)
        if masks is not None:
            if isinstance(masks, np.ndarray) or not all(m.ndim == 2 for m in
                                                         map(np.asarray, masks)):
                raise InputError("masks must be a list of HxW arrays")
            data["masks"] = np.stack([check_mask(m, image) for m in masks]) if len(masks) else []
        if bboxes is not None:
            data["bboxes"] = check_points(bboxes, "bboxes", 4)
        if keypoints is not None:
            fmt = self.spec.options["keypoint_format"] if self.spec is not None else "xy"
            data["keypoints"] = check_points(keypoints, f"keypoints ({fmt})", len(fmt))
        key = ("bboxes" in data or "keypoints" in data, rgba)
        built = self._variants.get(key) or self._variant(key)
        if return_params:
            for _, transform in built.leaves:
                transform.params = {}
        self._random.reseed(seed, index)
        try:
            out = built.run(data) if built.run is not None else built.compose(**data)
        except (AugsvcError, MemoryError):
            raise
        except Exception as exc:
            raise explain_failure(exc, built.leaves, image, index) from exc
        params = None
        if return_params:
            params = [{"name": name, "params": clean_params(t.params)}
                      for name, t in built.leaves if t.params]
        return AugmentedImage(image=out["image"], index=index, mask=out.get("mask"),
                              masks=None if masks is None else list(out["masks"]),
                              bboxes=out.get("bboxes"), keypoints=out.get("keypoints"),
                              params=params)

    def batch(
        self,
        images: Sequence[np.ndarray],
        *,
        masks: Sequence[np.ndarray | None] | None = None,
        bboxes: Sequence[Any] | None = None,
        keypoints: Sequence[Any] | None = None,
        seed: int | None = None,
        start: int = 0,
        indices: Sequence[int] | None = None,
        return_params: bool = False,
        source_sizes: Sequence[tuple[int, int] | None] | None = None,
    ) -> list[AugmentedImage]:
        """Augment a list of samples (sizes may differ); sample ``k`` is global index ``start + k``.

        ``masks``, ``bboxes`` and ``keypoints``, when given, hold one entry per image.
        ``indices``, when given, replaces ``start``: sample ``k`` is global index ``indices[k]``
        (an epoch's shuffled batch). The result for each sample equals
        ``pipeline(images[k], ..., index=start + k)`` (or ``index=indices[k]``).
        """
        n = len(images)
        if indices is not None and len(indices) != n:
            raise InputError(f"indices has {len(indices)} entries for {n} images")
        where = [start + k for k in range(n)] if indices is None else [int(i) for i in indices]
        for what, extra in (("masks", masks), ("bboxes", bboxes), ("keypoints", keypoints)):
            if extra is not None and len(extra) != n:
                raise InputError(f"{what} has {len(extra)} entries for {n} images")
        results = []
        for k, image in enumerate(images):
            try:
                results.append(self(
                    image,
                    mask=None if masks is None else masks[k],
                    bboxes=None if bboxes is None else bboxes[k],
                    keypoints=None if keypoints is None else keypoints[k],
                    seed=seed, index=where[k], return_params=return_params,
                    source_size=None if source_sizes is None else source_sizes[k]))
            except InputError as exc:
                raise InputError(f"sample {k} (index {where[k]}): {exc}") from exc
        return results

    def _variant(self, key: tuple[bool, bool]) -> _Built:
        built = self._variants[key] = self._make(with_targets=key[0], rgba=key[1])
        return built


def _rebuild(cls: type[ImagePipeline], spec: dict[str, Any], max_pixels: int | None) -> ImagePipeline:
    return cls(spec, max_pixels=max_pixels)


def _albu_leaves(compose: A.BaseCompose) -> list[A.BasicTransform]:
    out: list[A.BasicTransform] = []
    for t in compose.transforms:
        if isinstance(t, A.BaseCompose):
            out.extend(_albu_leaves(t))
        else:
            out.append(t)
    return out
