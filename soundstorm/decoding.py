"""Confidence-based parallel decoding (SoundStorm section 3.3, MaskGIT's sampler per level).

Levels are decoded coarse to fine. Level q gets `level_schedule[q]` iterations;
each iteration samples every still-masked level-q token, scores it by its
probability plus MaskGIT's annealed Gumbel noise, keeps the most confident and
re-masks the rest so that a cosine share stays masked. The last iteration of a
level commits everything left, greedily (argmax); a level with one iteration is
therefore a single greedy pass.

`decode` is a pure function of (params, inputs, seeds) with fixed shapes and a
trip count fixed by the schedule: the (level, iteration) pairs are unrolled into
a static table and run by one `lax.scan`, so the network appears once in the
compiled program. Randomness is drawn per example and per frame from
(seed, level, iteration, frame), which is what makes an example's output
independent of its batch-mates and of padding.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from soundstorm.config import SoundStormConfig
from soundstorm.model import SoundStorm
from soundstorm.validation import InputError, check_batch, check_range, int_array, per_example


def paper_schedule(num_levels: int, first_level_iterations: int = 16) -> tuple[int, ...]:
    """The paper's schedule: 16 iterations for level 1, one greedy pass for each other level."""
    return (first_level_iterations,) + (1,) * (num_levels - 1)


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
    """Static decoding choices (they shape the compiled program).

    Per-request values (temperature, choice temperature, seeds) are arguments of
    `decode`, so one compiled program serves them all.
    """
    level_schedule: tuple[int, ...]
    # Keep only the k most likely codes when sampling; None samples from all.
    top_k: int | None = None
    # Unroll factor of the iteration scan (1: a loop; the full step count: straight-line code).
    scan_unroll: int = 1

    def __post_init__(self):
        schedule = tuple(self.level_schedule)
        object.__setattr__(self, "level_schedule", schedule)
        if not schedule or any(not isinstance(n, int) or n < 1 for n in schedule):
            raise InputError(
                f"level_schedule needs one positive iteration count per level, got {schedule}")
        if self.top_k is not None and self.top_k < 1:
            raise InputError(f"top_k must be None or >= 1, got {self.top_k}")
        if self.scan_unroll < 1:
            raise InputError(f"scan_unroll must be >= 1, got {self.scan_unroll}")

    @classmethod
    def paper(cls, config: SoundStormConfig, **kwargs) -> "DecodingConfig":
        return cls(level_schedule=paper_schedule(config.num_levels), **kwargs)

    @property
    def num_passes(self) -> int:
        """Forward passes of the network per call."""
        return sum(self.level_schedule)

    def step_table(self) -> dict[str, np.ndarray]:
        """One row per forward pass: its level, its iteration within the level, that level's
        count, and the share of the level's targets that stays masked after it.
        """
        rows = [(level, iteration, count)
                for level, count in enumerate(self.level_schedule)
                for iteration in range(count)]
        level, iteration, count = (np.asarray(column, np.int32) for column in zip(*rows))
        return {"level": level, "iteration": iteration, "level_iterations": count,
                "masked_share": cosine_masked_share(iteration, count)}


def cosine_masked_share(iteration, level_iterations) -> np.ndarray:
    """MaskGIT's cosine schedule, cos(pi/2 (i+1)/n), as float32; 0 after the last iteration.

    Computed here in float64, not in the compiled program: float32's cos(pi/3) is
    0.49999997, which would make floor(18 cos(pi/3)) 8 instead of 9.
    """
    iteration, level_iterations = np.asarray(iteration), np.asarray(level_iterations)
    share = np.cos(np.pi / 2 * (iteration + 1) / level_iterations)
    return np.where(iteration + 1 >= level_iterations, 0.0, share).astype(np.float32)


def masked_after_iteration(num_targets, still_masked, masked_share):
    """How many tokens stay masked after an iteration (MaskGIT, Chang et al. 2022, eq. 3).

    floor(N * masked_share) of the N target tokens (`cosine_masked_share`), capped
    so that every iteration reveals at least one token still masked.
    """
    scheduled = jnp.floor(num_targets * masked_share).astype(jnp.int32)
    return jnp.minimum(scheduled, jnp.maximum(still_masked - 1, 0))


