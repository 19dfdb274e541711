"""AugmentClient: numpy in, numpy out, over the augsvc gRPC service (one or many replicas)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
import numpy as np

from augsvc.client.connection import MIN_KEEPALIVE, open_channel
from augsvc.client.epochs import EpochBatch, stream_epoch
from augsvc.memory import reuse_large_buffers
from augsvc.wire.images import decode_image
from augsvc.wire.pipeline import pipeline_message
from augsvc.wire.tensors import MAX_MESSAGE_BYTES, Limits, from_tensor, to_tensor
from augsvc.wire.v1 import augment_pb2 as pb
from augsvc.wire.v1 import augment_pb2_grpc as pb_grpc

__all__ = ["AugmentClient", "Pending", "RemoteImage", "RemoteText"]

T = TypeVar("T")


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

    def augment_images(self, images: Sequence[np.ndarray], spec: Any, *, seed: int | None = None,
                       start: int = 0, indices: Sequence[int] | None = None,
                       masks: Sequence[np.ndarray | None] | None = None,
                       bboxes: Sequence[Any] | None = None, return_params: bool = False
                       ) -> list[RemoteImage]:
        """Augment ``images`` remotely; the same results as ``ImagePipeline(spec).batch(...)``.

        ``indices`` (one per image) replaces ``start``: image ``k`` is global index ``indices[k]``.
        """
        return self.augment_images_async(images, spec, seed=seed, start=start, indices=indices,
                                         masks=masks, bboxes=bboxes,
                                         return_params=return_params).result()

    def augment_images_async(self, images: Sequence[np.ndarray], spec: Any, *,
                             seed: int | None = None, start: int = 0,
                             indices: Sequence[int] | None = None,
                             masks: Sequence[np.ndarray | None] | None = None,
                             bboxes: Sequence[Any] | None = None, return_params: bool = False
                             ) -> Pending[list[RemoteImage]]:
        """:meth:`augment_images` without waiting: ``.result()`` gives the images (or raises)."""
        samples = []
        for k, image in enumerate(images):
            sample = pb.ImageSample(image=pb.Image(array=to_tensor(np.asarray(image))))
            if masks is not None and masks[k] is not None:
                sample.mask.CopyFrom(to_tensor(np.asarray(masks[k])))
            if bboxes is not None and bboxes[k] is not None:
                sample.bboxes.CopyFrom(to_tensor(np.asarray(bboxes[k], dtype=np.float64)))
            samples.append(sample)
        request = pb.AugmentImagesRequest(request_id=uuid.uuid4().hex, pipeline=pipeline_message(spec),
                                          start_index=start, samples=samples,
                                          indices=list(indices or []), return_params=return_params)
        if seed is not None:
            request.seed = seed
        call = self.stub.AugmentImages.future(request, timeout=self.timeout)
        return Pending(call, lambda reply: [RemoteImage(
            index=s.index, image=decode_image(s.image, "image", self._limits),
            mask=from_tensor(s.mask, "mask", self._limits) if s.HasField("mask") else None,
            bboxes=from_tensor(s.bboxes, "bboxes", self._limits) if s.HasField("bboxes") else None,
            keypoints=from_tensor(s.keypoints, "keypoints", self._limits)
            if s.HasField("keypoints") else None,
            params=json.loads(s.params_json) if s.params_json else None) for s in reply.samples])

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
