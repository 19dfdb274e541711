"""The Augmenter servicer: thin methods named after the RPCs, over the augsvc library."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from augsvc.errors import InputError
from augsvc.image.presets import IMAGE_PRESETS
from augsvc.image.registry import IMAGE_TRANSFORMS
from augsvc.service.codec import (
    Encoded,
    LimitError,
    Limits,
    decode_image,
    encode_image,
    from_tensor,
    serialize,
    to_tensor,
)
from augsvc.service.epochs import EpochStreamer
from augsvc.service.errors import retry_pushback, status_for
from augsvc.service.pipelines import build_pipeline, resolve_spec
from augsvc.spec import dumps
from augsvc.text.presets import TEXT_PRESETS
from augsvc.text.registry import TEXT_GROUPS, TEXT_TRANSFORMS
from augsvc.v1 import augment_pb2 as pb
from augsvc.v1 import augment_pb2_grpc as pb_grpc

__all__ = ["AugmenterServicer", "add_augmenter"]

R = TypeVar("R")


def _indices(given: Any, count: int, start: int) -> list[int]:
    """The global index of each sample: ``indices`` when the request has them, else consecutive."""
    if not given:
        return list(range(start, start + count))
    if len(given) != count:
        raise InputError(f"indices has {len(given)} entries for {count} samples")
    return list(given)


class AugmenterServicer(pb_grpc.AugmenterServicer):
    """Serves augsvc.v1.Augmenter; every error reaches the client as a status with a message."""

    def __init__(self, limits: Limits | None = None, *, epochs: EpochStreamer | None = None) -> None:
        self.limits = limits or Limits()
        self.epochs = epochs or EpochStreamer(limits=self.limits)

    def _guard(self, context: grpc.ServicerContext, run: Callable[[], R]) -> R:
        try:
            return run()
        except Exception as exc:  # one bad request never takes the server down
            code, message = status_for(exc)
            trailer = retry_pushback(exc)
            if trailer:
                context.set_trailing_metadata(trailer)
            context.abort(code, message)
            raise  # unreachable: abort raises

    def ListTransforms(self, request: pb.ListTransformsRequest,
                       context: grpc.ServicerContext) -> pb.ListTransformsResponse:
        out = []
        for domain, registry in (("image", IMAGE_TRANSFORMS),
                                 ("text", {**TEXT_TRANSFORMS, **TEXT_GROUPS})):
            for name in sorted(registry):
                info = registry[name].describe()
                out.append(pb.TransformSchema(
                    domain=domain, name=name, doc=info["doc"], default_p=info["default_p"],
                    params_json=dumps(info["params"]), targets=info.get("targets", [])))
        return pb.ListTransformsResponse(transforms=out, image_presets=sorted(IMAGE_PRESETS),
                                         text_presets=sorted(TEXT_PRESETS))

    def _augment_images(self, request: pb.AugmentImagesRequest) -> pb.AugmentImagesResponse:
        if len(request.samples) > self.limits.max_samples:
            raise LimitError(f"{len(request.samples)} samples is over the limit of "
                             f"{self.limits.max_samples}")
        pipeline: Any = build_pipeline("image", resolve_spec(request.pipeline, "image"))
        seed = request.seed if request.HasField("seed") else None
        indices = _indices(request.indices, len(request.samples), request.start_index)
        out = []
        for k, sample in enumerate(request.samples):
            what = f"samples[{k}]"
            result = pipeline(
                decode_image(sample.image, f"{what}.image", self.limits),
                mask=from_tensor(sample.mask, f"{what}.mask", self.limits)
                if sample.HasField("mask") else None,
                bboxes=from_tensor(sample.bboxes, f"{what}.bboxes", self.limits)
                if sample.HasField("bboxes") else None,
                keypoints=from_tensor(sample.keypoints, f"{what}.keypoints", self.limits)
                if sample.HasField("keypoints") else None,
                seed=seed, index=indices[k], return_params=request.return_params)
            out.append(pb.AugmentedImage(
                index=result.index, image=encode_image(result.image, request.output_encoding),
                mask=to_tensor(result.mask) if result.mask is not None else None,
                bboxes=to_tensor(result.bboxes) if result.bboxes is not None else None,
                keypoints=to_tensor(result.keypoints) if result.keypoints is not None else None,
                params_json=dumps(result.params) if result.params is not None else ""))
        return pb.AugmentImagesResponse(request_id=request.request_id, samples=out)

    def _augment_texts(self, request: pb.AugmentTextsRequest) -> pb.AugmentTextsResponse:
        if len(request.texts) > self.limits.max_texts:
            raise LimitError(f"{len(request.texts)} texts is over the limit of "
                             f"{self.limits.max_texts}")
        too_long = [k for k, t in enumerate(request.texts) if len(t) > self.limits.max_text_chars]
        if too_long:
            raise LimitError(f"texts[{too_long[0]}] is over {self.limits.max_text_chars} characters")
        pipeline: Any = build_pipeline("text", resolve_spec(request.pipeline, "text"))
        results = pipeline.batch(list(request.texts),
                                 seed=request.seed if request.HasField("seed") else None,
                                 indices=_indices(request.indices, len(request.texts),
                                                  request.start_index),
                                 n=max(1, request.n), return_ops=request.return_ops)
        return pb.AugmentTextsResponse(request_id=request.request_id, samples=[
            pb.AugmentedText(index=r.index, variant=r.variant, text=r.text,
                             ops_json=dumps(r.ops) if r.ops is not None else "")
            for r in results])

    def AugmentImages(self, request: pb.AugmentImagesRequest,
                      context: grpc.ServicerContext) -> pb.AugmentImagesResponse:
        return self._guard(context, lambda: self._augment_images(request))

    def StreamAugmentImages(self, request_iterator: Iterator[pb.AugmentImagesRequest],
                            context: grpc.ServicerContext) -> Iterator[pb.AugmentImagesResponse]:
        for request in request_iterator:
            if not context.is_active():  # cancelled or past its deadline: stop working
                return
            yield self._guard(context, lambda r=request: self._augment_images(r))  # type: ignore[misc]

    def AugmentTexts(self, request: pb.AugmentTextsRequest,
                     context: grpc.ServicerContext) -> pb.AugmentTextsResponse:
        return self._guard(context, lambda: self._augment_texts(request))

    def StreamAugmentTexts(self, request_iterator: Iterator[pb.AugmentTextsRequest],
                           context: grpc.ServicerContext) -> Iterator[pb.AugmentTextsResponse]:
        for request in request_iterator:
            if not context.is_active():  # cancelled or past its deadline: stop working
                return
            yield self._guard(context, lambda r=request: self._augment_texts(r))  # type: ignore[misc]

    def ListDatasets(self, request: pb.ListDatasetsRequest,
                     context: grpc.ServicerContext) -> pb.ListDatasetsResponse:
        return self._guard(context, lambda: pb.ListDatasetsResponse(datasets=self.epochs.infos()))

    def StreamEpoch(self, request: pb.StreamEpochRequest,
                    context: grpc.ServicerContext) -> Iterator[pb.EpochBatch | Encoded]:
        plan = self._guard(context, lambda: self.epochs.plan(request))
        batches = self.epochs.stream(request, plan, context.is_active)
        while True:  # one batch at a time: the next is built only when gRPC asks for it
            batch = self._guard(context, lambda: next(batches, None))
            if batch is None:
                return
            yield batch


class _Handlers:
    """Stands in for a server to collect the method handlers the generated code registers."""

    handlers: dict[str, grpc.RpcMethodHandler]

    def add_generic_rpc_handlers(self, _handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, _service: str,
                                       handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.handlers = dict(handlers)


def add_augmenter(servicer: AugmenterServicer, server: grpc.Server) -> None:
    """Register the Augmenter service, as the generated ``add_AugmenterServicer_to_server`` does,
    except that StreamEpoch replies may come already serialized (``codec.Encoded``): a large image
    batch is then copied once into its wire bytes instead of three times."""
    collected = _Handlers()
    pb_grpc.add_AugmenterServicer_to_server(servicer, collected)
    handlers = collected.handlers
    stream_epoch = handlers["StreamEpoch"]
    handlers["StreamEpoch"] = grpc.unary_stream_rpc_method_handler(
        servicer.StreamEpoch, request_deserializer=stream_epoch.request_deserializer,
        response_serializer=serialize)
    service = pb.DESCRIPTOR.services_by_name["Augmenter"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)