def _frame_keys(seeds, level, iteration, num_frames):
    """Keys [B, T]: a function of (seed, level, iteration, frame) only."""
    def per_example(seed):
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), level), iteration)
        return jax.vmap(lambda frame: jax.random.fold_in(key, frame))(jnp.arange(num_frames))
    return jax.vmap(per_example)(seeds)


def _sample(logits, keys, temperature, top_k, greedy):
    """Samples [B, T] codes from logits [B, T, K]; returns them with their log-probabilities."""
    scaled = logits / temperature[:, None, None]
    if top_k is not None and top_k < logits.shape[-1]:
        kth_best = jax.lax.top_k(scaled, top_k)[0][..., -1:]
        scaled = jnp.where(scaled < kth_best, -jnp.inf, scaled)
    gumbel = jax.vmap(jax.vmap(lambda key: jax.random.gumbel(key, (logits.shape[-1],))))(keys)
    sampled = jnp.where(greedy, jnp.argmax(scaled, axis=-1), jnp.argmax(scaled + gumbel, axis=-1))
    log_probs = jax.nn.log_softmax(scaled, axis=-1)
    return sampled, jnp.take_along_axis(log_probs, sampled[..., None], axis=-1)[..., 0]


@functools.partial(jax.jit, static_argnames=("config", "decoding"))
def decode(params, semantic_tokens, prompt_tokens, prompt_lengths, lengths, seeds,
           temperature, choice_temperature, *, config: SoundStormConfig,
           decoding: DecodingConfig):
    """Generates acoustic tokens [B, T, Q], T = S * frames_per_semantic_token.

    semantic_tokens [B, S]; prompt_tokens [B, P, Q] (P <= T, only the first
    prompt_lengths[b] frames are read); lengths [B] valid frames per example;
    seeds [B]; temperature, choice_temperature [B] floats. Frames before the
    prompt length are copied from the prompt; frames past the length are 0.
    Inputs are assumed valid: `generate` checks them.
    """
    model = SoundStorm(config)
    batch, num_semantic = semantic_tokens.shape
    num_frames = num_semantic * config.frames_per_semantic_token
    frames = jnp.arange(num_frames)[None, :]
    valid = frames < lengths[:, None]
    in_prompt = frames < prompt_lengths[:, None]
    target = valid & ~in_prompt
    num_targets = target.sum(axis=1)

    padded_prompt = jnp.pad(prompt_tokens, ((0, 0), (0, num_frames - prompt_tokens.shape[1]), (0, 0)),
                            constant_values=config.mask_id)
    tokens = jnp.where(in_prompt[..., None], padded_prompt, config.mask_id).astype(jnp.int32)
    level_ids = jnp.arange(config.num_levels)

    def step(tokens, row):
        level, iteration, level_iterations = row["level"], row["iteration"], row["level_iterations"]
        logits = model.apply({"params": params}, semantic_tokens, tokens, valid,
                             jnp.full((batch,), level))
        keys = _frame_keys(seeds, level, iteration, num_frames)
        split_keys = jax.vmap(jax.vmap(jax.random.split))(keys)  # [B, T, 2]
        sample_keys, choice_keys = split_keys[..., 0], split_keys[..., 1]
        last = iteration + 1 >= level_iterations
        sampled, log_prob = _sample(logits, sample_keys, temperature, decoding.top_k, last)

        current = jnp.take_along_axis(tokens, jnp.full((batch, num_frames, 1), level), axis=2)[..., 0]
        still_masked = target & (current == config.mask_id)
        keep_masked = masked_after_iteration(num_targets, still_masked.sum(axis=1),
                                             row["masked_share"])
        annealing = choice_temperature * (1.0 - (iteration + 1) / level_iterations)
        choice_noise = jax.vmap(jax.vmap(lambda key: jax.random.gumbel(key, ())))(choice_keys)
        confidence = log_prob + annealing[:, None] * choice_noise
        # Only still-masked tokens compete; everything else ranks last.
        confidence = jnp.where(still_masked, confidence, jnp.inf)
        rank = jnp.argsort(jnp.argsort(confidence, axis=1), axis=1)
        revealed = still_masked & (rank >= keep_masked[:, None])
        updated = jnp.where(revealed, sampled, current)
        tokens = jnp.where(level_ids == level, updated[..., None], tokens)
        return tokens, None

    table = {name: jnp.asarray(column) for name, column in decoding.step_table().items()}
    tokens, _ = jax.lax.scan(step, tokens, table, unroll=decoding.scan_unroll)
    return jnp.where(valid[..., None], tokens, 0)


