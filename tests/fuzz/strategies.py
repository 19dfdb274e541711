"""Hypothesis strategies for hostile requests of every Augmenter message type.

Specs are drawn from the real registries (``IMAGE_TRANSFORMS``, ``TEXT_TRANSFORMS``,
``TEXT_GROUPS``). Half the requests are *clean*: every field is one the contract allows, so the
call gets past validation into the work (where sizes at the memory edges and NaN pixels are
still drawn). The other half are *hostile*: any field may be out of range, of the wrong type,
malformed or a lie about the bytes it describes. Arrays are drawn from a seed (one draw, not one
per byte), and sizes stay small except where a field asks for a huge output: that is the
server's to refuse.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import grpc
import numpy as np
from hypothesis import strategies as st

from augsvc.image.albu_dict import ALLOWED_CLASSES
from augsvc.image.pipeline import IMAGE_OPTIONS
from augsvc.image.presets import IMAGE_PRESETS
from augsvc.image.registry import IMAGE_TRANSFORMS
from augsvc.params import REQUIRED, Param
from augsvc.spec import GROUP_KINDS, TransformInfo
from augsvc.text.presets import TEXT_PRESETS
from augsvc.text.registry import TEXT_GROUPS, TEXT_TRANSFORMS
from augsvc.wire.tensors import _varint  # the wire's base-128 integers
from augsvc.wire.v1 import augment_pb2 as pb
from tests.fuzz.calls import Case
from tests.fuzz.payloads import bmp_header, jpeg, jpeg_with_size, png, png_header, pnm_header, tensor
from tests.fuzz.server import Limits

__all__ = ["TEXT_TRANSFORMS_FUZZED", "cases", "epoch_request", "images_request", "list_request",
           "pipeline", "spec", "texts_request"]

Draw = Callable[[st.SearchStrategy[Any]], Any]
S = st.SearchStrategy
R = TypeVar("R", pb.AugmentImagesRequest, pb.AugmentTextsRequest)

TEXT_TRANSFORMS_FUZZED = sorted(set(TEXT_TRANSFORMS) - {"contextual"})
"""``contextual`` loads a BERT model (slow, maybe absent): it is left to the corpus."""

U64_EDGES = (0, 1, 2**31 - 1, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1)
U32_EDGES = (0, 1, 2, 7, 2**16, 2**31 - 1, 2**31, 2**32 - 1)
NASTY_FLOATS = (math.nan, math.inf, -math.inf, -0.0, 1e308, -1e308, 5e-324)
NASTY_STRINGS = ("", " ", "\x00", "é" * 3, "🙂🙃", "a\u0301", "\u202ertl", "x" * 5000, "\ud7ff\ue000",
                 "ﬀ", "İ", "ß" * 40, "\t\n\r", "<script>", "%s%n", "../../etc/passwd")
SIZE_EDGES = (1, 2, 999, 1000, 1001, 2000, 65535, 65536)  # 1000 x 1000 is max_pixels exactly
VALID_DTYPES = ("uint8", "float32", "float64", "int32", "int64", "uint16", "bool")
BAD_DTYPES = ("", "float16", "int8", "complex128", "object", "<f4", ">u2", "U8", "V4", "str", "UINT8",
              "uint8 ", "datetime64[s]", "O", "float128", "x" * 300)
SENTENCES = ("The quick brown fox jumps over the lazy dog.", "A man, a plan, a canal: Panama!",
             "running runs ran; geese goose's", "Don't stop-believing 42 times...", "Ça va? Très bien.")

u64 = st.one_of(st.sampled_from(U64_EDGES), st.integers(0, 2**64 - 1))
u32 = st.one_of(st.sampled_from(U32_EDGES), st.integers(0, 2**32 - 1))
junk_json: S[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)


def _either(hostile: bool, valid: S[Any], bad: S[Any], bad_in: int = 6) -> S[Any]:
    """``valid``; when ``hostile``, ``bad`` instead about one draw in ``bad_in``."""
    if not hostile:
        return valid
    return st.integers(0, bad_in - 1).flatmap(lambda k: bad if k == 0 else valid)


def _mixed(build: Callable[[bool], S[Any]]) -> S[Any]:
    """Clean and hostile versions of a strategy, half and half."""
    return st.booleans().flatmap(build)


# --------------------------------------------------------------------------- specs


def _number(param: Param, integer: bool, hostile: bool) -> S[Any]:
    low = -1e6 if param.low is None else param.low
    high = 1e6 if param.high is None else param.high
    if param.name in ("height", "width"):  # output sizes: small, or the edges where memory goes
        return _either(True, st.integers(1, 48), st.sampled_from(SIZE_EDGES), 3 if hostile else 8)
    inner: S[Any] = st.integers(math.ceil(low), math.floor(high)) if integer else \
        st.floats(low, high, allow_nan=False)
    if param.odd:
        inner = inner.map(lambda v: v | 1).filter(lambda v: v <= high)
    edges = [v for v in (low, high) if not param.odd or int(v) % 2]
    return st.one_of(inner, st.sampled_from(edges).map(lambda v: int(v) if integer else float(v)))


def _valid_value(param: Param, hostile: bool) -> S[Any]:
    """A value the schema allows (sizes reach for the memory edges now and then)."""
    if param.kind == "bool":
        return st.booleans()
    if param.kind == "choice":
        return st.sampled_from(param.choices)
    if param.kind in ("float", "int"):
        return _number(param, param.kind == "int", hostile)
    if param.kind == "floats":
        one = _number(param, False, hostile)
        return st.one_of(one, st.lists(one, min_size=1, max_size=4))
    if param.kind == "string":
        default = param.default if isinstance(param.default, str) else None
        if default and not hostile:
            return st.just(default)
        return st.sampled_from((default or "x", "/nonexistent/vectors.txt"))
    if param.kind == "strings":
        words = st.lists(st.text(max_size=10), max_size=4)
        return st.one_of(st.none(), words) if param.nullable else words
    one = _number(param, param.integer, hostile)
    pair = st.lists(one, min_size=2, max_size=2)
    if param.kind == "range":
        pair = pair.map(sorted)
        if param.scalar == "symmetric" and not hostile:  # one number x means [-x, x]: x >= 0
            one = one.map(abs)
        return st.one_of(pair, one) if param.scalar != "none" else pair
    return pair  # "pair"


def _bad_value(param: Param) -> S[Any]:
    """A value of the wrong type or out of range."""
    edges: list[Any] = [*NASTY_FLOATS, 10**30, -(10**30), "1", [], [1, 2, 3], {"a": 1}, None, True]
    if param.low is not None:
        edges += [param.low - 1, [param.low - 1, param.low]]
    if param.high is not None:
        edges += [param.high + 1, [param.high, param.high + 1]]
        if param.low is not None:
            edges.append([param.high, param.low])
    return st.one_of(st.sampled_from(edges), junk_json)


def _probability(hostile: bool) -> S[Any]:
    return _either(hostile, st.one_of(st.floats(0, 1), st.sampled_from((0.0, 1.0))),
                   st.sampled_from((-0.1, 1.5, math.nan, math.inf, "0.5", None, True, [0.5])))


@st.composite
def _fields(draw: Draw, params: Sequence[Param], hostile: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for param in params:
        modes = ["valid", "valid", "valid"] + (["skip"] if param.default is not REQUIRED else [])
        if hostile:
            modes += ["bad", "skip"]
        mode = draw(st.sampled_from(modes))
        if mode != "skip":
            out[param.name] = draw(_valid_value(param, hostile) if mode == "valid" else _bad_value(param))
    if hostile and draw(st.integers(0, 9)) == 0:
        out[draw(st.sampled_from(("bogus", "P", "nmae", "", "__class__")))] = draw(junk_json)
    elif not hostile and {"aug_min", "aug_max"} & set(out):  # a rule across fields: aug_min <= aug_max
        defaults = {p.name: p.default for p in params}
        low, high = out.get("aug_min", defaults.get("aug_min")), out.get("aug_max", defaults.get("aug_max"))
        if isinstance(low, int) and isinstance(high, int):
            out["aug_min"], out["aug_max"] = sorted((low, high))
    return out


def _transform(registry: Mapping[str, TransformInfo], names: Sequence[str], hostile: bool
               ) -> S[dict[str, Any]]:
    @st.composite
    def build(draw: Draw) -> dict[str, Any]:
        name = draw(_either(hostile, st.sampled_from(names),
                            st.sampled_from(("", "nope", "Horizontal_Flip", "x" * 300, "contextuall"))))
        node: dict[str, Any] = {"name": name}
        if draw(st.booleans()):
            node["p"] = draw(_probability(hostile))
        if name in registry:
            node.update(draw(_fields(registry[name].params, hostile)))
        return node

    return build()


def _group(children: S[dict[str, Any]], groups: Mapping[str, TransformInfo], hostile: bool
           ) -> S[dict[str, Any]]:
    @st.composite
    def build(draw: Draw) -> dict[str, Any]:
        kind = draw(st.sampled_from([*GROUP_KINDS, *groups]))
        members = draw(_either(hostile, st.lists(children, min_size=1, max_size=3),
                               st.one_of(st.just([]), junk_json)))
        node: dict[str, Any] = {kind: members}
        if draw(st.booleans()):
            node["p"] = draw(_probability(hostile))
        if kind == "some_of":
            most = len(members) if isinstance(members, list) else 1
            node["n"] = draw(_either(hostile, st.integers(1, max(1, most)),
                                     st.sampled_from((0, -1, 100, True, "2", 1.5))))
            node["replace"] = draw(_either(hostile, st.booleans(), st.sampled_from((0, "yes", None))))
        if kind in groups:
            node.update(draw(_fields(groups[kind].params, hostile)))
        return node

    return build()


@functools.cache
def spec(kind: str, hostile: bool) -> S[Any]:
    """A pipeline spec for ``kind`` ("image"/"text") as data, drawn from its registry."""
    registry: Mapping[str, TransformInfo] = IMAGE_TRANSFORMS if kind == "image" else TEXT_TRANSFORMS
    names = sorted(IMAGE_TRANSFORMS) if kind == "image" else TEXT_TRANSFORMS_FUZZED
    options = IMAGE_OPTIONS if kind == "image" else ()
    groups: Mapping[str, TransformInfo] = {} if kind == "image" else TEXT_GROUPS
    nodes = st.recursive(_transform(registry, names, hostile), lambda c: _group(c, groups, hostile),
                         max_leaves=5)

    @st.composite
    def build(draw: Draw) -> Any:
        transforms = draw(st.lists(nodes, max_size=4))
        shape = draw(st.sampled_from(("bare", "dict", "dict", "junk") if hostile else ("bare", "dict")))
        if shape == "bare":
            return transforms
        if shape == "junk":
            return draw(st.one_of(junk_json, st.just({"transforms": {"name": "resize"}})))
        out: dict[str, Any] = {"transforms": transforms}
        out.update(draw(_fields(options, hostile)))
        return out

    return build()


@st.composite
def _albu_dict(draw: Draw) -> dict[str, Any]:
    """albumentations' ``A.to_dict`` form: allowed classes (and a few others) with arbitrary arguments."""
    sizes = st.one_of(st.integers(1, 48), st.sampled_from((0, 1001, 65536, 10**6, -1)))
    args = st.fixed_dictionaries({}, optional={"height": sizes, "width": sizes, "p": _probability(True),
                                               "limit": junk_json, "blur_limit": junk_json,
                                               "size": st.tuples(sizes, sizes)})
    classes = st.sampled_from([*sorted(ALLOWED_CLASSES - {"Compose"}), "Lambda", "os.system", "ToTensorV2"])
    children = st.lists(st.tuples(classes, args).map(lambda ca: {"__class_fullname__": ca[0], **ca[1]}),
                        max_size=3)
    compose = {"__class_fullname__": draw(st.sampled_from(("Compose", "Compose", "OneOf"))),
               "p": 1.0, "transforms": draw(_either(True, children, junk_json))}
    return {"__version__": "2.0.8", "transform": compose}


