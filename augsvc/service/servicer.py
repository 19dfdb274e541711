"""The Augmenter servicer: thin methods named after the RPCs, over the augsvc library."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import grpc

from augsvc.errors import Cancelled, InputError, LimitError
from augsvc.image.presets import IMAGE_PRESETS
from augsvc.image.registry import IMAGE_TRANSFORMS
from augsvc.service.epochs import EpochStreamer
from augsvc.service.errors import abort_with
from augsvc.service.memory_budget import MemoryBudget
from augsvc.service.observe import gone_code, wrap_handler
from augsvc.service.pipelines import bound_images, build_pipeline, resolve_spec
from augsvc.spec import dumps
from augsvc.text.presets import TEXT_PRESETS
from augsvc.text.registry import TEXT_GROUPS, TEXT_TRANSFORMS
from augsvc.wire.images import check_encoding, decode_image, encode_image
from augsvc.wire.tensors import Encoded, Limits, from_tensor, serialize, to_tensor
from augsvc.wire.v1 import augment_pb2 as pb
from augsvc.wire.v1 import augment_pb2_grpc as pb_grpc

__all__ = ["AugmenterServicer", "add_augmenter"]

R = TypeVar("R")
_MAX_INDEX = 2**64 - 1  # indices travel as uint64


def _indices(given: Any, count: int, start: int) -> list[int]:
    """The global index of each sample: ``indices`` when the request has them, else consecutive."""
    if not given:
        if count and start + count - 1 > _MAX_INDEX:
            raise InputError(f"start_index {start} + {count} samples runs past the largest "
                             f"index, {_MAX_INDEX}")
        return list(range(start, start + count))
    if len(given) != count:
        raise InputError(f"indices has {len(given)} entries for {count} samples")
    return list(given)


def _gone(context: grpc.ServicerContext) -> Callable[[], bool]:
    """True once the call's client has cancelled or its deadline has passed: work for it can stop."""
    return lambda: not context.is_active()


