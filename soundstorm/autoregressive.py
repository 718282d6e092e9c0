"""An autoregressive baseline of SoundStorm's size, for the parallel-decoding comparison.

SoundStorm's claim is speed from parallel decoding: 16 + (Q - 1) forward passes
for any length, where an autoregressive model (AudioLM's acoustic stages) needs
one pass per token, T * Q of them. This module is that baseline, written for the
comparison and nothing else: a decoder-only Transformer with the same depth,
heads, width and feed-forward size as a SoundStorm config (pre-LayerNorm blocks
of causal self-attention and feed-forward, rotary positions; no convolution
module, which a causal decoder would not have), over the frame-major flattened
token sequence (frame t, level q at position t * Q + q), conditioned like
SoundStorm by adding the semantic embedding of each position's frame.

Decoding runs the prompt through once (prefill), then one token per step from a
key-value cache of fixed size (T * Q), in one `lax.fori_loop`: the standard
way to decode a Transformer with fixed shapes in JAX.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from soundstorm.config import SoundStormConfig
from soundstorm.model import apply_rotary, upsample_semantic

_INIT_STDDEV = 0.02


def init_params(config: SoundStormConfig, rng: jax.Array) -> dict:
    c = config
    keys = iter(jax.random.split(rng, 8 + 6 * c.num_layers))

    def normal(*shape, scale=_INIT_STDDEV):
        return scale * jax.random.normal(next(keys), shape, jnp.float32)

    blocks = [{"attention_norm": jnp.ones(c.model_dim), "ff_norm": jnp.ones(c.model_dim),
               "qkv": normal(c.model_dim, 3, c.num_heads, c.head_dim),
               "out": normal(c.num_heads, c.head_dim, c.model_dim),
               "ff_in": normal(c.model_dim, c.ff_dim), "ff_out": normal(c.ff_dim, c.model_dim)}
              for _ in range(c.num_layers)]
    return {"token_embedding": normal(c.num_levels, c.codebook_size + 1, c.model_dim),
            "level_embedding": normal(c.num_levels, c.model_dim),
            "semantic_embedding": normal(c.semantic_vocab_size + 1, c.model_dim),
            "blocks": blocks, "final_norm": jnp.ones(c.model_dim),
            "head": normal(c.num_levels, c.model_dim, c.codebook_size)}


def _norm(x, scale, eps):
    x = x - x.mean(-1, keepdims=True)
    return x * jax.lax.rsqrt((x * x).mean(-1, keepdims=True) + eps) * scale


def _inputs(params, config, semantic_tokens, tokens, positions):
    """Input embeddings at flat `positions` [N]: previous token (BOS at 0), level, semantic."""
    c = config
    flat = tokens.reshape(tokens.shape[0], -1)
    previous = jnp.where(positions > 0, flat[:, jnp.maximum(positions - 1, 0)], c.codebook_size)
    previous_level = jnp.maximum(positions - 1, 0) % c.num_levels
    level = positions % c.num_levels
    frames = positions // c.num_levels
    semantic = upsample_semantic(semantic_tokens, tokens.shape[1],
                                 c.frames_per_semantic_token)[:, frames]
    return (params["token_embedding"][previous_level, previous]
            + params["level_embedding"][level] + params["semantic_embedding"][semantic])


def _rotate(x, positions, base):
    """Rotary embedding of x [B, N, H, D] at absolute `positions` [N]."""
    half = x.shape[-1] // 2
    inverse_frequency = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions[:, None].astype(jnp.float32) * inverse_frequency[None, :]
    sin, cos = jnp.sin(angles)[None, :, None, :], jnp.cos(angles)[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


def _layers(params, config, x, positions, cache, valid_keys):
    """Runs the blocks on x [B, N, D] at `positions`, writing keys/values into `cache`
    (per layer [B, L, H, D] x 2) at those positions and attending over `valid_keys` [N, L]."""
    c = config
    new_cache = []
    for block, (keys, values) in zip(params["blocks"], cache):
        y = _norm(x, block["attention_norm"], c.layer_norm_epsilon)
        q, k, v = jnp.einsum("bnd,dthe->tbnhe", y, block["qkv"])
        q, k = _rotate(q, positions, c.rotary_base), _rotate(k, positions, c.rotary_base)
        keys = jax.lax.dynamic_update_slice_in_dim(keys, k, positions[0], axis=1)
        values = jax.lax.dynamic_update_slice_in_dim(values, v, positions[0], axis=1)
        scores = jnp.einsum("bnhe,blhe->bhnl", q, keys) / jnp.sqrt(jnp.float32(c.head_dim))
        scores = jnp.where(valid_keys[None, None], scores, jnp.finfo(jnp.float32).min)
        attended = jnp.einsum("bhnl,blhe->bnhe", jax.nn.softmax(scores, -1), values)
        x = x + jnp.einsum("bnhe,hed->bnd", attended, block["out"])
        y = _norm(x, block["ff_norm"], c.layer_norm_epsilon)
        x = x + jax.nn.swish(y @ block["ff_in"]) @ block["ff_out"]
        new_cache.append((keys, values))
    return _norm(x, params["final_norm"], c.layer_norm_epsilon), new_cache


def _logits(params, config, hidden, positions):
    return jnp.einsum("bnd,ndk->bnk", hidden, params["head"][positions % config.num_levels])


def empty_cache(config: SoundStormConfig, batch: int, length: int):
    shape = (batch, length, config.num_heads, config.head_dim)
    return [(jnp.zeros(shape), jnp.zeros(shape)) for _ in range(config.num_layers)]


def forward(params, config: SoundStormConfig, semantic_tokens, tokens):
    """Teacher-forced logits [B, T*Q, K] of every position (causal attention)."""
    length = tokens.shape[1] * config.num_levels
    positions = jnp.arange(length)
    x = _inputs(params, config, semantic_tokens, tokens, positions)
    causal = positions[:, None] >= positions[None, :]
    hidden, _ = _layers(params, config, x, positions, empty_cache(config, x.shape[0], length),
                        causal)
    return _logits(params, config, hidden, positions)


@functools.partial(jax.jit, static_argnames=("config", "prompt_frames"))
def generate(params, semantic_tokens, prompt_tokens, seed, temperature, *,
             config: SoundStormConfig, prompt_frames: int):
    """Tokens [B, T, Q]: the prompt's first `prompt_frames` frames, then one token at a time.

    T = S * frames_per_semantic_token; every position past the prompt is one step.
    """
    batch, num_semantic = semantic_tokens.shape
    num_frames = num_semantic * config.frames_per_semantic_token
    length = num_frames * config.num_levels
    start = prompt_frames * config.num_levels
    tokens = jnp.zeros((batch, num_frames, config.num_levels), jnp.int32)
    tokens = tokens.at[:, :prompt_frames].set(prompt_tokens[:, :prompt_frames])
    all_positions = jnp.arange(length)

    # Prefill: the prompt's positions in one pass (their keys and values into the cache).
    positions = all_positions[:max(start, 1)]
    x = _inputs(params, config, semantic_tokens, tokens, positions)
    _, cache = _layers(params, config, x, positions, empty_cache(config, batch, length),
                       positions[:, None] >= all_positions[None, :])

    def step(position, state):
        tokens, cache = state
        here = position[None]
        x = _inputs(params, config, semantic_tokens, tokens, here)
        hidden, cache = _layers(params, config, x, here, cache,
                                all_positions[None, :] <= position)
        logits = _logits(params, config, hidden, here)[:, 0] / temperature
        key = jax.random.fold_in(jax.random.key(seed), position)
        sampled = jax.random.categorical(key, logits).astype(jnp.int32)
        flat = tokens.reshape(batch, -1).at[:, position].set(sampled)
        return flat.reshape(tokens.shape), cache

    # Position 0 of a prompt-less request was "prefilled" with BOS only: it is decoded too.
    tokens, _ = jax.lax.fori_loop(start, length, step, (tokens, cache))
    return tokens