def _spec_json(kind: str, hostile: bool) -> S[str]:
    text = spec(kind, hostile).map(lambda s: json.dumps(s, allow_nan=True))
    if not hostile:
        return text
    broken = st.one_of(
        text.flatmap(lambda t: st.integers(0, max(0, len(t) - 1)).map(lambda k: t[:k])),  # truncated
        st.text(max_size=40), st.integers(1, 60).map(lambda d: "[" * d + "]" * d),
        st.integers(1, 60).map(lambda d: '{"transforms": ' + "[" * d + "]" * d + "}"))
    if kind == "image":
        broken = st.one_of(broken, _albu_dict().map(json.dumps))
    return _either(True, text, broken, 4)


@functools.cache
def pipeline(kind: str, hostile: bool) -> S[pb.Pipeline | None]:
    """A Pipeline message for ``kind`` ("image"/"text"): spec JSON or a preset name; hostile: also
    broken JSON, foreign or unknown presets, an empty Pipeline or none."""
    presets = sorted(IMAGE_PRESETS if kind == "image" else TEXT_PRESETS)
    by_spec = _spec_json(kind, hostile).map(lambda t: pb.Pipeline(spec_json=t))
    by_name = st.sampled_from(presets).map(lambda name: pb.Pipeline(preset=name))
    bad = st.one_of(st.sampled_from(["", "nope", *sorted(TEXT_PRESETS if kind == "image" else IMAGE_PRESETS)])
                    .map(lambda name: pb.Pipeline(preset=name)), st.just(pb.Pipeline()), st.none())
    return _either(hostile, st.one_of(by_spec, by_spec, by_spec, by_name), bad, 8)