class AugmenterServicer(pb_grpc.AugmenterServicer):
    """Serves augsvc.v1.Augmenter; every error reaches the client as a status with a message."""

    def __init__(self, limits: Limits | None = None, *, epochs: EpochStreamer | None = None,
                 budget: MemoryBudget | None = None) -> None:
        self.limits = limits or Limits()
        self.epochs = epochs or EpochStreamer(limits=self.limits)
        self.budget = budget or MemoryBudget(None)

    def _guard(self, context: grpc.ServicerContext, run: Callable[[], R]) -> R:
        timeout = context.time_remaining()
        try:
            return run()
        except Cancelled:  # the client has gone: end the call as the client ended it
            context.abort(gone_code(context.time_remaining(), timeout),
                          "the call was cancelled or ran past its deadline; its work stopped")
            raise  # unreachable: abort raises
        except Exception as exc:  # one bad request never takes the server down
            abort_with(context, exc)

    def _stream_step(self, context: grpc.ServicerContext, run: Callable[[], R]) -> R | None:
        """One reply of a stream, or None when the client has gone mid-way: the stream then just
        ends, and the call's status is what the client did (cancel, deadline)."""
        try:
            return run()
        except Cancelled:
            return None
        except Exception as exc:  # one bad request never takes the server down
            abort_with(context, exc)

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

    def _augment_images(self, request: pb.AugmentImagesRequest,
                        stop: Callable[[], bool]) -> pb.AugmentImagesResponse:
        limits = self.limits
        if len(request.samples) > limits.max_samples:
            raise LimitError(f"{len(request.samples)} samples is over the limit of "
                             f"{limits.max_samples}")
        check_encoding(request.output_encoding)
        pipeline: Any = build_pipeline("image", resolve_spec(request.pipeline, "image",
                                                             limits.max_spec_bytes))
        seed = request.seed if request.HasField("seed") else None
        indices = _indices(request.indices, len(request.samples), request.start_index)
        # Every input is decoded and every output bounded before any augmentation runs: a
        # request the server cannot afford is refused whole, before it allocates.
        images = [decode_image(sample.image, f"samples[{k}].image", limits)
                  for k, sample in enumerate(request.samples)]
        reply_bytes, largest = bound_images(pipeline, images,
                                            [f"samples[{k}]" for k in range(len(images))], limits,
                                            "send fewer or smaller images per request")
        # Held at once: one sample's images on the way (input, a few temporaries, output) and
        # the reply twice (its message and its serialized bytes).
        need = 3 * largest + 2 * reply_bytes
        with self.budget.reserve(need, f"this request ({len(images)} images)"):
            return self._run_images(request, pipeline, images, seed, indices, stop)

    def _run_images(self, request: pb.AugmentImagesRequest, pipeline: Any, images: list[Any],
                    seed: int | None, indices: list[int],
                    stop: Callable[[], bool]) -> pb.AugmentImagesResponse:
        limits = self.limits
        out = []
        for k, sample in enumerate(request.samples):
            if stop():
                raise Cancelled(f"stopped before samples[{k}]")
            what = f"samples[{k}]"
            result = pipeline(
                images[k],
                mask=from_tensor(sample.mask, f"{what}.mask", limits)
                if sample.HasField("mask") else None,
                bboxes=from_tensor(sample.bboxes, f"{what}.bboxes", limits)
                if sample.HasField("bboxes") else None,
                keypoints=from_tensor(sample.keypoints, f"{what}.keypoints", limits)
                if sample.HasField("keypoints") else None,
                seed=seed, index=indices[k], return_params=request.return_params)
            out.append(pb.AugmentedImage(
                index=result.index, image=encode_image(result.image, request.output_encoding),
                mask=to_tensor(result.mask) if result.mask is not None else None,
                bboxes=to_tensor(result.bboxes) if result.bboxes is not None else None,
                keypoints=to_tensor(result.keypoints) if result.keypoints is not None else None,
                params_json=dumps(result.params) if result.params is not None else ""))
        return pb.AugmentImagesResponse(request_id=request.request_id, samples=out)

    def _augment_texts(self, request: pb.AugmentTextsRequest,
                       stop: Callable[[], bool]) -> pb.AugmentTextsResponse:
        limits = self.limits
        if len(request.texts) > limits.max_texts:
            raise LimitError(f"{len(request.texts)} texts is over the limit of {limits.max_texts}")
        too_long = [k for k, t in enumerate(request.texts) if len(t) > limits.max_text_chars]
        if too_long:
            raise LimitError(f"texts[{too_long[0]}] is over {limits.max_text_chars} characters")
        n = max(1, request.n)
        if len(request.texts) * n > limits.max_text_variants:
            raise LimitError(f"{len(request.texts)} texts x n={n} is {len(request.texts) * n} "
                             f"augmented texts, over the limit of {limits.max_text_variants} "
                             "per request")
        chars = sum(len(t) for t in request.texts) * n
        if chars > limits.max_reply_bytes // 4:  # UTF-8: up to 4 bytes a character
            raise LimitError(f"{chars} characters out (input characters x n={n}) could be over "
                             f"the reply limit of {limits.max_reply_bytes} bytes")
        pipeline: Any = build_pipeline("text", resolve_spec(request.pipeline, "text",
                                                            limits.max_spec_bytes))
        results = pipeline.batch(list(request.texts),
                                 seed=request.seed if request.HasField("seed") else None,
                                 indices=_indices(request.indices, len(request.texts),
                                                  request.start_index),
                                 n=n, return_ops=request.return_ops, stop=stop)
        return pb.AugmentTextsResponse(request_id=request.request_id, samples=[
            pb.AugmentedText(index=r.index, variant=r.variant, text=r.text,
                             ops_json=dumps(r.ops) if r.ops is not None else "")
            for r in results])

    def AugmentImages(self, request: pb.AugmentImagesRequest,
                      context: grpc.ServicerContext) -> pb.AugmentImagesResponse:
        return self._guard(context, lambda: self._augment_images(request, _gone(context)))

    def StreamAugmentImages(self, request_iterator: Iterator[pb.AugmentImagesRequest],
                            context: grpc.ServicerContext) -> Iterator[pb.AugmentImagesResponse]:
        for request in request_iterator:
            if not context.is_active():  # cancelled or past its deadline: stop working
                return
            reply = self._stream_step(context, lambda r=request: self._augment_images(  # type: ignore[misc]
                r, _gone(context)))
            if reply is None:
                return
            yield reply

    def AugmentTexts(self, request: pb.AugmentTextsRequest,
                     context: grpc.ServicerContext) -> pb.AugmentTextsResponse:
        return self._guard(context, lambda: self._augment_texts(request, _gone(context)))

    def StreamAugmentTexts(self, request_iterator: Iterator[pb.AugmentTextsRequest],
                           context: grpc.ServicerContext) -> Iterator[pb.AugmentTextsResponse]:
        for request in request_iterator:
            if not context.is_active():  # cancelled or past its deadline: stop working
                return
            reply = self._stream_step(context, lambda r=request: self._augment_texts(  # type: ignore[misc]
                r, _gone(context)))
            if reply is None:
                return
            yield reply

    def ListDatasets(self, request: pb.ListDatasetsRequest,
                     context: grpc.ServicerContext) -> pb.ListDatasetsResponse:
        return self._guard(context, lambda: pb.ListDatasetsResponse(datasets=self.epochs.infos()))

    def StreamEpoch(self, request: pb.StreamEpochRequest,
                    context: grpc.ServicerContext) -> Iterator[pb.EpochBatch | Encoded]:
        plan = self._guard(context, lambda: self.epochs.plan(request))
        with contextlib.ExitStack() as held:
            # The server holds up to a window of batches per stream (and the one being sent).
            need = (self.epochs.window + 2) * plan.batch_bytes
            self._guard(context, lambda: held.enter_context(self.budget.reserve(
                need, f"this stream ({plan.batch_bytes} bytes a batch)")))
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