def check_decode_inputs(config: SoundStormConfig, semantic_tokens, prompt_tokens, prompt_lengths,
                        lengths, seeds, temperature=1.0, choice_temperature=4.5):
    """Validates concrete decoding inputs; returns them as arrays of the expected dtypes."""
    semantic = int_array("semantic_tokens", semantic_tokens, 2)
    prompt = int_array("prompt_tokens", prompt_tokens, 3)
    prompt_lengths = int_array("prompt_lengths", prompt_lengths, 1)
    lengths = int_array("lengths", lengths, 1)
    seeds = int_array("seeds", seeds, 1)
    batch = check_batch(semantic_tokens=semantic, prompt_tokens=prompt,
                        prompt_lengths=prompt_lengths, lengths=lengths, seeds=seeds)
    num_frames = semantic.shape[1] * config.frames_per_semantic_token
    if prompt.shape[2] != config.num_levels:
        raise InputError(f"prompt_tokens must have {config.num_levels} levels (last axis), "
                         f"got shape {prompt.shape}")
    if prompt.shape[1] > num_frames:
        raise InputError(f"prompt_tokens has {prompt.shape[1]} frames, more than the "
                         f"{num_frames} frames that {semantic.shape[1]} semantic tokens cover")
    check_range("semantic_tokens", semantic, 0, config.semantic_unknown_id)
    check_range("lengths", lengths, 1, num_frames)
    check_range("prompt_lengths", prompt_lengths, 0, prompt.shape[1])
    if (prompt_lengths >= lengths).any():
        raise InputError("each prompt must be shorter than its total length "
                         f"(prompt_lengths {prompt_lengths.tolist()}, lengths {lengths.tolist()})")
    in_prompt = np.arange(prompt.shape[1])[None, :] < prompt_lengths[:, None]
    check_range("prompt_tokens (within prompt_lengths)", prompt, 0, config.codebook_size - 1,
                where=np.broadcast_to(in_prompt[..., None], prompt.shape))
    check_range("seeds", seeds, 0, 2**32 - 1)
    temperature = per_example("temperature", temperature, batch, np.float32)
    choice_temperature = per_example("choice_temperature", choice_temperature, batch, np.float32)
    if not (np.isfinite(temperature).all() and (temperature > 0).all()):
        raise InputError(f"temperature must be finite and > 0, got {temperature.tolist()}")
    if not (np.isfinite(choice_temperature).all() and (choice_temperature >= 0).all()):
        raise InputError(f"choice_temperature must be finite and >= 0, got {choice_temperature.tolist()}")
    return (semantic.astype(np.int32), prompt.astype(np.int32), prompt_lengths.astype(np.int32),
            lengths.astype(np.int32), seeds.astype(np.uint32), temperature, choice_temperature)


def generate(params, config: SoundStormConfig, semantic_tokens, prompt_tokens, prompt_lengths,
             lengths, seeds, *, temperature=1.0, choice_temperature=4.5,
             decoding: DecodingConfig | None = None) -> np.ndarray:
    """Checked entry point to `decode`; returns acoustic tokens [B, T, Q] as numpy.

    temperature and choice_temperature (MaskGIT's default 4.5) are scalars or per example.
    """
    decoding = decoding or DecodingConfig.paper(config)
    if len(decoding.level_schedule) != config.num_levels:
        raise InputError(f"level_schedule has {len(decoding.level_schedule)} entries for a model "
                         f"with {config.num_levels} levels")
    inputs = check_decode_inputs(config, semantic_tokens, prompt_tokens, prompt_lengths,
                                 lengths, seeds, temperature, choice_temperature)
    return np.asarray(decode(params, *inputs, config=config, decoding=decoding))
