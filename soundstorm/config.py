"""Model and training configuration: the paper's SoundStorm by default, small named presets
for CPU, and the training loop's settings (TrainConfig).

The defaults are the model of Borsos et al. 2023 (arXiv 2305.09636, section 4):
a 12-layer Conformer, 16 heads, width 1024, feed-forward 4096, convolution
kernel 5, rotary position embeddings, about 350M parameters, on 12 RVQ levels
of 1024 codes at 50 frames/s, conditioned on semantic tokens at 25 Hz
(w2v-BERT k-means with 1024 clusters).
"""

from __future__ import annotations

import dataclasses

from soundstorm.protos.status import StatusError


class ConfigError(StatusError, ValueError):
    """A configuration that cannot describe a working model."""


@dataclasses.dataclass(frozen=True)
class SoundStormConfig:
    # Conformer.
    num_layers: int = 12
    num_heads: int = 16
    model_dim: int = 1024
    ff_dim: int = 4096
    conv_kernel_size: int = 5
    # The conformer convolution module widens to `conv_expansion * model_dim`
    # channels before its GLU; 2 (as in Gulati et al. 2020) is what brings the
    # paper's shape to its reported ~350M parameters.
    conv_expansion: int = 2
    rotary_base: float = 10_000.0
    layer_norm_epsilon: float = 1e-5
    # Initial value of the per-channel scale on every residual branch
    # (LayerScale; model.py says why; 0.01 measured against 0.1 and none in
    # docs/training.md). The paper does not say how it initialised.
    layer_scale_init: float = 0.01

    # Codec tokens: `num_levels` RVQ levels of `codebook_size` codes each.
    num_levels: int = 12
    codebook_size: int = 1024
    frame_rate_hz: int = 50

    # Conditioning: semantic tokens, one per `frames_per_semantic_token` frames.
    semantic_vocab_size: int = 1024
    semantic_rate_hz: int = 25

    # "float32" or "bfloat16": the dtype of activations and matmuls.
    # Parameters are always stored in float32.
    compute_dtype: str = "float32"

    def __post_init__(self):
        if not self.layer_scale_init > 0:
            raise ConfigError(f"layer_scale_init must be > 0, got {self.layer_scale_init}")
        positive = ("num_layers", "num_heads", "model_dim", "ff_dim", "conv_kernel_size",
                    "conv_expansion", "num_levels", "codebook_size", "frame_rate_hz",
                    "semantic_vocab_size", "semantic_rate_hz")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.model_dim % self.num_heads:
            raise ConfigError(
                f"model_dim ({self.model_dim}) must be divisible by num_heads ({self.num_heads})")
        if (self.model_dim // self.num_heads) % 2:
            raise ConfigError(
                f"head dimension model_dim/num_heads = {self.model_dim // self.num_heads} "
                "must be even for rotary position embeddings")
        if self.conv_kernel_size % 2 == 0:
            # An even kernel has no centre frame: "same" padding would shift the
            # sequence by half a frame, and a frame would see one more future
            # neighbour than past ones.
            raise ConfigError(f"conv_kernel_size must be odd, got {self.conv_kernel_size}")
        if self.frame_rate_hz % self.semantic_rate_hz:
            raise ConfigError(
                f"frame_rate_hz ({self.frame_rate_hz}) must be a multiple of "
                f"semantic_rate_hz ({self.semantic_rate_hz})")
        if self.compute_dtype not in ("float32", "bfloat16"):
            raise ConfigError(
                f"compute_dtype must be 'float32' or 'bfloat16', got {self.compute_dtype!r}")

    # Derived quantities, never stored, so they cannot disagree with the fields.

    @property
    def frames_per_semantic_token(self) -> int:
        return self.frame_rate_hz // self.semantic_rate_hz

    @property
    def mask_id(self) -> int:
        """Acoustic MASK id: one past the last code, in every level's embedding table."""
        return self.codebook_size

    @property
    def semantic_unknown_id(self) -> int:
        """Semantic id for "no transcript here" (a voice prompt without text)."""
        return self.semantic_vocab_size

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.num_heads

    def replace(self, **changes) -> "SoundStormConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, SoundStormConfig] = {
    # The paper's model (~350M parameters).
    "paper": SoundStormConfig(),
    # The reference model trained on this project's 2-core CPU machines, with
    # the token layout of the default corpus: 16 Lyra levels in pairs (8 x 256,
    # docs/codec.md), phoneme vocabulary v1 (74 symbols) at 50 Hz (docs/data.md).
    "small": SoundStormConfig(
        num_layers=6, num_heads=4, model_dim=256, ff_dim=1024,
        num_levels=8, codebook_size=256, semantic_vocab_size=74, semantic_rate_hz=50),
    # The reference model (MODEL_CARD.md): `small` made narrower and shallower
    # (4.7M parameters) so that a CPU hour buys 2.5x the training steps; at this
    # budget the model is starved of steps, not of capacity (docs/training.md).
    # Token layout of the default corpus with phoneme vocabulary v2 (78 symbols).
    "compact": SoundStormConfig(
        num_layers=4, num_heads=4, model_dim=192, ff_dim=768,
        num_levels=8, codebook_size=256, semantic_vocab_size=78, semantic_rate_hz=50),
    # For tests: compiles and trains in seconds.
    "tiny": SoundStormConfig(
        num_layers=2, num_heads=2, model_dim=32, ff_dim=64, num_levels=3,
        codebook_size=16, semantic_vocab_size=12),
}


def get_preset(name: str) -> SoundStormConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16
    total_steps: int = 10_000
    peak_learning_rate: float = 5e-4
    warmup_steps: int = 500
    # Cosine decay ends at this fraction of the peak.
    final_learning_rate_ratio: float = 0.05
    weight_decay: float = 0.01
    adam_b1: float = 0.9
    adam_b2: float = 0.98
    grad_clip_norm: float = 1.0
    # Share of examples whose prompt-region semantic tokens become `unknown`.
    unknown_semantic_prob: float = 0.1
    # Relative odds of training each RVQ level; None: uniform, the paper's choice.
    # Weighting level 1 up spends more of a short CPU run on what carries the words.
    level_weights: tuple[float, ...] | None = None
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10

    def __post_init__(self):
        for name in ("batch_size", "total_steps", "checkpoint_every", "keep_checkpoints",
                     "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ConfigError(f"warmup_steps must lie in [0, total_steps), got {self.warmup_steps}")
        if self.peak_learning_rate <= 0:
            raise ConfigError(f"peak_learning_rate must be > 0, got {self.peak_learning_rate}")
        if self.level_weights is not None:
            object.__setattr__(self, "level_weights", tuple(float(w) for w in self.level_weights))
            if not self.level_weights or min(self.level_weights) < 0 \
                    or sum(self.level_weights) <= 0:
                raise ConfigError("level_weights must be non-negative with a positive sum, got "
                                  f"{self.level_weights}")
        if not 0 <= self.unknown_semantic_prob <= 1:
            raise ConfigError(
                f"unknown_semantic_prob must lie in [0, 1], got {self.unknown_semantic_prob}")
