from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CodecSpec(_message.Message):
    __slots__ = ("name", "sample_rate", "native_levels", "group_size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    NATIVE_LEVELS_FIELD_NUMBER: _ClassVar[int]
    GROUP_SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    sample_rate: int
    native_levels: int
    group_size: int
    def __init__(self, name: _Optional[str] = ..., sample_rate: _Optional[int] = ..., native_levels: _Optional[int] = ..., group_size: _Optional[int] = ...) -> None: ...

class SemanticSpec(_message.Message):
    __slots__ = ("vocabulary", "vocabulary_size", "rate_hz", "unknown_id", "frames_per_token")
    VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_SIZE_FIELD_NUMBER: _ClassVar[int]
    RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    vocabulary: str
    vocabulary_size: int
    rate_hz: int
    unknown_id: int
    frames_per_token: int
    def __init__(self, vocabulary: _Optional[str] = ..., vocabulary_size: _Optional[int] = ..., rate_hz: _Optional[int] = ..., unknown_id: _Optional[int] = ..., frames_per_token: _Optional[int] = ...) -> None: ...

class AcousticSpec(_message.Message):
    __slots__ = ("num_levels", "codebook_size", "frame_rate_hz")
    NUM_LEVELS_FIELD_NUMBER: _ClassVar[int]
    CODEBOOK_SIZE_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    num_levels: int
    codebook_size: int
    frame_rate_hz: int
    def __init__(self, num_levels: _Optional[int] = ..., codebook_size: _Optional[int] = ..., frame_rate_hz: _Optional[int] = ...) -> None: ...

class GenerateSignature(_message.Message):
    __slots__ = ("name", "level_schedule", "num_passes", "fixed_frames", "fixed_prompt_frames")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    NUM_PASSES_FIELD_NUMBER: _ClassVar[int]
    FIXED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FIXED_PROMPT_FRAMES_FIELD_NUMBER: _ClassVar[int]
    name: str
    level_schedule: _containers.RepeatedScalarFieldContainer[int]
    num_passes: int
    fixed_frames: int
    fixed_prompt_frames: int
    def __init__(self, name: _Optional[str] = ..., level_schedule: _Optional[_Iterable[int]] = ..., num_passes: _Optional[int] = ..., fixed_frames: _Optional[int] = ..., fixed_prompt_frames: _Optional[int] = ...) -> None: ...

class ExportInfo(_message.Message):
    __slots__ = ("jax_version", "tensorflow_version", "calling_convention_version", "platforms", "checkpoint_step", "model_config_json", "loop", "variables_dtype", "tpu_batch_sizes", "tpu_matmul_precision")
    JAX_VERSION_FIELD_NUMBER: _ClassVar[int]
    TENSORFLOW_VERSION_FIELD_NUMBER: _ClassVar[int]
    CALLING_CONVENTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_STEP_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    LOOP_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_DTYPE_FIELD_NUMBER: _ClassVar[int]
    TPU_BATCH_SIZES_FIELD_NUMBER: _ClassVar[int]
    TPU_MATMUL_PRECISION_FIELD_NUMBER: _ClassVar[int]
    jax_version: str
    tensorflow_version: str
    calling_convention_version: int
    platforms: _containers.RepeatedScalarFieldContainer[str]
    checkpoint_step: int
    model_config_json: str
    loop: str
    variables_dtype: str
    tpu_batch_sizes: _containers.RepeatedScalarFieldContainer[int]
    tpu_matmul_precision: str
    def __init__(self, jax_version: _Optional[str] = ..., tensorflow_version: _Optional[str] = ..., calling_convention_version: _Optional[int] = ..., platforms: _Optional[_Iterable[str]] = ..., checkpoint_step: _Optional[int] = ..., model_config_json: _Optional[str] = ..., loop: _Optional[str] = ..., variables_dtype: _Optional[str] = ..., tpu_batch_sizes: _Optional[_Iterable[int]] = ..., tpu_matmul_precision: _Optional[str] = ...) -> None: ...

class ModelContract(_message.Message):
    __slots__ = ("model_name", "version", "codec", "semantic", "acoustic", "max_frames", "max_prompt_frames", "frame_buckets", "signatures", "default_temperature", "default_choice_temperature", "export_info")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_FIELD_NUMBER: _ClassVar[int]
    ACOUSTIC_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_PROMPT_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAME_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_CHOICE_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    EXPORT_INFO_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    codec: CodecSpec
    semantic: SemanticSpec
    acoustic: AcousticSpec
    max_frames: int
    max_prompt_frames: int
    frame_buckets: _containers.RepeatedScalarFieldContainer[int]
    signatures: _containers.RepeatedCompositeFieldContainer[GenerateSignature]
    default_temperature: float
    default_choice_temperature: float
    export_info: ExportInfo
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., codec: _Optional[_Union[CodecSpec, _Mapping]] = ..., semantic: _Optional[_Union[SemanticSpec, _Mapping]] = ..., acoustic: _Optional[_Union[AcousticSpec, _Mapping]] = ..., max_frames: _Optional[int] = ..., max_prompt_frames: _Optional[int] = ..., frame_buckets: _Optional[_Iterable[int]] = ..., signatures: _Optional[_Iterable[_Union[GenerateSignature, _Mapping]]] = ..., default_temperature: _Optional[float] = ..., default_choice_temperature: _Optional[float] = ..., export_info: _Optional[_Union[ExportInfo, _Mapping]] = ...) -> None: ...
