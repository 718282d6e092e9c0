"""What an export produces: the choices that shape the SavedModel, with defaults for serving.

Lengths are given in seconds (readable, independent of the model's frame
rate) and resolved to frames against the model config by `resolve`.
"""

from __future__ import annotations

import dataclasses
import math
import re

from jax import export as jax_export

from soundstorm.runtime.savedmodel.layout import MAX_WARMUP_RECORDS
from soundstorm.config import ConfigError, SoundStormConfig
from soundstorm.decoding import DecodingConfig, paper_schedule
from soundstorm.validation import InputError

# Where jax2tf lowers the decoding loop (jax2tf's native serialization names).
ALL_PLATFORMS = ("cpu", "cuda", "tpu")
# How the (level, iteration) steps run inside the module: one lax.scan, or
# straight-line code. benchmarks/export_loop.py measured both (docs/export.md).
LOOPS = ("scan", "unrolled")
DEFAULT_SIGNATURE = "serving_default"
VARIABLE_DTYPES = ("float32", "bfloat16")
# jax.default_matmul_precision values for the TPU bucket signatures (jax.lax.Precision names).
TPU_MATMUL_PRECISIONS = ("default", "high", "highest")
# XlaCallModule calling-convention versions this JAX can write.
SUPPORTED_CALLING_CONVENTIONS = tuple(range(jax_export.minimum_supported_calling_convention_version,
                                            jax_export.maximum_supported_calling_convention_version
                                            + 1))
_SIGNATURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ExportError(InputError):
    """An export that cannot be written as asked (nothing is left behind)."""


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    model_name: str = "soundstorm"
    # Iterations per level for `serving_default`; None: the paper's 16 then 1 per level.
    level_schedule: tuple[int, ...] | None = None
    # Further generate signatures: (signature name, level schedule) pairs, e.g.
    # ("generate_fast", (8, 1, 1, ...)) for fewer level-1 iterations.
    extra_schedules: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # Longest total length (prompt + generated) one call may ask for: the paper's 30 s.
    max_seconds: float = 30.0
    # Longest voice prompt: the paper prompts with 3 s.
    max_prompt_seconds: float = 3.0
    # Clients pad lengths up to these, so a server compiles a bounded set of shapes.
    bucket_seconds: tuple[float, ...] = (5.0, 10.0, 20.0, 30.0)
    # TPU: also export one signature per bucket (`generate_<frames>`) whose compiled function
    # has static shapes except the batch and carries the TPU converter's alias (docs/tpu.md).
    static_buckets: bool = False
    # The batch sizes a TPU compiles for each bucket: the converter's allowed_batch_sizes and
    # the TPU version's warm-up (export/tpu.py). Powers of two up to 16, as in TF Serving's
    # batching guide; buckets x sizes is the bounded set of TPU programs.
    tpu_batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    # XLA matmul precision of the bucket signatures: "highest" makes a TPU multiply float32
    # in float32 (6 bf16 passes), so TPU tokens follow the CPU's float32 ones; "default" lets it
    # round matmul inputs to bfloat16 (one pass, faster). CPU and GPU ignore it for float32.
    tpu_matmul_precision: str = "highest"
    # Activations and matmuls of every signature ("float32" or "bfloat16"); None: the run's
    # SoundStormConfig.compute_dtype. Logits, softmax and sampling stay float32 (model.py).
    compute_dtype: str | None = None
    platforms: tuple[str, ...] = ALL_PLATFORMS
    loop: str = "scan"
    # How the parameters are stored in variables/. bfloat16 halves the SavedModel (the
    # reference model's 25 MB budget); they are cast back to float32 inside the graph, so
    # only the stored precision changes (docs/export.md measures the cost).
    variables_dtype: str = "float32"
    # XlaCallModule calling convention; None: JAX's current default (10). 9 alone does not
    # reach TF <= 2.19, which also cannot read JAX 0.10's StableHLO (docs/tpu.md, section 5).
    calling_convention_version: int | None = None
    # Warm-up records: one per (bucket, batch size) of every shape-polymorphic generate
    # signature (the TPU bucket signatures get theirs in the TPU version: tpu_batch_sizes).
    warmup_batch_sizes: tuple[int, ...] = (1,)
    # Sampling defaults recorded for clients (per-request inputs of the signature).
    default_temperature: float = 1.0
    default_choice_temperature: float = 4.5

    def __post_init__(self):
        if not _SIGNATURE_NAME.match(self.model_name):
            raise ExportError(f"model_name must be a plain identifier, got {self.model_name!r}")
        unknown = set(self.platforms) - set(ALL_PLATFORMS)
        if not self.platforms or unknown:
            raise ExportError(f"platforms must be a non-empty subset of {ALL_PLATFORMS}, "
                              f"got {self.platforms}")
        if self.variables_dtype not in VARIABLE_DTYPES:
            raise ExportError(f"variables_dtype must be one of {VARIABLE_DTYPES}, got "
                              f"{self.variables_dtype!r}")
        if self.loop not in LOOPS:
            raise ExportError(f"loop must be one of {LOOPS}, got {self.loop!r}")
        if self.calling_convention_version not in (None, *SUPPORTED_CALLING_CONVENTIONS):
            raise ExportError(f"calling_convention_version must be one of "
                              f"{SUPPORTED_CALLING_CONVENTIONS}, got {self.calling_convention_version}")
        names = [name for name, _ in self.extra_schedules]
        for name in names:
            if not _SIGNATURE_NAME.match(name) or name in (DEFAULT_SIGNATURE, "metadata", "logits"):
                raise ExportError(f"extra schedule name {name!r} must be an identifier other "
                                  "than serving_default, metadata and logits")
        if len(set(names)) != len(names):
            raise ExportError(f"extra schedule names repeat: {names}")
        if not (self.max_seconds > 0 and 0 < self.max_prompt_seconds < self.max_seconds):
            raise ExportError("need 0 < max_prompt_seconds < max_seconds, got "
                              f"{self.max_prompt_seconds} and {self.max_seconds}")
        if list(self.bucket_seconds) != sorted(set(self.bucket_seconds)) or not self.bucket_seconds:
            raise ExportError(f"bucket_seconds must increase strictly, got {self.bucket_seconds}")
        sizes = self.tpu_batch_sizes
        if not sizes or list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
            raise ExportError(f"tpu_batch_sizes must increase strictly from >= 1, got {sizes}")
        if self.tpu_matmul_precision not in TPU_MATMUL_PRECISIONS:
            raise ExportError(f"tpu_matmul_precision must be one of {TPU_MATMUL_PRECISIONS}, "
                              f"got {self.tpu_matmul_precision!r}")
        if self.compute_dtype not in (None, "float32", "bfloat16"):
            raise ExportError(f"compute_dtype must be float32 or bfloat16, got "
                              f"{self.compute_dtype!r}")
        if any(size < 1 for size in self.warmup_batch_sizes):
            raise ExportError(f"warmup_batch_sizes must be >= 1, got {self.warmup_batch_sizes}")
        if not (self.default_temperature > 0 and self.default_choice_temperature >= 0):
            raise ExportError("default temperature must be > 0 and choice temperature >= 0")

    def resolve(self, config: SoundStormConfig) -> "ResolvedExport":
        """Frames, buckets and schedules for one model; errors name what does not fit it."""
        if self.compute_dtype is not None:
            config = dataclasses.replace(config, compute_dtype=self.compute_dtype)
        def frames(seconds: float) -> int:
            # Whole semantic tokens: a generate call covers S * frames_per_token frames.
            tokens = math.ceil(round(seconds * config.semantic_rate_hz, 6))
            return tokens * config.frames_per_semantic_token

        max_frames = frames(self.max_seconds)
        max_prompt_frames = round(self.max_prompt_seconds * config.frame_rate_hz)
        buckets = tuple(sorted({min(frames(seconds), max_frames) for seconds in self.bucket_seconds}))
        if buckets[0] <= max_prompt_frames:
            raise ExportError(f"the smallest bucket ({buckets[0]} frames) must be longer than "
                              f"the longest prompt ({max_prompt_frames} frames)")
        if buckets[-1] != max_frames:
            buckets = buckets + (max_frames,)
        schedules = {DEFAULT_SIGNATURE: tuple(self.level_schedule or
                                              paper_schedule(config.num_levels))}
        schedules.update((name, tuple(schedule)) for name, schedule in self.extra_schedules)
        decodings = {}
        for name, schedule in schedules.items():
            if len(schedule) != config.num_levels:
                raise ConfigError(f"schedule {name} has {len(schedule)} levels; the model has "
                                  f"{config.num_levels}")
            passes = sum(schedule)
            decodings[name] = DecodingConfig(
                level_schedule=schedule, scan_unroll=passes if self.loop == "unrolled" else 1)
        static = {f"generate_{size}": size for size in buckets} if self.static_buckets else {}
        records = len(self.warmup_batch_sizes) * len(buckets) * len(decodings)
        tpu_records = len(static) * len(self.tpu_batch_sizes)
        if max(records, tpu_records) > MAX_WARMUP_RECORDS:
            raise ExportError(f"{max(records, tpu_records)} warm-up records; TF Serving reads at "
                              f"most {MAX_WARMUP_RECORDS}: use fewer buckets or batch sizes")
        return ResolvedExport(self, config, max_frames, max_prompt_frames, buckets, decodings,
                              static)


@dataclasses.dataclass(frozen=True)
class ResolvedExport:
    export: ExportConfig
    model: SoundStormConfig
    max_frames: int
    max_prompt_frames: int
    frame_buckets: tuple[int, ...]
    # Generate signatures taking any length up to max_frames: name -> decoding.
    decodings: dict[str, DecodingConfig]
    # TPU bucket signatures, decoding with the default schedule: name -> bucket frames.
    static_signatures: dict[str, int]
