"""The SoundStorm network: a bidirectional Conformer over codec frames.

One attention position per codec frame, whatever the number of RVQ levels: the
embeddings of all levels of a frame are summed, and the semantic-token embedding
(repeated up to the frame rate) is added. One output head per level; callers ask
for the logits of one level per example, so decoding never pays for the others.

Padding frames (those past an example's length) are kept out of everything a
valid frame sees: they are masked out of attention keys and zeroed before the
depthwise convolution, so a valid frame's output does not depend on what the
padding holds or on how much of it there is.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from soundstorm.config import SoundStormConfig

_embedding_init = nn.initializers.normal(stddev=0.02)


def upsample_semantic(semantic_tokens: jax.Array, num_frames: int, frames_per_token: int):
    """[B, S] semantic tokens -> [B, num_frames], each token repeated to the frame rate."""
    batch, num_semantic = semantic_tokens.shape
    if num_semantic * frames_per_token < num_frames:
        raise ValueError(
            f"{num_semantic} semantic tokens cover {num_semantic * frames_per_token} frames "
            f"at {frames_per_token} frames per token, fewer than the {num_frames} acoustic frames")
    # Broadcast-and-reshape rather than jnp.repeat: it keeps the shape
    # arithmetic simple for symbolic (polymorphic) export shapes.
    repeated = jnp.broadcast_to(semantic_tokens[:, :, None],
                                (batch, num_semantic, frames_per_token))
    return repeated.reshape(batch, num_semantic * frames_per_token)[:, :num_frames]


def apply_rotary(x: jax.Array, base: float) -> jax.Array:
    """Rotary position embedding (Su et al. 2021) on [B, T, H, Dh], positions 0..T-1."""
    num_frames, head_dim = x.shape[1], x.shape[-1]
    half = head_dim // 2
    inverse_frequency = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = jnp.arange(num_frames, dtype=jnp.float32)[:, None] * inverse_frequency[None, :]
    sin = jnp.sin(angles)[None, :, None, :].astype(x.dtype)
    cos = jnp.cos(angles)[None, :, None, :].astype(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


class FeedForward(nn.Module):
    config: SoundStormConfig

    @nn.compact
    def __call__(self, x):
        c = self.config
        y = nn.LayerNorm(epsilon=c.layer_norm_epsilon, dtype=c.compute_dtype)(x)
        y = nn.Dense(c.ff_dim, dtype=c.compute_dtype)(y)
        y = nn.swish(y)
        return nn.Dense(c.model_dim, dtype=c.compute_dtype)(y)


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention with rotary positions and key padding mask."""
    config: SoundStormConfig

    @nn.compact
    def __call__(self, x, frame_mask):
        c = self.config
        y = nn.LayerNorm(epsilon=c.layer_norm_epsilon, dtype=c.compute_dtype)(x)
        # Plain einsums, not jax.nn.dot_product_attention: that may pick a cuDNN
        # kernel on GPU, a custom call that jax2tf cannot serialize.
        projection = lambda name: nn.DenseGeneral((c.num_heads, c.head_dim),
                                                  dtype=c.compute_dtype, name=name)(y)
        query = apply_rotary(projection("query"), c.rotary_base)
        key = apply_rotary(projection("key"), c.rotary_base)
        value = projection("value")
        scores = jnp.einsum("bqhd,bkhd->bhqk", query, key).astype(jnp.float32)
        scores = scores / jnp.sqrt(jnp.float32(c.head_dim))
        # finfo.min, not -inf: a fully padded example must give finite numbers.
        scores = jnp.where(frame_mask[:, None, None, :], scores, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(scores, axis=-1).astype(c.compute_dtype)
        # Heads-major value and output ([B, H, T, Dh]): XLA's CPU dot is 3x faster in this
        # layout than writing [B, T, H, Dh] directly (46 against 16 ms a layer at 1,500
        # frames; docs/benchmarks.md); the two transposes copy only [T, model_dim].
        attended = jnp.einsum("bhqk,bhkd->bhqd", weights, value.transpose(0, 2, 1, 3))
        return nn.DenseGeneral(c.model_dim, axis=(-2, -1), dtype=c.compute_dtype,
                               name="out")(attended.transpose(0, 2, 1, 3))


class DepthwiseConv1D(nn.Module):
    """Depthwise 1-D convolution over frames, "SAME" padding: [B, T, C] -> [B, T, C].

    The parameters are flax's nn.Conv(C, feature_group_count=C) ones (kernel [K, 1, C],
    bias [C], the same initialisers), so checkpoints of either load into the other;
    the output is the same sum, written as K shifted multiply-adds. Why: XLA's CPU
    backend runs a grouped convolution of this shape as a generic convolution,
    4.8 ms against 0.3 ms for the shifted sum at 250 frames x 384 channels (the
    compact preset: a quarter of its forward pass; docs/benchmarks.md).
    """
    features: int
    kernel_size: int
    dtype: str = "float32"

    @nn.compact
    def __call__(self, y):
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (self.kernel_size, 1, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        y, kernel = y.astype(self.dtype), kernel.astype(self.dtype)
        # "SAME": the output frame t sees inputs t - low .. t + high.
        low = (self.kernel_size - 1) // 2
        high = self.kernel_size - 1 - low
        num_frames = y.shape[1]
        padded = jnp.pad(y, ((0, 0), (low, high), (0, 0)))
        out = padded[:, 0:num_frames] * kernel[0, 0]
        for offset in range(1, self.kernel_size):
            out = out + jax.lax.slice_in_dim(padded, offset, offset + num_frames, axis=1) \
                * kernel[offset, 0]
        return out + bias.astype(self.dtype)


class ConvModule(nn.Module):
    """Conformer convolution module: pointwise + GLU, depthwise conv, norm, swish, pointwise.

    LayerNorm stands where Gulati et al. have BatchNorm: batch statistics would
    make one example's output depend on its batch-mates and on their padding.
    """
    config: SoundStormConfig

    @nn.compact
    def __call__(self, x, frame_mask):
        c = self.config
        inner = c.conv_expansion * c.model_dim
        y = nn.LayerNorm(epsilon=c.layer_norm_epsilon, dtype=c.compute_dtype)(x)
        y = nn.glu(nn.Dense(2 * inner, dtype=c.compute_dtype)(y), axis=-1)
        # Zero the padding so that it cannot leak into valid frames through the
        # kernel's reach: a valid frame next to the padding then sees exactly
        # what it would see at the end of an unpadded sequence.
        y = jnp.where(frame_mask[..., None], y, 0)
        y = DepthwiseConv1D(inner, c.conv_kernel_size, dtype=c.compute_dtype,
                            name="depthwise")(y)
        y = nn.LayerNorm(epsilon=c.layer_norm_epsilon, dtype=c.compute_dtype)(y)
        y = nn.swish(y)
        return nn.Dense(c.model_dim, dtype=c.compute_dtype)(y)


class LayerScale(nn.Module):
    """A learnt per-channel scale on a residual branch, starting small (Touvron et al. 2021).

    Without it the blocks' branches, near-uniform attention above all, add
    components shared by every frame that bury each frame's own input: in the
    6-block `small` preset the hidden states of different frames were 93% the
    same at initialisation, the gradient reaching the semantic embedding was 50x
    smaller than in a 1-block model, and training sat at the unigram loss.
    Small branch scales let a frame's input through while the branches learn.
    """
    config: SoundStormConfig

    @nn.compact
    def __call__(self, x):
        c = self.config
        scale = self.param("scale", nn.initializers.constant(c.layer_scale_init), (c.model_dim,))
        return x * scale.astype(x.dtype)


class ConformerBlock(nn.Module):
    """Macaron Conformer block: half FF, self-attention, convolution, half FF, final norm."""
    config: SoundStormConfig

    @nn.compact
    def __call__(self, x, frame_mask):
        c = self.config
        x = x + 0.5 * LayerScale(c, name="ff_in_scale")(FeedForward(c, name="ff_in")(x))
        x = x + LayerScale(c, name="attention_scale")(
            SelfAttention(c, name="attention")(x, frame_mask))
        x = x + LayerScale(c, name="conv_scale")(ConvModule(c, name="conv")(x, frame_mask))
        x = x + 0.5 * LayerScale(c, name="ff_out_scale")(FeedForward(c, name="ff_out")(x))
        return nn.LayerNorm(epsilon=c.layer_norm_epsilon, dtype=c.compute_dtype,
                            name="final_norm")(x)


class SoundStorm(nn.Module):
    """Inputs: semantic tokens [B, S], acoustic tokens [B, T, Q] (codes or mask_id),
    frame mask [B, T] (True on valid frames) and the level to predict per example [B].
    Output: float32 logits [B, T, codebook_size] of each example's level.
    """
    config: SoundStormConfig

    def setup(self):
        c = self.config
        # One table per level, each with a MASK row (id codebook_size), stored
        # as one array so that all levels embed in a single gather.
        self.acoustic_embedding = self.param(
            "acoustic_embedding", _embedding_init,
            (c.num_levels, c.codebook_size + 1, c.model_dim))
        # semantic_vocab_size ordinary ids plus the `unknown` id.
        self.semantic_embedding = self.param(
            "semantic_embedding", _embedding_init, (c.semantic_vocab_size + 1, c.model_dim))
        self.blocks = [ConformerBlock(c, name=f"block_{i}") for i in range(c.num_layers)]
        self.head_kernel = self.param(
            "head_kernel", nn.initializers.lecun_normal(batch_axis=(0,)),
            (c.num_levels, c.model_dim, c.codebook_size))
        self.head_bias = self.param(
            "head_bias", nn.initializers.zeros, (c.num_levels, c.codebook_size))

    def encode(self, semantic_tokens, acoustic_tokens, frame_mask):
        """Hidden states [B, T, model_dim] of the Conformer."""
        c = self.config
        num_frames = acoustic_tokens.shape[1]
        level_index = jnp.arange(c.num_levels)[None, None, :]
        frame_embedding = self.acoustic_embedding[level_index, acoustic_tokens].sum(axis=2)
        semantic = upsample_semantic(semantic_tokens, num_frames, c.frames_per_semantic_token)
        x = (frame_embedding + self.semantic_embedding[semantic]).astype(c.compute_dtype)
        for block in self.blocks:
            x = block(x, frame_mask)
        return x

    def level_logits(self, hidden, levels):
        """Logits [B, T, K] of level `levels[b]` for example b; only those heads are computed."""
        kernel = self.head_kernel[levels].astype(hidden.dtype)  # [B, D, K]
        logits = jnp.einsum("btd,bdk->btk", hidden, kernel)
        return logits.astype(jnp.float32) + self.head_bias[levels][:, None, :]

    def all_level_logits(self, hidden):
        """Logits [B, T, Q, K] of every level (for parity checks and analysis)."""
        logits = jnp.einsum("btd,qdk->btqk", hidden, self.head_kernel.astype(hidden.dtype))
        return logits.astype(jnp.float32) + self.head_bias

    def __call__(self, semantic_tokens, acoustic_tokens, frame_mask, levels):
        hidden = self.encode(semantic_tokens, acoustic_tokens, frame_mask)
        return self.level_logits(hidden, levels)


def frame_mask_from_lengths(lengths: jax.Array, num_frames: int) -> jax.Array:
    """[B] lengths -> [B, num_frames] bool, True on frames before each length."""
    return jnp.arange(num_frames)[None, :] < lengths[:, None]


def init_params(config: SoundStormConfig, rng: jax.Array, num_frames: int = 8):
    """Fresh parameters for `config` (their shapes do not depend on num_frames)."""
    semantic = jnp.zeros((1, -(-num_frames // config.frames_per_semantic_token)), jnp.int32)
    acoustic = jnp.zeros((1, num_frames, config.num_levels), jnp.int32)
    frame_mask = jnp.ones((1, num_frames), bool)
    levels = jnp.zeros((1,), jnp.int32)
    return SoundStorm(config).init(rng, semantic, acoustic, frame_mask, levels)["params"]


def param_count(config: SoundStormConfig) -> int:
    """Number of parameters, from shapes alone (jax.eval_shape allocates nothing)."""
    shapes = jax.eval_shape(lambda rng: init_params(config, rng), jax.random.key(0))
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(shapes))
