"""AugmentClient: numpy in, numpy out, over the augsvc gRPC service (one or many replicas)."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import grpc
import numpy as np

from augsvc.memory import reuse_large_buffers
from augsvc.service.auth import BearerTokenClientInterceptor
from augsvc.service.codec import Limits, decode_image, from_tensor, to_tensor
from augsvc.v1 import augment_pb2 as pb
from augsvc.v1 import augment_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from augsvc.streams import EpochBatch

__all__ = ["AugmentClient", "Pending", "RemoteImage", "RemoteText", "pipeline_message"]

T = TypeVar("T")

_MAX_MESSAGE = 512 * 1024 * 1024
# Twice the 1 s ping interval augsvc servers accept (build_server): a ping delayed on the way
# arrives less than a keepalive after the one before, and must still not count as abuse.
_MIN_KEEPALIVE = 2.0


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


def _retry_config(retries: int) -> str:
    """A gRPC service config retrying every unary Augmenter RPC on UNAVAILABLE, with backoff."""
    service = pb.DESCRIPTOR.services_by_name["Augmenter"]
    unary = [{"service": service.full_name, "method": m.name} for m in service.methods
             if not m.client_streaming and not m.server_streaming]
    return json.dumps({"methodConfig": [{"name": unary, "retryPolicy": {
        "maxAttempts": retries + 1, "initialBackoff": "0.1s", "maxBackoff": "2s",
        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]})


def _keepalive_options(keepalive: float) -> list[tuple[str, int]]:
    """Channel options that ping every ``keepalive`` seconds and drop a connection that does not
    answer within as long again (gRPC's doc/keepalive.md)."""
    ms = round(keepalive * 1000)
    return [("grpc.keepalive_time_ms", ms),
            ("grpc.keepalive_timeout_ms", ms),
            # Any ping in flight, not only keepalive's: gRPC sends one ping at a time, so an
            # unanswered flow-control (BDP) ping to a frozen server holds the keepalive ping
            # back, and it times out only after this (default 1 min; GRPC_ARG_PING_TIMEOUT_MS
            # in chttp2's internal.h). Measured: 60 s to notice a SIGSTOPped server without it.
            ("grpc.http2.ping_timeout_ms", ms),
            # idle connections too: a replica that vanished between epochs leaves round_robin
            # before the next stream is sent to it, not a stall timeout after
            ("grpc.keepalive_permit_without_calls", 1),
            # no cap on pings between the client's own data frames: in a StreamEpoch the
            # client sends nothing after its request, and gRPC's default (2) would stop the
            # pings for exactly the long streams they are there to watch
            ("grpc.http2.max_pings_without_data", 0)]


def _channel_credentials(tls: str | os.PathLike[str] | bytes | bool) -> grpc.ChannelCredentials:
    if tls is True:
        return grpc.ssl_channel_credentials()  # the system's root certificates
    return grpc.ssl_channel_credentials(root_certificates=tls if isinstance(tls, bytes)
                                        else Path(tls).read_bytes())  # type: ignore[arg-type]


def _ipv4_target(addresses: Sequence[str]) -> str:
    """Several "host:port" as one gRPC target, ``ipv4:ip:port,...``: host names are resolved here,
    once (gRPC takes a list only as addresses; one DNS name with several records needs no list).

    Raises:
        ValueError: an address without a port, or a host name that does not resolve.
    """
    resolved: list[str] = []
    for address in addresses:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"address {address!r} is not host:port")
        try:
            infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ValueError(f"cannot resolve {host!r} in {address!r}: {exc.strerror}") from None
        for info in infos:
            ip = f"{info[4][0]}:{port}"
            if ip not in resolved:
                resolved.append(ip)
    return "ipv4:" + ",".join(resolved)


class Pending(Generic[T]):
    """A call in flight: :meth:`result` waits for the reply and converts it."""

    def __init__(self, call: Any, convert: Callable[[Any], T]) -> None:
        self.call, self.convert = call, convert

    def result(self) -> T:
        """The converted reply; raises ``grpc.RpcError`` with the server's status."""
        return self.convert(self.call.result())

    def cancel(self) -> None:
        self.call.cancel()


def pipeline_message(spec: Any) -> pb.Pipeline:
    """A spec (dict or JSON) or a preset name as the wire's Pipeline message."""
    if isinstance(spec, str) and not spec.lstrip().startswith(("{", "[")):
        return pb.Pipeline(preset=spec)
    return pb.Pipeline(spec_json=spec if isinstance(spec, str) else json.dumps(spec))


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
        if keepalive is not None and not keepalive >= _MIN_KEEPALIVE:
            raise ValueError(f"keepalive must be at least {_MIN_KEEPALIVE:g} seconds, or None for "
                             f"no pings; got {keepalive}")
        if reuse_memory:
            reuse_large_buffers()
        target = targets[0] if len(targets) == 1 else _ipv4_target(targets)
        options = [("grpc.lb_policy_name", "round_robin"),
                   # each client its own connections: SO_REUSEPORT spreads connections, so clients
                   # sharing one would all land on one server process
                   ("grpc.use_local_subchannel_pool", 1),
                   ("grpc.max_receive_message_length", _MAX_MESSAGE),
                   ("grpc.max_send_message_length", _MAX_MESSAGE),
                   ("grpc.enable_retries", int(retries > 0))]
        if retries:
            options.append(("grpc.service_config", _retry_config(retries)))
        if keepalive is not None:
            options += _keepalive_options(keepalive)
        channel = grpc.insecure_channel(target, options=options) if tls is None or tls is False \
            else grpc.secure_channel(target, _channel_credentials(tls), options=options)
        self.channel = channel if token is None \
            else grpc.intercept_channel(channel, BearerTokenClientInterceptor(token))
        self.stub = pb_grpc.AugmenterStub(self.channel)
        self.timeout = timeout
        self._limits = Limits(max_tensor_bytes=_MAX_MESSAGE, max_pixels=2**62)

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
        ...) are those of :func:`augsvc.streams.stream_epoch`.
        """
        from augsvc.streams import stream_epoch

        return stream_epoch(self, dataset, spec, **kwargs)
