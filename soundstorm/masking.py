"""SoundStorm's training masking (Borsos et al. 2023, section 3.2), exactly.

For each example of length T:
  * a prompt boundary t ~ U{0..T-1}: frames before t are never masked;
  * a level q ~ U{1..Q} (0-based here: U{0..Q-1});
  * a mask ratio p = cos(u), u ~ U[0, pi/2];
  * level-q tokens at frames >= t are masked with probability p, every level
    finer than q is masked at frames >= t, levels coarser than q are given;
  * the loss is the cross-entropy of the masked level-q tokens only.
On top, with probability `unknown_semantic_prob`, the semantic tokens that
overlap the prompt region become the `unknown` id, so that at inference a voice
prompt without a transcript is a situation the model has seen.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from soundstorm.config import SoundStormConfig


class MaskedBatch(NamedTuple):
    semantic_tokens: jax.Array   # [B, S], prompt region possibly `unknown`
    acoustic_inputs: jax.Array   # [B, T, Q], masked positions hold mask_id
    frame_mask: jax.Array        # [B, T] bool, True on valid (non-padding) frames
    levels: jax.Array            # [B] int, the level q each example is trained on
    targets: jax.Array           # [B, T] int, the true level-q tokens
    loss_mask: jax.Array         # [B, T] bool, masked level-q tokens on valid frames
    prompt_lengths: jax.Array    # [B] int, the prompt boundary t


def _mask_one(rng, config: SoundStormConfig, semantic, acoustic, length,
              unknown_semantic_prob, level_weights):
    num_frames, num_levels = acoustic.shape
    boundary_key, level_key, ratio_key, token_key, unknown_key = jax.random.split(rng, 5)
    frames = jnp.arange(num_frames)
    valid = frames < length

    prompt_length = jax.random.randint(boundary_key, (), 0, length)
    if level_weights is None:
        level = jax.random.randint(level_key, (), 0, num_levels)
    else:
        level = jax.random.choice(level_key, num_levels, p=jnp.asarray(level_weights)
                                  / sum(level_weights))
    mask_ratio = jnp.cos(jax.random.uniform(ratio_key, (), maxval=jnp.pi / 2))

    in_target = valid & (frames >= prompt_length)
    level_q_masked = in_target & (jax.random.uniform(token_key, (num_frames,)) < mask_ratio)
    levels = jnp.arange(num_levels)[None, :]
    masked = ((levels == level) & level_q_masked[:, None]) | ((levels > level) & in_target[:, None])
    acoustic_inputs = jnp.where(masked, config.mask_id, acoustic)

    # A semantic token covers frames [s*r, (s+1)*r): it belongs to the prompt
    # region if any of its frames does.
    semantic_starts = jnp.arange(semantic.shape[0]) * config.frames_per_semantic_token
    hide_transcript = jax.random.bernoulli(unknown_key, unknown_semantic_prob)
    semantic = jnp.where(hide_transcript & (semantic_starts < prompt_length),
                         config.semantic_unknown_id, semantic)

    return MaskedBatch(
        semantic_tokens=semantic,
        acoustic_inputs=acoustic_inputs,
        frame_mask=valid,
        levels=level,
        targets=acoustic[:, level],
        loss_mask=level_q_masked,
        prompt_lengths=prompt_length,
    )


def mask_for_training(rng: jax.Array, config: SoundStormConfig, semantic_tokens: jax.Array,
                      acoustic_tokens: jax.Array, lengths: jax.Array,
                      unknown_semantic_prob: float = 0.0,
                      level_weights: tuple[float, ...] | None = None) -> MaskedBatch:
    """Masks a batch: semantic [B, S], acoustic [B, T, Q], lengths [B] (each >= 1).

    `level_weights`: relative odds of training each level (one per level); None
    draws levels uniformly, as the paper does.
    """
    keys = jax.random.split(rng, acoustic_tokens.shape[0])
    return jax.vmap(_mask_one, in_axes=(0, None, 0, 0, 0, None, None))(
        keys, config, semantic_tokens, acoustic_tokens, lengths, unknown_semantic_prob,
        level_weights)


def masked_cross_entropy(logits: jax.Array, targets: jax.Array, loss_mask: jax.Array):
    """Mean cross-entropy over the masked tokens of the whole batch, and their count.

    Averaged over tokens, not examples, so a long example weighs by its length
    and an example with nothing masked adds nothing (instead of a 0/0).
    """
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    token_nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    count = loss_mask.sum()
    loss = jnp.where(loss_mask, token_nll, 0.0).sum() / jnp.maximum(count, 1)
    return loss, count