@dataclass(frozen=True)
class _Undecodable:
    """A request message that did not parse (what the deserializer hands on instead of raising)."""

    reason: str


def _lenient(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """A request deserializer that never raises: gRPC answers a raising one with INTERNAL."""
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # protobuf's DecodeError, and invalid UTF-8 in a string field
            return _Undecodable(f"{type(exc).__name__}: {exc}")
    return parse


def _refuse(context: grpc.ServicerContext, bad: _Undecodable) -> NoReturn:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                  f"the request is not a valid protobuf message of its type ({bad.reason[:300]})")
    raise AssertionError("unreachable: abort raises")


def _checked(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """``handler`` with undecodable requests answered INVALID_ARGUMENT before the servicer runs."""
    def check(behaviour: Callable[..., Any], request_streaming: bool,
              _response_streaming: bool) -> Callable[..., Any]:
        def one(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                _refuse(context, request)
            return behaviour(request, context)

        def many(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            def checked() -> Iterator[Any]:
                for request in requests:
                    if isinstance(request, _Undecodable):
                        _refuse(context, request)
                    yield request
            return behaviour(checked(), context)

        return many if request_streaming else one

    wrapped = wrap_handler(handler, check)
    return wrapped._replace(  # type: ignore[attr-defined,no-any-return]
        request_deserializer=_lenient(handler.request_deserializer))


def add_augmenter(servicer: AugmenterServicer, server: grpc.Server) -> None:
    """Register the Augmenter service, as the generated ``add_AugmenterServicer_to_server`` does,
    except that StreamEpoch replies may come already serialized (``codec.Encoded``): a large image
    batch is then copied once into its wire bytes instead of three times; and a request that does
    not parse is answered INVALID_ARGUMENT (gRPC's own answer is INTERNAL)."""
    collected = _Handlers()
    pb_grpc.add_AugmenterServicer_to_server(servicer, collected)
    handlers = collected.handlers
    stream_epoch = handlers["StreamEpoch"]
    handlers["StreamEpoch"] = grpc.unary_stream_rpc_method_handler(
        servicer.StreamEpoch, request_deserializer=stream_epoch.request_deserializer,
        response_serializer=serialize)
    handlers = {name: _checked(handler) for name, handler in handlers.items()}
    service = pb.DESCRIPTOR.services_by_name["Augmenter"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)
