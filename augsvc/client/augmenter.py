"""AugmentClient: numpy in, numpy out, over the augsvc gRPC service (one or many replicas)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import grpc
import numpy as np

from augsvc.client.connection import MIN_KEEPALIVE, open_channel
from augsvc.client.epochs import EpochBatch, stream_epoch
from augsvc.errors import InputError, did_you_mean
from augsvc.memory import reuse_large_buffers
from augsvc.wire.images import decode_image, encode_image
from augsvc.wire.pipeline import pipeline_message
from augsvc.wire.tensors import MAX_MESSAGE_BYTES, Limits, from_tensor, to_tensor
from augsvc.wire.v1 import augment_pb2 as pb
from augsvc.wire.v1 import augment_pb2_grpc as pb_grpc

__all__ = ["AugmentClient", "Pending", "RemoteImage", "RemoteText"]

T = TypeVar("T")

InputEncoding = Literal["png", "jpeg"]
"""How ``augment_images(encode=...)`` sends images (None: raw arrays)."""
OutputEncoding = Literal["raw", "png", "jpeg"]
"""How ``augment_images(output_encoding=...)`` asks for the results."""
_INPUT_ENCODINGS = {"png": pb.ENCODING_PNG, "jpeg": pb.ENCODING_JPEG}
_OUTPUT_ENCODINGS = {"raw": pb.ENCODING_RAW, **_INPUT_ENCODINGS}


def _encoding(what: str, name: object, allowed: dict[str, pb.Encoding]) -> pb.Encoding:
    """The wire enum for an encoding name; ValueError naming the allowed ones otherwise."""
    if isinstance(name, str) and name in allowed:
        return allowed[name]
    names = ", ".join(repr(n) for n in allowed) + (" or None" if what == "encode" else "")
    hint = did_you_mean(name, allowed) if isinstance(name, str) else ""
    raise ValueError(f"{what} must be one of {names}; got {name!r}{hint}")


def _wire_image(image: np.ndarray | bytes, encoding: int | None, what: str) -> tuple[pb.Image, bool]:
    """An image as the wire's Image (raw, or PNG/JPEG when ``encoding`` is given; ``bytes`` go
    as they are), and whether it is an HxWx1 array (that PNG/JPEG bring back as HxW)."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        if not len(image):
            raise ValueError(f"{what} is empty: give the bytes of a PNG/JPEG file, or an array")
        return pb.Image(encoded=bytes(image)), False
    array = np.asarray(image)
    single = array.ndim == 3 and array.shape[2] == 1
    if encoding is None:
        return pb.Image(array=to_tensor(array)), single
    name = "png" if encoding == pb.ENCODING_PNG else "jpeg"
    if array.dtype != np.uint8:
        raise ValueError(f"{what}: encode={name!r} needs a uint8 image, this one is {array.dtype}; "
                         "pass encode=None to send it as a raw array")
    if array.ndim not in (2, 3):
        raise ValueError(f"{what}: encode={name!r} needs an HxW or HxWxC image, got shape "
                         f"{array.shape}")
    if encoding == pb.ENCODING_JPEG and array.ndim == 3 and array.shape[2] == 4:
        raise ValueError(f"{what}: JPEG has no alpha channel; use encode='png' for RGBA images")
    try:
        return encode_image(array, encoding), single
    except InputError as exc:
        raise ValueError(f"{what}: {exc}") from None


@dataclass
class RemoteImage:
    """One augmented image from the service."""

    index: int
    image: np.ndarray
    mask: np.ndarray | None = None
    bboxes: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    params: list[dict[str, Any]] | None = None


@dataclass
class RemoteText:
    """One augmented text from the service."""

    index: int
    variant: int
    text: str
    ops: list[dict[str, Any]] | None = None


class Pending(Generic[T]):
    """A call in flight: :meth:`result` waits for the reply and converts it."""

    def __init__(self, call: Any, convert: Callable[[Any], T]) -> None:
        self.call, self.convert = call, convert

    def result(self) -> T:
        """The converted reply; raises ``grpc.RpcError`` with the server's status."""
        return self.convert(self.call.result())

    def cancel(self) -> None:
        self.call.cancel()


