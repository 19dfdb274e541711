"""Known-bad requests, each with the statuses that are right for it.

Where the right answer is clear the set is narrow: a request whose output is over
``--max-pixels`` is RESOURCE_EXHAUSTED, refused before anything is allocated (a short deadline
turns an attempt to allocate into a failure, and the server's memory cap turns it into a
MemoryError instead of an OOM kill of the test machine). Where several answers are defensible
(a truncated JPEG decodes to a grey-padded image or is refused) the set says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeAlias

import grpc
import numpy as np

from augsvc.params import Param
from augsvc.wire.v1 import augment_pb2 as pb
from tests.fuzz.calls import Case, Request
from tests.fuzz.payloads import (
    bmp_header,
    jpeg,
    jpeg_with_size,
    png,
    png_bomb,
    png_header,
    pnm_header,
    tensor,
)
from tests.fuzz.server import Limits

__all__ = ["CORPUS"]

C = grpc.StatusCode
OK, BAD, OVER, MISSING = C.OK, C.INVALID_ARGUMENT, C.RESOURCE_EXHAUSTED, C.FAILED_PRECONDITION

Lazy: TypeAlias = Request | Callable[[], Request]  # big payloads are built when they are sent

_RNG = np.random.default_rng(0)
RGB8 = _RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
RGB32 = _RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
FLIP = [{"name": "horizontal_flip", "p": 1.0}]
SWAP = [{"name": "random_swap", "p": 1.0}]
SENTENCE = "The quick brown fox jumps over the lazy dog."


def _most(name: str, params: tuple[Param, ...]) -> Any:
    """The largest value the schema allows for field ``name`` (cases follow the registry's limits)."""
    return next(p.high for p in params if p.name == name)


def _spec(spec: Any) -> pb.Pipeline:
    return pb.Pipeline(spec_json=spec if isinstance(spec, str) else json.dumps(spec, allow_nan=True))


def _images(spec: Any = FLIP, *samples: pb.ImageSample | np.ndarray | bytes | pb.Tensor,
            **fields: Any) -> pb.AugmentImagesRequest:
    """An AugmentImagesRequest of ``samples`` (arrays, encoded bytes, tensors; default one 8x8 RGB)."""
    out = []
    for s in samples or (RGB8,):
        if isinstance(s, pb.ImageSample):
            out.append(s)
        elif isinstance(s, np.ndarray):
            out.append(pb.ImageSample(image=pb.Image(array=tensor(s))))
        elif isinstance(s, bytes):
            out.append(pb.ImageSample(image=pb.Image(encoded=s)))
        else:
            out.append(pb.ImageSample(image=pb.Image(array=s)))
    pipeline = spec if isinstance(spec, pb.Pipeline) else _spec(spec)
    return pb.AugmentImagesRequest(pipeline=pipeline, samples=out, **{"seed": 0, **fields})


def _texts(spec: Any = SWAP, texts: tuple[str, ...] = (SENTENCE,), **fields: Any) -> pb.AugmentTextsRequest:
    pipeline = spec if isinstance(spec, pb.Pipeline) else _spec(spec)
    return pb.AugmentTextsRequest(pipeline=pipeline, texts=list(texts), **{"seed": 0, **fields})


def _epoch(**fields: Any) -> pb.StreamEpochRequest:
    values: dict[str, Any] = {"dataset": "digits", "batch_size": 4, "seed": 0, **fields}
    return pb.StreamEpochRequest(**values)


def _raw(t: pb.Tensor) -> pb.ImageSample:
    return pb.ImageSample(image=pb.Image(array=t))


def _with(image: np.ndarray = RGB8, **targets: pb.Tensor) -> pb.ImageSample:
    sample = _raw(tensor(image))
    for name, value in targets.items():
        getattr(sample, name).CopyFrom(value)
    return sample


def _nest(depth: int, leaf: Any, kind: str = "one_of") -> str:
    """Spec JSON of ``leaf`` inside ``depth`` ``kind`` groups (as text: json.dumps would recurse)."""
    return "[" + f'{{"{kind}": [' * depth + json.dumps(leaf) + "]}" * depth + "]"


def _albu(*transforms: dict[str, Any], top: str = "Compose") -> dict[str, Any]:
    return {"__version__": "2.0.8",
            "transform": {"__class_fullname__": top, "p": 1.0, "transforms": list(transforms)}}


def _albu_nest(depth: int) -> str:
    leaf = json.dumps({"__class_fullname__": "HorizontalFlip", "p": 1.0})
    nested = '{"__class_fullname__": "OneOf", "p": 1.0, "transforms": [' * depth + leaf + "]}" * depth
    head = '{"__version__": "2.0.8", "transform": {"__class_fullname__": "Compose", "p": 1.0, '
    return head + '"transforms": [' + nested + "]}}"


def _case(name: str, rpc: str, request: Lazy, allowed: set[grpc.StatusCode], deadline: float = 10.0,
          **extra: Any) -> Case:
    return Case(name, rpc, request, frozenset(allowed), deadline=deadline, **extra)


def _img(name: str, request: Lazy, allowed: set[grpc.StatusCode], deadline: float = 10.0,
         **extra: Any) -> Case:
    return _case(name, "AugmentImages", request, allowed, deadline, **extra)


def _txt(name: str, request: Lazy, allowed: set[grpc.StatusCode], deadline: float = 10.0,
         **extra: Any) -> Case:
    return _case(name, "AugmentTexts", request, allowed, deadline, **extra)


def _ep(name: str, request: Lazy, allowed: set[grpc.StatusCode], deadline: float = 15.0,
        **extra: Any) -> Case:
    return _case(name, "StreamEpoch", request, allowed, deadline, **extra)


_GOOD_PNG = png(RGB32)
_GOOD_JPEG = jpeg(RGB32)
_SIDE_OVER = 1001  # 1001 x 1000 is one row over --max-pixels (1,000,000)

# --------------------------------------------------------------------------- outputs over the limit

OUTPUT_SIZES = [
    _img("random_crop_60000_pad_if_needed", _images(
        [{"name": "random_crop", "height": 60000, "width": 60000, "pad_if_needed": True}]), {OVER}, 5),
    _img("random_crop_60000_pad_if_needed_gray", _images(
        [{"name": "random_crop", "height": 60000, "width": 60000, "pad_if_needed": True}],
        RGB8[..., 0].copy()), {OVER}, 5),
    _img("resize_65536", _images([{"name": "resize", "height": 65536, "width": 65536}]), {OVER}, 5),
    _img("center_crop_65536_pad_if_needed", _images(
        [{"name": "center_crop", "height": 65536, "width": 65536, "pad_if_needed": True}]), {OVER}, 5),
    _img("random_resized_crop_65536", _images(
        [{"name": "random_resized_crop", "height": 65536, "width": 65536}]), {OVER}, 5),
    _img("resize_one_row_over_max_pixels", _images(
        [{"name": "resize", "height": _SIDE_OVER, "width": 1000}]), {OVER}, 5,
        note="the output has max_pixels + 1000 pixels"),
    _img("resize_to_exactly_max_pixels", _images(
        [{"name": "resize", "height": 1000, "width": 1000}], RGB8[..., 0].copy()), {OK}, 10),
    _img("resize_65536_inside_one_of", _images(
        [{"one_of": [{"name": "resize", "height": 65536, "width": 65536}], "p": 1.0}]), {OVER}, 5),
    _img("resize_65536_with_p_0", _images(
        [{"name": "resize", "height": 65536, "width": 65536, "p": 0.0}]), {OK, OVER}, 5),
    _img("resize_then_crop_back", _images(
        [{"name": "resize", "height": 30000, "width": 30000},
         {"name": "center_crop", "height": 8, "width": 8}]), {OVER}, 5,
        note="an intermediate of 900M pixels"),
    _img("reply_over_max_message_bytes", _images(
        [{"name": "resize", "height": 1000, "width": 1000}, {"name": "normalize"}],
        *[RGB8] * Limits.max_samples), {OVER}, 15,
        note="8 float32 RGB images of 1000x1000: 96 MB of reply, over --max-message-bytes 32 MiB"),
    _img("albu_dict_resize_100000", _images(_albu(
        {"__class_fullname__": "Resize", "height": 100000, "width": 100000, "p": 1.0})), {OVER, BAD}, 5),
    _img("albu_dict_pad_if_needed_60000", _images(_albu(
        {"__class_fullname__": "RandomCrop", "height": 60000, "width": 60000, "pad_if_needed": True,
         "p": 1.0})), {OVER, BAD}, 5),
    _img("some_of_a_billion_with_replace", _images(
        [{"some_of": FLIP, "n": 10**9, "replace": True}]), {OVER, BAD}, 5),
    _ep("stream_epoch_resize_65536", _epoch(pipeline=_spec(
        [{"name": "resize", "height": 65536, "width": 65536}])), {OVER}, 10),
    _ep("stream_epoch_resize_one_row_over_max_pixels", _epoch(pipeline=_spec(
        [{"name": "resize", "height": _SIDE_OVER, "width": 1000}])), {OVER}, 10),
]

# --------------------------------------------------------------------------- encoded images

ENCODED = [
    _img("empty_encoded_image", _images(FLIP, b""), {BAD}),
    _img("png_header_100000x100000", _images(FLIP, png_header(100000, 100000)), {BAD, OVER}, 5),
    _img("png_header_30000x30000", _images(FLIP, png_header(30000, 30000)), {BAD, OVER}, 5),
    _img("png_header_16bit_60000x60000", _images(FLIP, png_header(60000, 60000, 1, bit_depth=16)),
         {BAD, OVER}, 5),
    _img("png_bomb_20000x20000_gray", _images(FLIP, png_bomb(20000, 20000, 1)), {OVER}, 5,
         note="820 KB that decode to 400 MB"),
    _img("png_bomb_30000x30000_rgb", _images(FLIP, png_bomb(30000, 30000, 3)), {OVER}, 5,
         note="3.2 MB that decode to 2.7 GB"),
    _img("png_bomb_1001x1000_gray", _images(FLIP, png_bomb(1001, 1000, 1)), {OVER}, 5),
    _img("png_truncated", _images(FLIP, _GOOD_PNG[:len(_GOOD_PNG) // 2]), {OK, BAD}),
    _img("png_signature_only", _images(FLIP, _GOOD_PNG[:8]), {BAD}),
    _img("jpeg_truncated", _images(FLIP, _GOOD_JPEG[:len(_GOOD_JPEG) // 2]), {OK, BAD}),
    _img("jpeg_soi_only", _images(FLIP, _GOOD_JPEG[:2]), {BAD}),
    _img("jpeg_header_65500x65500", _images(FLIP, jpeg_with_size(_GOOD_JPEG, 65500, 65500)), {BAD, OVER}, 5),
    _img("pgm_header_50000x50000", _images(FLIP, pnm_header(50000, 50000)), {BAD, OVER}, 5),
    _img("bmp_header_50000x50000", _images(FLIP, bmp_header(50000, 50000)), {BAD, OVER}, 5),
    _img("garbage_bytes", _images(FLIP, bytes(_RNG.integers(0, 256, 4096, dtype=np.uint8))), {BAD}),
    _img("png_16bit", _images(FLIP, png(RGB32.astype(np.uint16) * 257)), {OK, BAD}),
    _img("png_16bit_default_preset",
         _images(pb.Pipeline(preset="default"), png(RGB32.astype(np.uint16) * 257)),
         {OK, BAD}),
    _img("encoded_over_max_tensor_bytes",
         lambda: _images(FLIP, _GOOD_PNG + bytes(Limits.max_tensor_bytes)), {OVER}),
    _img("image_without_payload", _images(FLIP, pb.ImageSample(image=pb.Image())), {BAD}),
    _img("sample_without_image", _images(FLIP, pb.ImageSample()), {BAD}),
]

# --------------------------------------------------------------------------- raw tensors

_U8 = RGB8.tobytes()
TENSORS = [
    _img("dtype_float16",
         _images(FLIP, pb.Tensor(data=bytes(8 * 8 * 3 * 2), shape=[8, 8, 3], dtype="float16")),
         {BAD}),
    _img("dtype_object",
         _images(FLIP, pb.Tensor(data=bytes(8 * 8 * 8), shape=[8, 8], dtype="object")), {BAD}),
    _img("dtype_garbage", _images(FLIP, pb.Tensor(data=_U8, shape=[8, 8, 3], dtype="\x00" * 5000)), {BAD}),
    _img("dtype_empty", _images(FLIP, pb.Tensor(data=_U8, shape=[8, 8, 3])), {BAD}),
    _img("shape_bytes_mismatch",
         _images(FLIP, pb.Tensor(data=_U8[:-1], shape=[8, 8, 3], dtype="uint8")), {BAD}),
    _img("negative_dimension", _images(FLIP, pb.Tensor(data=_U8, shape=[-8, -8, 3], dtype="uint8")), {BAD}),
    _img("shape_product_overflows_int64", _images(
        FLIP, pb.Tensor(data=b"", shape=[2**32, 2**32], dtype="uint8")), {BAD, OVER}),
    _img("shape_product_overflows_to_the_byte_count", _images(
        FLIP, pb.Tensor(data=bytes(16), shape=[2**62 + 4, 4], dtype="uint8")), {BAD, OVER},
        note="(2**62 + 4) * 4 wraps to 16 in int64"),
    _img("huge_dims_zero_size", _images(FLIP, pb.Tensor(data=b"", shape=[2**40, 2**40, 0], dtype="uint8")),
         {BAD, OVER}),
    _img("zero_height_image", _images(FLIP, pb.Tensor(data=b"", shape=[0, 8, 3], dtype="uint8")), {BAD}),
    _img("0d_array", _images(FLIP, pb.Tensor(data=b"\x07", shape=[], dtype="uint8")), {BAD}),
    _img("1d_array", _images(FLIP, pb.Tensor(data=bytes(64), shape=[64], dtype="uint8")), {BAD}),
    _img("4d_array", _images(FLIP, pb.Tensor(data=bytes(64 * 3), shape=[8, 8, 3, 1], dtype="uint8")), {BAD}),
    _img("5d_array", _images(FLIP, pb.Tensor(data=bytes(32), shape=[2, 2, 2, 2, 2], dtype="uint8")), {BAD}),
    _img("1000_channels", _images(pb.Pipeline(preset="default"),
                                  pb.Tensor(data=bytes(8 * 8 * 1000), shape=[8, 8, 1000], dtype="uint8")),
         {OK, BAD, OVER}),
    _img("nan_float_image", _images(pb.Pipeline(preset="default"), np.full((8, 8, 3), np.nan, np.float32)),
         {OK, BAD}),
    _img("inf_float_image_normalize", _images([{"name": "normalize"}, {"name": "clahe", "p": 1.0}],
                                              np.full((8, 8, 3), np.inf, np.float32)), {OK, BAD}),
    _img("float64_image_median_blur_99", _images([{"name": "median_blur", "blur_limit": 99, "p": 1.0}],
                                                 RGB8.astype(np.float64)), {OK, BAD}),
    _img("float32_image_median_blur_99", _images([{"name": "median_blur", "blur_limit": 99, "p": 1.0}],
                                                 RGB8.astype(np.float32)), {OK, BAD}),
    _img("int64_image_default_preset",
         _images(pb.Pipeline(preset="default"), RGB8.astype(np.int64)), {OK, BAD}),
    _img("bool_image_default_preset", _images(pb.Pipeline(preset="default"), RGB8 > 127), {OK, BAD}),
    _img("uint16_image_hue", _images([{"name": "hue_saturation_value", "p": 1.0}], RGB8.astype(np.uint16)),
         {OK, BAD}),
    _img("two_channel_image_to_gray",
         _images([{"name": "to_gray", "p": 1.0}], RGB8[..., :2].copy()), {OK, BAD}),
    _img("tensor_over_max_tensor_bytes", lambda: _images(
        FLIP, pb.Tensor(data=bytes(Limits.max_tensor_bytes + 1024), shape=[Limits.max_tensor_bytes + 1024],
                        dtype="uint8")), {OVER}),
    _img("request_over_max_message_bytes", lambda: _images(
        FLIP, pb.Tensor(data=bytes(Limits.max_message_bytes + 1024), shape=[1], dtype="uint8")), {OVER}, 20),
    _img("bboxes_three_columns", _images(FLIP, _with(bboxes=tensor(np.ones((2, 3), np.float32)))), {BAD}),
    _img("bboxes_1d", _images(FLIP, _with(bboxes=tensor(np.ones(4, np.float32)))), {BAD}),
    _img("bboxes_3d", _images(FLIP, _with(bboxes=tensor(np.ones((1, 2, 4), np.float32)))), {BAD}),
    _img("bboxes_nan", _images(FLIP, _with(bboxes=tensor(np.array([[1, 1, np.nan, 4]], np.float32)))),
         {OK, BAD}),
    _img("bboxes_max_before_min", _images(FLIP, _with(bboxes=tensor(np.array([[6, 6, 2, 2]], np.float32)))),
         {OK, BAD}),
    _img("bboxes_yolo_out_of_range", _images({"transforms": FLIP, "bbox_format": "yolo"},
                                             _with(bboxes=tensor(np.array([[5, 5, 9, 9]], np.float32)))),
         {OK, BAD}),
    _img("bboxes_huge_count",
         lambda: _images(FLIP, _with(bboxes=tensor(np.ones((500_000, 4), np.float32)))), {OK, BAD, OVER}),
    _img("mask_of_another_size", _images(FLIP, _with(mask=tensor(np.ones((9, 7), np.uint8)))), {BAD}),
    _img("mask_1d", _images(FLIP, _with(mask=tensor(np.ones(64, np.uint8)))), {BAD}),
    _img("mask_bad_dtype", _images(FLIP, _with(mask=pb.Tensor(data=bytes(64), shape=[8, 8], dtype="U1")))
         , {BAD}),
    _img("keypoints_one_column", _images(FLIP, _with(keypoints=tensor(np.ones((3, 1), np.float32)))), {BAD}),
    _img("keypoints_two_columns_for_xya",
         _images({"transforms": FLIP, "keypoint_format": "xya"},
                 _with(keypoints=tensor(np.ones((3, 2), np.float32)))), {BAD}),
    _img("keypoints_nan",
         _images(FLIP, _with(keypoints=tensor(np.full((3, 2), np.nan, np.float32)))), {OK, BAD}),
]

# --------------------------------------------------------------------------- image request fields

IMAGE_FIELDS = [
    _img("samples_over_max_samples", _images(FLIP, *[RGB8] * (Limits.max_samples + 1)), {OVER}),
    _img("no_samples", pb.AugmentImagesRequest(pipeline=_spec(FLIP), seed=0), {OK}),
    _img("indices_count_mismatch", _images(FLIP, RGB8, RGB8, indices=[1]), {BAD}),
    _img("start_index_at_uint64_max", _images(FLIP, RGB8, RGB8, start_index=2**64 - 1), {OK, BAD}),
    _img("indices_at_uint64_max", _images(FLIP, RGB8, indices=[2**64 - 1]), {OK, BAD}),
    _img("seed_at_uint64_max", _images(FLIP, seed=2**64 - 1), {OK}),
    _img("unknown_output_encoding", _images(FLIP, output_encoding=7), {BAD}),  # type: ignore[arg-type]
    _img("negative_output_encoding", _images(FLIP, output_encoding=-1), {BAD}),  # type: ignore[arg-type]
    _img("png_output_of_a_float_image", _images([{"name": "normalize"}], output_encoding=pb.ENCODING_PNG),
         {BAD}),
    _img("jpeg_output_of_a_5_channel_image", _images(FLIP, RGB8[..., [0, 1, 2, 0, 1]].copy(),
                                                     output_encoding=pb.ENCODING_JPEG), {OK, BAD}),
    _img("no_pipeline", pb.AugmentImagesRequest(samples=[_raw(tensor(RGB8))]), {BAD}),
    _img("unknown_preset", _images(pb.Pipeline(preset="x" * 100_000)), {BAD}),
    _img("text_preset_for_images", _images(pb.Pipeline(preset="eda")), {BAD}),
    _img("huge_request_id", lambda: _images(FLIP, request_id="r" * 1_000_000), {OK}),
]

# --------------------------------------------------------------------------- specs

SPECS = [
    _img("spec_json_lists_100000_deep", lambda: _images("[" * 100_000 + "]" * 100_000), {BAD, OVER}),
    _img("spec_json_objects_100000_deep",
         lambda: _images('{"a":' * 100_000 + "1" + "}" * 100_000), {BAD, OVER}),
    _img("spec_json_lists_100000_deep_unclosed", lambda: _images("[" * 100_000), {BAD, OVER}),
    _img("spec_one_of_400_deep", _images(_nest(400, FLIP[0])), {OK, BAD, OVER}),
    _img("spec_sequential_900_deep", _images(_nest(900, FLIP[0], "sequential")), {OK, BAD, OVER}),
    _img("spec_100000_transforms", lambda: _images(FLIP * 100_000), {OK, BAD, OVER}, 20),
    _img("spec_json_30mb_of_whitespace",
         lambda: _images(" " * 30_000_000 + json.dumps(FLIP)), {OK, BAD, OVER}),
    _img("spec_unknown_name_10mb", lambda: _images([{"name": "x" * 10_000_000}]), {BAD, OVER}),
    _img("spec_field_value_list_of_a_million",
         lambda: _images([{"name": "median_blur", "blur_limit": [3] * 1_000_000}]),
         {BAD, OVER}),
    _img("spec_unknown_field_1mb",
         lambda: _images([{"name": "horizontal_flip", "y" * 1_000_000: 1}]), {BAD, OVER}),
    _img("spec_nan_field", _images([{"name": "gamma", "gamma_limit": math.nan}]), {BAD}),
    _img("spec_inf_probability", _images([{"name": "horizontal_flip", "p": math.inf}]), {BAD}),
    _img("spec_int_of_5000_digits", _images('[{"name": "rotate", "limit": ' + "9" * 5000 + "}]"), {BAD}),
    _img("spec_int_10e400", _images([{"name": "rotate", "limit": 10**400}]), {BAD}),
    _img("spec_int_10e400_probability", _images([{"name": "horizontal_flip", "p": 10**400}]), {BAD}),
    _img("spec_some_of_n_10e400",
         _images([{"some_of": FLIP, "n": 10**400, "replace": True}]), {BAD, OVER}, 5),
    _img("spec_lone_surrogate_name", _images('[{"name": "\\ud800"}]'), {BAD}),
    _img("spec_not_utf8_escape", _images('[{"name": "\\u00"}]'), {BAD}),
    _img("spec_top_level_string", _images('"transforms"'), {BAD}),
    _img("spec_transforms_not_a_list", _images({"transforms": {"name": "resize"}}), {BAD}),
    _img("spec_text_transform_for_images", _images(SWAP), {BAD}),
    _img("spec_one_of_with_every_p_0",
         _images([{"one_of": [{"name": "brightness_contrast", "p": 0.0}]}]), {OK, BAD},
         note="albumentations normalises the children's p by their sum: 0/0"),
    _img("rotate_cubic_reflect_101_on_a_1_pixel_high_image",
         _images([{"name": "rotate", "p": 1.0, "interpolation": "cubic", "border_mode": "reflect_101"}],
                 RGB32[:1, :, 0].copy()), {OK, BAD}, 5,
         note="cv2.warpAffine never returns for a 1-pixel-high or -wide image with cubic interpolation "
              "and BORDER_REFLECT_101 (found by make fuzz)"),
    _img("shift_scale_rotate_cubic_reflect_101_on_a_1x1_image",
         _images([{"name": "shift_scale_rotate", "p": 1.0, "interpolation": "cubic",
                   "border_mode": "reflect_101"}], RGB32[:1, :1].copy()), {OK, BAD}, 5),
    _img("spec_clahe_256_tiles_on_8x8", _images([{"name": "clahe", "tile_grid_size": [256, 256], "p": 1.0}]),
         {OK, BAD}),
    _img("albu_dict_transforms_is_a_number", _images(_albu(
        {"__class_fullname__": "OneOf", "p": 1.0, "transforms": 5})), {BAD}),
    _img("albu_dict_top_transforms_is_a_string", _images(
        {"__version__": "2.0.8", "transform": {"__class_fullname__": "Compose", "transforms": "abc"}}),
        {BAD}),
    _img("albu_dict_lambda_class", _images(_albu({"__class_fullname__": "Lambda", "p": 1.0})), {BAD}),
    _img("albu_dict_class_not_a_string", _images(_albu({"__class_fullname__": ["Resize"], "p": 1.0})), {BAD}),
    _img("albu_dict_one_of_900_deep", _images(_albu_nest(900)), {OK, BAD, OVER}),
    _img("albu_dict_negative_size", _images(_albu(
        {"__class_fullname__": "Resize", "height": -5, "width": 8, "p": 1.0})), {BAD}),
]

# --------------------------------------------------------------------------- texts

TEXTS = [
    _txt("n_one_million", _texts(n=1_000_000), {OVER}, 5),
    _txt("n_uint32_max", _texts(n=2**32 - 1), {OVER}, 5),
    _txt("n_1000_for_16_texts", _texts(texts=(SENTENCE,) * 16, n=1000), {OK, OVER}, 10),
    _txt("texts_over_max_texts", _texts(texts=("a",) * (Limits.max_texts + 1)), {OVER}),
    _txt("text_over_max_text_chars", _texts(texts=("x" * (Limits.max_text_chars + 1),)), {OVER}),
    _txt("text_at_max_text_chars", _texts(texts=("word " * (Limits.max_text_chars // 5),)), {OK}),
    _txt("text_over_max_message_bytes",
         lambda: _texts(texts=("x" * (Limits.max_message_bytes + 1024),)), {OVER}, 20),
    _txt("no_texts", _texts(texts=()), {OK}),
    _txt("empty_and_odd_texts",
         _texts(texts=("", " ", "\x00", "🙂" * 50, "a\u0301" * 30, "\u202e" * 10)), {OK}),
    _txt("indices_count_mismatch", _texts(indices=[1, 2]), {BAD}),
    _txt("start_index_at_uint64_max", _texts(texts=(SENTENCE,) * 3, start_index=2**64 - 1), {OK, BAD}),
    _txt("start_index_at_uint64_max_n_2", _texts(start_index=2**64 - 1, n=2), {OK, BAD}),
    _txt("no_pipeline", pb.AugmentTextsRequest(texts=[SENTENCE]), {BAD}),
    _txt("image_preset_for_texts", _texts(pb.Pipeline(preset="digits")), {BAD}),
    _txt("image_transform_for_texts", _texts(FLIP), {BAD}),
    _txt("spec_json_lists_100000_deep", lambda: _texts("[" * 100_000 + "]" * 100_000), {BAD, OVER}),
    _txt("semantic_filter_400_deep", _texts(_nest(400, SWAP[0], "semantic_filter")), {OK, BAD, OVER}, 20),
    _txt("aug_max_100000_on_a_long_text", _texts(
        [{"name": "random_insertion", "aug_p": 1.0, "aug_max": 100000}], texts=(SENTENCE * 100,)),
        {OK, MISSING}, 20),
    _txt("synonym", _texts([{"name": "synonym", "p": 1.0}]), {OK, MISSING}, 30,
         note="WordNet is offline data: FAILED_PRECONDITION when it is missing"),
    _txt("embedding_vectors_dev_zero",
         _texts([{"name": "embedding", "vectors": "/dev/zero"}]), {BAD, MISSING}, 5),
    _txt("embedding_vectors_proc_self_mem", _texts([{"name": "embedding", "vectors": "/proc/self/mem"}]),
         {BAD, MISSING}, 5),
    _txt("embedding_vectors_etc_passwd", _texts([{"name": "embedding", "vectors": "/etc/passwd"}]),
         {BAD, MISSING}, 5),
    _txt("embedding_vectors_a_directory", _texts([{"name": "embedding", "vectors": "/"}]), {BAD, MISSING}, 5),
    _txt("embedding_vocab_10m", _texts([{"name": "embedding", "vocab_size": 10_000_000, "aug_p": 1.0}]),
         {OK, MISSING}, 20),
    _txt("contextual_missing_local_model", _texts([{"name": "contextual", "model": "/nonexistent/model"}]),
         {BAD, MISSING}, 20),
    _txt("semantic_filter_nested_100_retries",
         _texts([{"semantic_filter": [{"semantic_filter": [{"name": "random_deletion", "aug_p": 1.0}],
                                       "threshold": 1.0, "retries": 100}],
                  "threshold": 1.0, "retries": 100}]),
         {OK, BAD, OVER}, 10,
         note="a legal spec whose work is 101 x 101 sentence-embedding passes per text: the server should "
              "refuse it or bound the work, not run for minutes after the client gave up"),
    _txt("semantic_filter_nested_100_retries_long_texts",
         _texts([{"semantic_filter": [{"semantic_filter": [{"name": "keyboard", "aug_p": 0.7}],
                                       "threshold": 1.0, "retries": 100}],
                  "threshold": 1.0, "retries": 100}], texts=(" ".join([SENTENCE] * 40),) * 3, n=3),
         {OK, BAD, OVER}, 10,
         note="5.6 KB of request, about 50 s of CPU on one core (found by make fuzz): the server should "
              "refuse it or bound the work, not run for a minute after the client gave up"),
    _txt("semantic_filter_100_retries", _texts(
        [{"semantic_filter": [{"name": "random_deletion", "aug_p": 1.0}], "threshold": 1.0, "retries": 100}]),
        {BAD}, 30, note="retries are capped at 10: each one is a pass of the sentence encoder"),
]

# --------------------------------------------------------------------------- epochs and listings

EPOCHS = [
    _ep("unknown_dataset", _epoch(dataset="nope"), {BAD, C.NOT_FOUND}),
    _ep("dataset_name_of_1mb", lambda: _epoch(dataset="d" * 1_000_000), {BAD, C.NOT_FOUND}),
    _ep("dataset_path_not_a_name", _epoch(dataset="/etc/passwd"), {BAD, C.NOT_FOUND}),
    _ep("batch_size_0", _epoch(batch_size=0), {BAD}),
    _ep("batch_size_uint32_max", _epoch(batch_size=2**32 - 1), {OVER}),
    _ep("shard_equal_to_num_shards", _epoch(shard=2, num_shards=2), {BAD}),
    _ep("shard_uint32_max", _epoch(shard=2**32 - 1, num_shards=2**32 - 1), {BAD}),
    _ep("num_shards_uint32_max", _epoch(num_shards=2**32 - 1), {OK, BAD}),
    _ep("start_batch_past_the_end", _epoch(start_batch=10_000), {BAD}),
    _ep("start_batch_uint64_max", _epoch(start_batch=2**64 - 1), {BAD}),
    _ep("start_batch_at_the_end", _epoch(start_batch=450), {OK}),
    _ep("holdout_fraction_nan", _epoch(part=pb.PART_TRAIN, holdout_fraction=math.nan), {BAD}),
    _ep("holdout_fraction_over_1", _epoch(part=pb.PART_HOLDOUT, holdout_fraction=1.5), {BAD}),
    _ep("holdout_fraction_1", _epoch(part=pb.PART_TRAIN, holdout_fraction=1.0), {BAD}),
    _ep("holdout_fraction_negative_inf", _epoch(part=pb.PART_TRAIN, holdout_fraction=-math.inf), {BAD}),
    _ep("holdout_fraction_tiny_holdout", _epoch(part=pb.PART_HOLDOUT, holdout_fraction=1e-300), {OK, BAD}),
    _ep("unknown_part", _epoch(part=7), {BAD}),  # type: ignore[arg-type]
    _ep("unknown_output_encoding", _epoch(output_encoding=9), {BAD}),  # type: ignore[arg-type]
    _ep("epoch_uint64_max", _epoch(epoch=2**64 - 1), {OK, BAD}),
    _ep("epoch_uint64_max_with_pipeline", _epoch(epoch=2**64 - 1, pipeline=pb.Pipeline(preset="digits")),
        {OK, BAD}),
    _ep("seed_uint64_max", _epoch(seed=2**64 - 1, pipeline=pb.Pipeline(preset="digits")), {OK}),
    _ep("limit_uint64_max", _epoch(limit=2**64 - 1), {OK, BAD}),
    _ep("everything_at_max", _epoch(seed=2**64 - 1, epoch=2**64 - 1, batch_size=2**32 - 1, shard=2**32 - 1,
                                    num_shards=2**32 - 1, start_batch=2**64 - 1, limit=2**64 - 1,
                                    holdout_fraction=math.nan), {BAD, OVER}),
    _ep("text_pipeline_on_images", _epoch(pipeline=_spec(SWAP)), {BAD}),
    _ep("image_pipeline_on_texts", _epoch(dataset="wordnet_glosses", pipeline=_spec(FLIP)), {BAD, MISSING}),
    _ep("wordnet_glosses", _epoch(dataset="wordnet_glosses", pipeline=pb.Pipeline(preset="eda")),
        {OK, MISSING}, 60, note="WordNet is offline data"),
    _ep("skimage_as_png", _epoch(dataset="skimage", output_encoding=pb.ENCODING_PNG), {OK}, 30),
    _ep("spec_json_lists_100000_deep",
        lambda: _epoch(pipeline=_spec("[" * 100_000 + "]" * 100_000)), {BAD, OVER}),
    _case("list_transforms", "ListTransforms", pb.ListTransformsRequest(), {OK}),
    _case("list_datasets", "ListDatasets", pb.ListDatasetsRequest(), {OK}, 60,
          note="must list the datasets it has, also when WordNet (one dataset's source) is missing"),
]

# --------------------------------------------------------------------------- bytes no message would make

_TEXTS_FIELD = 5  # AugmentTextsRequest.texts
RAW = [
    _case("raw_garbage_augment_images", "AugmentImages", b"\xff" * 64, {BAD}),
    _case("raw_truncated_augment_images", "AugmentImages", _images().SerializeToString()[:-7], {BAD}),
    _case("raw_invalid_utf8_text", "AugmentTexts",
          _texts().SerializeToString() + bytes([_TEXTS_FIELD << 3 | 2, 2, 0xC3, 0x28]), {BAD}),
    _case("raw_garbage_stream_epoch", "StreamEpoch", b"\x0a\xff\xff\xff\xff\x0f", {BAD}),
    _case("raw_garbage_list_transforms", "ListTransforms", b"\x08", {BAD, OK}),
    _case("raw_garbage_stream_texts", "StreamAugmentTexts", b"\x2a\x05ab", {BAD}),
]

# --------------------------------------------------------------------------- streams

_GOOD_TEXTS = _texts()
_GOOD_IMAGES = _images()
STREAMS = [
    _case("stream_texts_500_good", "StreamAugmentTexts", lambda: (_GOOD_TEXTS,) * 500, {OK}, 30),
    _case("stream_texts_good_then_n_one_million", "StreamAugmentTexts",
          (*(_GOOD_TEXTS,) * 20, _texts(n=1_000_000), *(_GOOD_TEXTS,) * 5), {OVER}, 10),
    _case("stream_texts_good_then_bad_spec", "StreamAugmentTexts",
          (*(_GOOD_TEXTS,) * 20, _texts("[" * 100_000)), {BAD, OVER}, 10),
    _case("stream_images_200_good", "StreamAugmentImages", (_GOOD_IMAGES,) * 200, {OK}, 30),
    _case("stream_images_good_then_crop_60000", "StreamAugmentImages",
          (*(_GOOD_IMAGES,) * 20, OUTPUT_SIZES[0].request, _GOOD_IMAGES), {OVER}, 10),
    _case("stream_images_good_then_bomb", "StreamAugmentImages",
          (*(_GOOD_IMAGES,) * 5, _images(FLIP, png_bomb(30000, 30000, 3)), _GOOD_IMAGES), {OVER}, 10),
    _case("stream_images_good_then_bad_tensor", "StreamAugmentImages",
          (*(_GOOD_IMAGES,) * 20, _images(FLIP, pb.Tensor(data=b"", shape=[2**32, 2**32], dtype="uint8"))),
          {BAD, OVER}, 10),
    _case("stream_images_empty", "StreamAugmentImages", (), {OK}),
    _case("stream_images_16_bombs", "StreamAugmentImages",
          (_images(FLIP, png_bomb(20000, 20000, 1)),) * 16, {OVER}, 10),
]

CORPUS: list[Case] = [*OUTPUT_SIZES, *ENCODED, *TENSORS, *IMAGE_FIELDS, *SPECS, *TEXTS, *EPOCHS, *RAW,
                      *STREAMS]
"""Every known-bad case; their ids (``rpc.name``) are unique."""

if len({c.id for c in CORPUS}) != len(CORPUS):
    raise RuntimeError("duplicate case ids in the fuzz corpus")