# --------------------------------------------------------------------------- images


def _pixels(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, nasty: bool) -> np.ndarray:
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.startswith("float"):
        array = rng.random(shape).astype(dtype)
        if nasty and array.size:
            array.reshape(-1)[rng.integers(0, array.size, max(1, array.size // 4))] = rng.choice(
                [np.nan, np.inf, -np.inf, -1e30, 1e30])
        return array
    info = np.iinfo(np.dtype(dtype))
    return rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)


def _mangled(good: pb.Tensor) -> S[pb.Tensor]:
    """``good`` with a lie in it: its dtype, its shape, or its byte count."""
    shape = list(good.shape)
    shapes = st.sampled_from([
        [], [len(good.data)], [*shape, 1], [*shape, 1, 1, 1], shape[:1], [*shape[:-1], -shape[-1]],
        [2**31, 2**31], [2**32, 2**32], [2**62, 4], [2**63 - 1, 2**63 - 1], [-1, -len(good.data)],
        [0, *shape[1:]], [*shape[:1], 0, *shape[2:]], [1, 1, 1, 1, len(good.data)]])
    return st.one_of(
        shapes.map(lambda s: pb.Tensor(data=good.data, shape=s, dtype=good.dtype)),
        st.sampled_from(BAD_DTYPES + VALID_DTYPES).map(
            lambda d: pb.Tensor(data=good.data, shape=good.shape, dtype=d)),
        st.integers(0, max(0, len(good.data) - 1)).map(
            lambda k: pb.Tensor(data=good.data[:k], shape=good.shape, dtype=good.dtype)),
        st.just(pb.Tensor(data=good.data + b"\x00" * 7, shape=good.shape, dtype=good.dtype)),
        st.just(pb.Tensor(shape=good.shape, dtype=good.dtype)), st.just(pb.Tensor()))


@st.composite
def _array_tensor(draw: Draw, height: int, width: int, hostile: bool) -> pb.Tensor:
    channels = draw(st.sampled_from((None, None, 1, 3, 3, 4) + ((2, 5) if hostile else ())))
    shape: tuple[int, ...] = (height, width) if channels is None else (height, width, channels)
    dtypes = VALID_DTYPES if hostile else ("float32",)
    dtype = draw(_either(True, st.just("uint8"), st.sampled_from(dtypes), 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    good = tensor(_pixels(rng, shape, dtype, nasty=draw(st.integers(0, 3)) == 0))
    return draw(_either(hostile, st.just(good), _mangled(good), 3))


@st.composite
def _encoded(draw: Draw, height: int, width: int, hostile: bool) -> bytes:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    good = draw(st.sampled_from((png(rgb), png(rgb[..., 0]), jpeg(rgb), png(np.dstack([rgb, rgb[..., :1]])))
                                + ((png(rgb.astype(np.uint16) * 257),) if hostile else ())))
    kind = draw(st.sampled_from(("good", "good", "truncated", "flipped", "garbage", "header") if hostile
                                else ("good",)))
    if kind == "good":
        return good
    if kind == "truncated":
        return good[:draw(st.integers(0, len(good) - 1))]
    if kind == "flipped":
        data = bytearray(good)
        for at in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            data[at] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == "garbage":
        return draw(st.binary(max_size=64))
    side = st.sampled_from((0, 1, 1000, 1001, 30000, 65535, 100000, 2**31 - 1, 2**32 - 1))
    w, h = draw(side), draw(side)
    return draw(st.sampled_from((png_header(w, h), png_header(w, h, 1, bit_depth=16), pnm_header(w, h),
                                 bmp_header(min(w, 2**31 - 1), min(h, 2**31 - 1)),
                                 jpeg_with_size(jpeg(rgb), min(w, 65535), min(h, 65535)))))


@st.composite
def _image(draw: Draw, height: int, width: int, hostile: bool) -> pb.Image:
    kind = draw(st.sampled_from(("array", "array", "array", "encoded") + (("none",) if hostile else ())))
    if kind == "array":
        return pb.Image(array=draw(_array_tensor(height, width, hostile)))
    if kind == "encoded":
        return pb.Image(encoded=draw(_encoded(height, width, hostile)))
    return pb.Image()


@st.composite
def _targets(draw: Draw, height: int, width: int, sample: pb.ImageSample, hostile: bool) -> None:
    """Mask, boxes and keypoints: right, or (hostile) of the wrong size, shape, dtype or value."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.integers(0, 3)) == 0:
        wrong = [(height + 1, width), (1, 1), (width, height), (0, 0)] if hostile else []
        sizes = [(height, width), *wrong]
        mh, mw = draw(st.sampled_from(sizes))
        shapes = [(mh, mw), (mh, mw, 1), (mh, mw, 3), *([(mh,), (mh, mw, 2, 2)] if hostile else [])]
        dtype = draw(st.sampled_from(VALID_DTYPES if hostile else ("uint8",)))
        mask = tensor(_pixels(rng, draw(st.sampled_from(shapes)), dtype, nasty=hostile))
        sample.mask.CopyFrom(draw(_either(hostile, st.just(mask), _mangled(mask), 5)))
    if draw(st.integers(0, 3)) == 0:
        count = draw(st.sampled_from((0, 1, 3, 50)))
        columns = draw(st.sampled_from((4, 4, 5, 3, 0, 6) if hostile else (4, 5)))
        scale = draw(st.sampled_from((1.0, width, -width, 1e9))) if hostile else \
            np.array([width, height, width, height, 1, 1][:columns]) / 2
        boxes = rng.random((count, columns)) * scale
        if columns >= 4 and (not hostile or draw(st.booleans())):
            boxes[:, 2:4] += boxes[:, 0:2]  # pascal_voc: x_max >= x_min
        if hostile and draw(st.integers(0, 4)) == 0 and boxes.size:
            boxes.reshape(-1)[0] = draw(st.sampled_from((np.nan, np.inf, -np.inf)))
        dtype = draw(st.sampled_from(("float32", "float64", "int64", "uint8") if hostile else ("float32",)))
        shape = draw(st.sampled_from((boxes.shape, boxes.shape, (boxes.size,), (1, *boxes.shape)) if hostile
                                     else (boxes.shape,)))
        with np.errstate(invalid="ignore"):  # NaN and inf to integers: whatever numpy makes of them
            sample.bboxes.CopyFrom(tensor(boxes.astype(dtype).reshape(shape)))
    if draw(st.integers(0, 4)) == 0:
        count = draw(st.sampled_from((0, 1, 5, 40)))
        columns = draw(st.sampled_from((2, 2, 3, 4, 1, 0) if hostile else (2,)))
        points = rng.random((count, columns)) * (draw(st.sampled_from((float(width), -1e9, 1e9))) if hostile
                                                 else np.array([width, height]) - 0.5)
        dtype = draw(st.sampled_from(("float32", "float64", "int32") if hostile else ("float32",)))
        sample.keypoints.CopyFrom(tensor(points.astype(dtype)))


@st.composite
def _sample(draw: Draw, hostile: bool) -> pb.ImageSample:
    sides = st.one_of(st.integers(1, 40), st.sampled_from((0, 1, 2) if hostile else (1, 2)))
    height, width = draw(sides), draw(sides)
    sample = pb.ImageSample(image=draw(_image(max(height, 1), max(width, 1), hostile)))
    draw(_targets(height, width, sample, hostile))
    return sample


def _indices(count: int, hostile: bool) -> S[list[int]]:
    exact = st.lists(u64, min_size=count, max_size=count)
    return _either(True, st.just([]), st.lists(u64, min_size=max(0, count - 1), max_size=count + 1)
                   if hostile else exact, 4)


def _images_request(hostile: bool) -> S[pb.AugmentImagesRequest]:
    @st.composite
    def build(draw: Draw) -> pb.AugmentImagesRequest:
        too_many = [pb.ImageSample(image=pb.Image(array=tensor(np.zeros((1, 1), np.uint8))))] * \
            (Limits.max_samples + 1)
        samples = draw(_either(hostile, st.lists(_sample(hostile), max_size=4), st.just(too_many), 12))
        request = pb.AugmentImagesRequest(
            request_id=draw(st.one_of(st.text(max_size=20), st.sampled_from(NASTY_STRINGS))),
            start_index=draw(u64), samples=samples, return_params=draw(st.booleans()),
            output_encoding=draw(_either(hostile, st.sampled_from((0, 0, 1, 2)),
                                         st.sampled_from((3, -1, 2**31 - 1)))),
            indices=draw(_indices(len(samples), hostile)))
        return _with_pipeline_and_seed(draw, request, "image", hostile)

    return build()


def _with_pipeline_and_seed(draw: Draw, request: R, kind: str, hostile: bool) -> R:
    """``request`` (an Augment*Request) with a drawn ``kind`` pipeline, when one is drawn, and a
    seed half the time."""
    if (pipe := draw(pipeline(kind, hostile))) is not None:
        request.pipeline.CopyFrom(pipe)
    if draw(st.booleans()):
        request.seed = draw(u64)
    return request


def images_request() -> S[pb.AugmentImagesRequest]:
    """An AugmentImagesRequest: a generated pipeline over 0-4 small samples (half of them hostile)."""
    return _mixed(_images_request)


# --------------------------------------------------------------------------- texts


def _texts_request(hostile: bool) -> S[pb.AugmentTextsRequest]:
    @st.composite
    def build(draw: Draw) -> pb.AugmentTextsRequest:
        one = st.one_of(st.sampled_from(SENTENCES), st.text(max_size=80), st.sampled_from(NASTY_STRINGS),
                        st.sampled_from(SENTENCES).map(lambda s: " ".join([s] * 40)))
        over = st.sampled_from((["a"] * (Limits.max_texts + 1), ["x" * (Limits.max_text_chars + 1)]))
        texts = draw(_either(hostile, st.lists(one, max_size=5), over, 10))
        request = pb.AugmentTextsRequest(
            request_id=draw(st.text(max_size=20)), start_index=draw(u64), texts=texts,
            n=draw(_either(hostile, st.integers(0, 3), st.sampled_from((64, 65, 1000, 2**31, 2**32 - 1)), 8)),
            return_ops=draw(st.booleans()), indices=draw(_indices(len(texts), hostile)))
        return _with_pipeline_and_seed(draw, request, "text", hostile)

    return build()


def texts_request() -> S[pb.AugmentTextsRequest]:
    """An AugmentTextsRequest: a generated text pipeline over 0-5 texts, n variants each."""
    return _mixed(_texts_request)


# --------------------------------------------------------------------------- epochs and listings


def _epoch_request(hostile: bool) -> S[pb.StreamEpochRequest]:
    @st.composite
    def build(draw: Draw) -> pb.StreamEpochRequest:
        dataset = draw(_either(hostile, st.sampled_from(("digits", "digits", "lfw_subset", "skimage",
                                                         "wordnet_glosses")),
                               st.sampled_from(("", "nope", "DIGITS", "digits ", "../digits", "x" * 1000))))
        shards = draw(_either(hostile, st.integers(0, 4), u32, 3))
        request = pb.StreamEpochRequest(
            request_id=draw(st.text(max_size=20)), dataset=dataset, seed=draw(u64), epoch=draw(u64),
            batch_size=draw(_either(hostile, st.integers(1, Limits.max_samples), st.sampled_from(
                (0, Limits.max_samples + 1, 2**31, 2**32 - 1)), 3)),
            shard=draw(_either(hostile, st.integers(0, max(0, shards - 1)), u32, 3)), num_shards=shards,
            start_batch=draw(_either(hostile, st.integers(0, 1), u64, 3)),
            part=draw(_either(hostile, st.sampled_from((0, 1, 2)), st.sampled_from((3, -1, 2**31 - 1)))),
            holdout_fraction=draw(_either(hostile, st.floats(0, 0.9), st.one_of(
                st.sampled_from(NASTY_FLOATS), st.just(1.0), st.floats()))),
            limit=draw(_either(hostile, st.integers(0, 50), u64, 3)),
            output_encoding=draw(_either(hostile, st.sampled_from((0, 0, 1, 2)), st.sampled_from((3, -1)))))
        kind = "text" if dataset == "wordnet_glosses" else "image"
        if draw(st.integers(0, 3)) and (pipe := draw(pipeline(kind, hostile))) is not None:
            request.pipeline.CopyFrom(pipe)
        return request

    return build()


def epoch_request() -> S[pb.StreamEpochRequest]:
    """A StreamEpochRequest; hostile ones have any field anywhere in its range."""
    return _mixed(_epoch_request)


@st.composite
def list_request(draw: Draw) -> bytes:
    """ListTransforms/ListDatasets requests: empty messages with unknown fields, well-formed on
    the wire (parsers keep unknown fields, so these must be answered as the empty request)."""
    out = b""
    for number in draw(st.lists(st.integers(1, 2**29 - 1), max_size=4)):
        if draw(st.booleans()):
            out += _varint(number << 3) + _varint(draw(u64))
        else:
            payload = draw(st.binary(max_size=32))
            out += _varint(number << 3 | 2) + _varint(len(payload)) + payload
    return out


# --------------------------------------------------------------------------- cases


def _stream(one: S[Any]) -> S[tuple[Any, ...]]:
    return st.lists(one, min_size=1, max_size=5).map(tuple)


def cases(rpc: str, deadline: float = 10.0) -> S[Case]:
    """Generated cases for ``rpc``: any acceptable status (listings: OK), answered within ``deadline``."""
    request: S[Any] = {
        "ListTransforms": list_request(),
        "ListDatasets": list_request(),
        "AugmentImages": images_request(),
        "AugmentTexts": texts_request(),
        "StreamEpoch": epoch_request(),
        "StreamAugmentImages": _stream(images_request()),
        "StreamAugmentTexts": _stream(texts_request()),
    }[rpc]
    if rpc.startswith("List"):
        return request.map(lambda r: Case("generated", rpc, r, frozenset({grpc.StatusCode.OK}),
                                          deadline=max(deadline, 60)))
    return request.map(lambda r: Case("generated", rpc, r, deadline=deadline))