class AugmentClient:
    """A client for one address or several replicas (gRPC round_robin across them).

    Args:
        addresses: "host:port", or a list of them: requests are spread over all replicas.
        timeout: default deadline per call in seconds.
        token: sent as ``authorization: Bearer <token>`` on every call (servers run with a token).
        tls: None for plaintext; a CA certificate (PEM file path or bytes) that signed the
            server's certificate; or True for the system's root certificates.
        retries: unary calls answered UNAVAILABLE (a replica restarting, a connection dropped)
            are retried this many times (0 to 4), with exponential backoff from 0.1 s to 2 s.
        reuse_memory: tune this process's allocator so batch-sized buffers are reused rather
            than mapped and page-faulted in for every reply (``augsvc.memory``); about a fifth
            of the client's CPU per image batch. False leaves the allocator alone.
        keepalive: seconds between HTTP/2 pings on each connection, also while it is idle or
            in a long stream; a connection whose ping is not answered within as many seconds
            again is closed, so a replica that hangs or vanishes without closing its
            connections is noticed within about ``2 * keepalive`` seconds: its calls fail with
            UNAVAILABLE (streams resume elsewhere) and round_robin stops picking it. At least
            2 s (augsvc servers accept a ping a second); None sends no pings.

    Raises:
        ValueError: no address, ``retries`` or ``keepalive`` out of range.

    The calls raise ``grpc.RpcError`` with the server's status and message.
    """

    def __init__(self, addresses: str | Sequence[str], *, timeout: float = 60.0, token: str | None = None,
                 tls: str | os.PathLike[str] | bytes | bool | None = None, retries: int = 3,
                 reuse_memory: bool = True, keepalive: float | None = 10.0) -> None:
        targets = [addresses] if isinstance(addresses, str) else list(addresses)
        if not targets:
            raise ValueError("give at least one address")
        if not 0 <= retries <= 4:
            raise ValueError(f"retries must be from 0 to 4 (gRPC allows 5 attempts), got {retries}")
        if keepalive is not None and not keepalive >= MIN_KEEPALIVE:
            raise ValueError(f"keepalive must be at least {MIN_KEEPALIVE:g} seconds, or None for "
                             f"no pings; got {keepalive}")
        if reuse_memory:
            reuse_large_buffers()
        self.channel = open_channel(targets, token=token, tls=tls, retries=retries,
                                    keepalive=keepalive)
        self.stub = pb_grpc.AugmenterStub(self.channel)
        self.timeout = timeout
        self._limits = Limits(max_tensor_bytes=MAX_MESSAGE_BYTES, max_pixels=2**62)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> AugmentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the channel connects (raises grpc.FutureTimeoutError otherwise)."""
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    def list_transforms(self) -> list[dict[str, Any]]:
        """Every transform the server offers, with its parameter schema."""
        reply = self.stub.ListTransforms(pb.ListTransformsRequest(), timeout=self.timeout)
        return [{"domain": t.domain, "name": t.name, "doc": t.doc, "default_p": t.default_p,
                 "params": json.loads(t.params_json), "targets": list(t.targets)}
                for t in reply.transforms]

    def augment_images(self, images: Sequence[np.ndarray | bytes], spec: Any, *,
                       seed: int | None = None, start: int = 0,
                       indices: Sequence[int] | None = None,
                       masks: Sequence[np.ndarray | None] | None = None,
                       bboxes: Sequence[Any] | None = None,
                       keypoints: Sequence[Any] | None = None, return_params: bool = False,
                       encode: InputEncoding | None = None,
                       output_encoding: OutputEncoding = "raw") -> list[RemoteImage]:
        """Augment ``images`` remotely; the same results as ``ImagePipeline(spec).batch(...)``.

        Args:
            images: HxW(xC) arrays, or PNG/JPEG file bytes (a ``bytes`` item is sent as it is
                and decoded by the server to RGB(A) uint8).
            spec: a spec (list, dict, JSON, albumentations' ``A.to_dict``) or a preset name.
            seed: None for fresh randomness; with a seed, image ``k`` depends only on
                (spec, seed, its index).
            start: the global index of ``images[0]``; image ``k`` is index ``start + k``.
            indices: one global index per image, instead of ``start``.
            masks, bboxes, keypoints: one entry per image, or None for an image without; boxes
                are (N, 4 + extra) in the spec's ``bbox_format``, keypoints (N, 2 + extra) in
                its ``keypoint_format``.
            return_params: also return the transforms that fired and their values.
            encode: None sends arrays raw; ``"png"`` (lossless) or ``"jpeg"`` (lossy, a fraction
                of the bytes for photos) sends them encoded; uint8 images with 1, 3 or 4
                channels only (JPEG: not 4).
            output_encoding: how the server sends the results back: ``"raw"``, ``"png"``
                (lossless: equal to raw) or ``"jpeg"`` (lossy: close to raw, not equal; RGBA
                loses its alpha); PNG/JPEG need uint8 results. ``RemoteImage.image`` is always
                a decoded array.

        Raises:
            ValueError: an unknown encoding name, an image that cannot be encoded, or
                masks/bboxes/keypoints with another length than ``images``.
        """
        return self.augment_images_async(images, spec, seed=seed, start=start, indices=indices,
                                         masks=masks, bboxes=bboxes, keypoints=keypoints,
                                         return_params=return_params, encode=encode,
                                         output_encoding=output_encoding).result()

    def augment_images_async(self, images: Sequence[np.ndarray | bytes], spec: Any, *,
                             seed: int | None = None, start: int = 0,
                             indices: Sequence[int] | None = None,
                             masks: Sequence[np.ndarray | None] | None = None,
                             bboxes: Sequence[Any] | None = None,
                             keypoints: Sequence[Any] | None = None, return_params: bool = False,
                             encode: InputEncoding | None = None,
                             output_encoding: OutputEncoding = "raw"
                             ) -> Pending[list[RemoteImage]]:
        """:meth:`augment_images` without waiting: ``.result()`` gives the images (or raises).

        Arguments are checked (``ValueError``) before anything is sent.
        """
        sending = None if encode is None else _encoding("encode", encode, _INPUT_ENCODINGS)
        receiving = _encoding("output_encoding", output_encoding, _OUTPUT_ENCODINGS)
        for what, extra in (("masks", masks), ("bboxes", bboxes), ("keypoints", keypoints)):
            if extra is not None and len(extra) != len(images):
                raise ValueError(f"{what} has {len(extra)} entries for {len(images)} images "
                                 "(give None for an image without)")
        samples, one_channel = [], []
        for k, image in enumerate(images):
            wire, single = _wire_image(image, sending, f"images[{k}]")
            sample = pb.ImageSample(image=wire)
            if masks is not None and masks[k] is not None:
                sample.mask.CopyFrom(to_tensor(np.asarray(masks[k])))
            if bboxes is not None and bboxes[k] is not None:
                sample.bboxes.CopyFrom(to_tensor(np.asarray(bboxes[k], dtype=np.float64)))
            if keypoints is not None and keypoints[k] is not None:
                sample.keypoints.CopyFrom(to_tensor(np.asarray(keypoints[k], dtype=np.float64)))
            samples.append(sample)
            one_channel.append(single)
        request = pb.AugmentImagesRequest(request_id=uuid.uuid4().hex, pipeline=pipeline_message(spec),
                                          start_index=start, samples=samples,
                                          indices=list(indices or []), return_params=return_params,
                                          output_encoding=receiving)
        if seed is not None:
            request.seed = seed
        call = self.stub.AugmentImages.future(request, timeout=self.timeout)
        return Pending(call, lambda reply: [self._remote_image(s, one_channel[k])
                                            for k, s in enumerate(reply.samples)])

    def _remote_image(self, s: pb.AugmentedImage, one_channel: bool) -> RemoteImage:
        image = decode_image(s.image, "image", self._limits)
        if one_channel and image.ndim == 2:  # PNG/JPEG carry HxWx1 as HxW: keep the raw shape
            image = image[..., None]
        return RemoteImage(
            index=s.index, image=image,
            mask=from_tensor(s.mask, "mask", self._limits) if s.HasField("mask") else None,
            bboxes=from_tensor(s.bboxes, "bboxes", self._limits) if s.HasField("bboxes") else None,
            keypoints=from_tensor(s.keypoints, "keypoints", self._limits)
            if s.HasField("keypoints") else None,
            params=json.loads(s.params_json) if s.params_json else None)

    def augment_texts(self, texts: Sequence[str], spec: Any, *, seed: int | None = None,
                      start: int = 0, indices: Sequence[int] | None = None, n: int = 1,
                      return_ops: bool = False) -> list[RemoteText]:
        """Augment ``texts`` remotely; the same results as ``TextPipeline(spec).batch(...)``."""
        request = pb.AugmentTextsRequest(request_id=uuid.uuid4().hex, pipeline=pipeline_message(spec),
                                         start_index=start, texts=list(texts), n=n,
                                         indices=list(indices or []), return_ops=return_ops)
        if seed is not None:
            request.seed = seed
        reply = self.stub.AugmentTexts(request, timeout=self.timeout)
        return [RemoteText(index=s.index, variant=s.variant, text=s.text,
                           ops=json.loads(s.ops_json) if s.ops_json else None)
                for s in reply.samples]

    def list_datasets(self) -> list[dict[str, Any]]:
        """The datasets the server streams: name, kind, size, class names, description."""
        reply = self.stub.ListDatasets(pb.ListDatasetsRequest(), timeout=self.timeout)
        return [{"name": d.name, "kind": d.kind, "size": d.size, "class_names": list(d.class_names),
                 "description": d.description} for d in reply.datasets]

    def stream_epoch(self, dataset: str, spec: Any = None, **kwargs: Any) -> Iterator[EpochBatch]:
        """One epoch of a server-side dataset, resuming on failures and stalls.

        Keyword arguments (``seed``, ``epoch``, ``batch_size``, ``retries``, ``stall_timeout``,
        ...) are those of :func:`augsvc.client.stream_epoch`.
        """
        return stream_epoch(self, dataset, spec, **kwargs)
