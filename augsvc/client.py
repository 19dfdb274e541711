"""AugmentClient: numpy in, numpy out, over the augsvc gRPC service (one or many replicas)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from augsvc.service.codec import Limits, decode_image, from_tensor, to_tensor
from augsvc.v1 import augment_pb2 as pb
from augsvc.v1 import augment_pb2_grpc as pb_grpc

__all__ = ["AugmentClient", "RemoteImage", "RemoteText"]

_MAX_MESSAGE = 512 * 1024 * 1024


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


def _pipeline(spec: Any) -> pb.Pipeline:
    if isinstance(spec, str) and not spec.lstrip().startswith(("{", "[")):
        return pb.Pipeline(preset=spec)
    return pb.Pipeline(spec_json=spec if isinstance(spec, str) else json.dumps(spec))


class AugmentClient:
    """A client for one address or several replicas (gRPC round_robin across them).

    Args:
        addresses: "host:port", or a list of them: requests are spread over all replicas.
        timeout: default deadline per call in seconds.

    Raises (from the calls): ``grpc.RpcError`` with the server's status and message.
    """

    def __init__(self, addresses: str | Sequence[str], *, timeout: float = 60.0) -> None:
        targets = [addresses] if isinstance(addresses, str) else list(addresses)
        if not targets:
            raise ValueError("give at least one address")
        target = targets[0] if len(targets) == 1 else "ipv4:" + ",".join(targets)
        self.channel = grpc.insecure_channel(target, options=[
            ("grpc.lb_policy_name", "round_robin"),
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE)])
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
                       start: int = 0, masks: Sequence[np.ndarray | None] | None = None,
                       bboxes: Sequence[Any] | None = None, return_params: bool = False
                       ) -> list[RemoteImage]:
        """Augment ``images`` remotely; the same results as ``ImagePipeline(spec).batch(...)``."""
        samples = []
        for k, image in enumerate(images):
            sample = pb.ImageSample(image=pb.Image(array=to_tensor(np.asarray(image))))
            if masks is not None and masks[k] is not None:
                sample.mask.CopyFrom(to_tensor(np.asarray(masks[k])))
            if bboxes is not None and bboxes[k] is not None:
                sample.bboxes.CopyFrom(to_tensor(np.asarray(bboxes[k], dtype=np.float64)))
            samples.append(sample)
        request = pb.AugmentImagesRequest(request_id=uuid.uuid4().hex, pipeline=_pipeline(spec),
                                          start_index=start, samples=samples,
                                          return_params=return_params)
        if seed is not None:
            request.seed = seed
        reply = self.stub.AugmentImages(request, timeout=self.timeout)
        return [RemoteImage(
            index=s.index, image=decode_image(s.image, "image", self._limits),
            mask=from_tensor(s.mask, "mask", self._limits) if s.HasField("mask") else None,
            bboxes=from_tensor(s.bboxes, "bboxes", self._limits) if s.HasField("bboxes") else None,
            keypoints=from_tensor(s.keypoints, "keypoints", self._limits)
            if s.HasField("keypoints") else None,
            params=json.loads(s.params_json) if s.params_json else None) for s in reply.samples]

    def augment_texts(self, texts: Sequence[str], spec: Any, *, seed: int | None = None,
                      start: int = 0, n: int = 1, return_ops: bool = False) -> list[RemoteText]:
        """Augment ``texts`` remotely; the same results as ``TextPipeline(spec).batch(...)``."""
        request = pb.AugmentTextsRequest(request_id=uuid.uuid4().hex, pipeline=_pipeline(spec),
                                         start_index=start, texts=list(texts), n=n,
                                         return_ops=return_ops)
        if seed is not None:
            request.seed = seed
        reply = self.stub.AugmentTexts(request, timeout=self.timeout)
        return [RemoteText(index=s.index, variant=s.variant, text=s.text,
                           ops=json.loads(s.ops_json) if s.ops_json else None)
                for s in reply.samples]
