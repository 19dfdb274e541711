from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Encoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCODING_RAW: _ClassVar[Encoding]
    ENCODING_PNG: _ClassVar[Encoding]
    ENCODING_JPEG: _ClassVar[Encoding]

class Part(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PART_ALL: _ClassVar[Part]
    PART_TRAIN: _ClassVar[Part]
    PART_HOLDOUT: _ClassVar[Part]
ENCODING_RAW: Encoding
ENCODING_PNG: Encoding
ENCODING_JPEG: Encoding
PART_ALL: Part
PART_TRAIN: Part
PART_HOLDOUT: Part

class Tensor(_message.Message):
    __slots__ = ("data", "shape", "dtype")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    def __init__(self, data: _Optional[bytes] = ..., shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("array", "encoded")
    ARRAY_FIELD_NUMBER: _ClassVar[int]
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    array: Tensor
    encoded: bytes
    def __init__(self, array: _Optional[_Union[Tensor, _Mapping]] = ..., encoded: _Optional[bytes] = ...) -> None: ...

class Pipeline(_message.Message):
    __slots__ = ("spec_json", "preset")
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    spec_json: str
    preset: str
    def __init__(self, spec_json: _Optional[str] = ..., preset: _Optional[str] = ...) -> None: ...

class ImageSample(_message.Message):
    __slots__ = ("image", "mask", "bboxes", "keypoints")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    BBOXES_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    image: Image
    mask: Tensor
    bboxes: Tensor
    keypoints: Tensor
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., mask: _Optional[_Union[Tensor, _Mapping]] = ..., bboxes: _Optional[_Union[Tensor, _Mapping]] = ..., keypoints: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class AugmentImagesRequest(_message.Message):
    __slots__ = ("request_id", "pipeline", "seed", "start_index", "samples", "return_params", "output_encoding", "indices")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    RETURN_PARAMS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ENCODING_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    pipeline: Pipeline
    seed: int
    start_index: int
    samples: _containers.RepeatedCompositeFieldContainer[ImageSample]
    return_params: bool
    output_encoding: Encoding
    indices: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, request_id: _Optional[str] = ..., pipeline: _Optional[_Union[Pipeline, _Mapping]] = ..., seed: _Optional[int] = ..., start_index: _Optional[int] = ..., samples: _Optional[_Iterable[_Union[ImageSample, _Mapping]]] = ..., return_params: _Optional[bool] = ..., output_encoding: _Optional[_Union[Encoding, str]] = ..., indices: _Optional[_Iterable[int]] = ...) -> None: ...

class AugmentedImage(_message.Message):
    __slots__ = ("index", "image", "mask", "bboxes", "keypoints", "params_json")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    BBOXES_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    index: int
    image: Image
    mask: Tensor
    bboxes: Tensor
    keypoints: Tensor
    params_json: str
    def __init__(self, index: _Optional[int] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., mask: _Optional[_Union[Tensor, _Mapping]] = ..., bboxes: _Optional[_Union[Tensor, _Mapping]] = ..., keypoints: _Optional[_Union[Tensor, _Mapping]] = ..., params_json: _Optional[str] = ...) -> None: ...

class AugmentImagesResponse(_message.Message):
    __slots__ = ("request_id", "samples")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    samples: _containers.RepeatedCompositeFieldContainer[AugmentedImage]
    def __init__(self, request_id: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[AugmentedImage, _Mapping]]] = ...) -> None: ...

class AugmentTextsRequest(_message.Message):
    __slots__ = ("request_id", "pipeline", "seed", "start_index", "texts", "n", "return_ops", "indices")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    RETURN_OPS_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    pipeline: Pipeline
    seed: int
    start_index: int
    texts: _containers.RepeatedScalarFieldContainer[str]
    n: int
    return_ops: bool
    indices: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, request_id: _Optional[str] = ..., pipeline: _Optional[_Union[Pipeline, _Mapping]] = ..., seed: _Optional[int] = ..., start_index: _Optional[int] = ..., texts: _Optional[_Iterable[str]] = ..., n: _Optional[int] = ..., return_ops: _Optional[bool] = ..., indices: _Optional[_Iterable[int]] = ...) -> None: ...

class AugmentedText(_message.Message):
    __slots__ = ("index", "variant", "text", "ops_json")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    OPS_JSON_FIELD_NUMBER: _ClassVar[int]
    index: int
    variant: int
    text: str
    ops_json: str
    def __init__(self, index: _Optional[int] = ..., variant: _Optional[int] = ..., text: _Optional[str] = ..., ops_json: _Optional[str] = ...) -> None: ...

class AugmentTextsResponse(_message.Message):
    __slots__ = ("request_id", "samples")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    samples: _containers.RepeatedCompositeFieldContainer[AugmentedText]
    def __init__(self, request_id: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[AugmentedText, _Mapping]]] = ...) -> None: ...

class ListTransformsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TransformSchema(_message.Message):
    __slots__ = ("domain", "name", "doc", "default_p", "params_json", "targets")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_P_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    domain: str
    name: str
    doc: str
    default_p: float
    params_json: str
    targets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, domain: _Optional[str] = ..., name: _Optional[str] = ..., doc: _Optional[str] = ..., default_p: _Optional[float] = ..., params_json: _Optional[str] = ..., targets: _Optional[_Iterable[str]] = ...) -> None: ...

class ListTransformsResponse(_message.Message):
    __slots__ = ("transforms", "image_presets", "text_presets")
    TRANSFORMS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_PRESETS_FIELD_NUMBER: _ClassVar[int]
    TEXT_PRESETS_FIELD_NUMBER: _ClassVar[int]
    transforms: _containers.RepeatedCompositeFieldContainer[TransformSchema]
    image_presets: _containers.RepeatedScalarFieldContainer[str]
    text_presets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, transforms: _Optional[_Iterable[_Union[TransformSchema, _Mapping]]] = ..., image_presets: _Optional[_Iterable[str]] = ..., text_presets: _Optional[_Iterable[str]] = ...) -> None: ...

class DatasetInfo(_message.Message):
    __slots__ = ("name", "kind", "size", "class_names", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    size: int
    class_names: _containers.RepeatedScalarFieldContainer[str]
    description: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., size: _Optional[int] = ..., class_names: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetInfo]
    def __init__(self, datasets: _Optional[_Iterable[_Union[DatasetInfo, _Mapping]]] = ...) -> None: ...

class StreamEpochRequest(_message.Message):
    __slots__ = ("request_id", "dataset", "pipeline", "seed", "epoch", "batch_size", "shard", "num_shards", "start_batch", "part", "holdout_fraction", "limit", "output_encoding")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    START_BATCH_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_FRACTION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ENCODING_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    dataset: str
    pipeline: Pipeline
    seed: int
    epoch: int
    batch_size: int
    shard: int
    num_shards: int
    start_batch: int
    part: Part
    holdout_fraction: float
    limit: int
    output_encoding: Encoding
    def __init__(self, request_id: _Optional[str] = ..., dataset: _Optional[str] = ..., pipeline: _Optional[_Union[Pipeline, _Mapping]] = ..., seed: _Optional[int] = ..., epoch: _Optional[int] = ..., batch_size: _Optional[int] = ..., shard: _Optional[int] = ..., num_shards: _Optional[int] = ..., start_batch: _Optional[int] = ..., part: _Optional[_Union[Part, str]] = ..., holdout_fraction: _Optional[float] = ..., limit: _Optional[int] = ..., output_encoding: _Optional[_Union[Encoding, str]] = ...) -> None: ...

class SkippedSample(_message.Message):
    __slots__ = ("index", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    reason: str
    def __init__(self, index: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class Targets(_message.Message):
    __slots__ = ("boxes", "labels", "masks", "mask", "keypoints")
    BOXES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    boxes: Tensor
    labels: Tensor
    masks: Tensor
    mask: Tensor
    keypoints: Tensor
    def __init__(self, boxes: _Optional[_Union[Tensor, _Mapping]] = ..., labels: _Optional[_Union[Tensor, _Mapping]] = ..., masks: _Optional[_Union[Tensor, _Mapping]] = ..., mask: _Optional[_Union[Tensor, _Mapping]] = ..., keypoints: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class EpochBatch(_message.Message):
    __slots__ = ("request_id", "batch_index", "num_batches", "images", "texts", "labels", "indices", "stacked", "skipped", "targets")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_INDEX_FIELD_NUMBER: _ClassVar[int]
    NUM_BATCHES_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    STACKED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    batch_index: int
    num_batches: int
    images: _containers.RepeatedCompositeFieldContainer[Image]
    texts: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.RepeatedScalarFieldContainer[int]
    indices: _containers.RepeatedScalarFieldContainer[int]
    stacked: Tensor
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedSample]
    targets: _containers.RepeatedCompositeFieldContainer[Targets]
    def __init__(self, request_id: _Optional[str] = ..., batch_index: _Optional[int] = ..., num_batches: _Optional[int] = ..., images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., texts: _Optional[_Iterable[str]] = ..., labels: _Optional[_Iterable[int]] = ..., indices: _Optional[_Iterable[int]] = ..., stacked: _Optional[_Union[Tensor, _Mapping]] = ..., skipped: _Optional[_Iterable[_Union[SkippedSample, _Mapping]]] = ..., targets: _Optional[_Iterable[_Union[Targets, _Mapping]]] = ...) -> None: ...
