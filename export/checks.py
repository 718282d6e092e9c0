"""Input validation as TensorFlow ops, so it holds wherever the SavedModel runs.

The jax2tf module assumes valid inputs (XLA's gather clamps an out-of-range id
into silent garbage) and its own shape assertions are not reported under
jit_compile or on TPU. These checks run as plain TF ops in front of the compiled
call (which waits on them), so the real TF Serving, our server and an
in-process load all answer a bad request with InvalidArgument naming the
problem. They mirror `soundstorm.decoding.check_decode_inputs`.
"""

from __future__ import annotations

import tensorflow as tf

from soundstorm.config import SoundStormConfig


def _in_range(name: str, values, low, high, where=None, high_text: str | None = None) -> list:
    """Asserts low <= values <= high (only where `where` is True, if given).

    `high_text` describes a bound only known at run time (the value follows in the error).
    """
    if where is not None:
        values = tf.where(where, values, tf.cast(low, values.dtype))
    return [
        tf.debugging.assert_greater_equal(values, tf.cast(low, values.dtype),
                                          message=f"{name} must be >= {low}", summarize=8),
        tf.debugging.assert_less_equal(values, tf.cast(high, values.dtype),
                                       message=f"{name} must be <= {high_text or high}",
                                       summarize=8),
    ]


def _same_batch(**tensors) -> list:
    names = list(tensors)
    batch = tf.shape(tensors[names[0]])[0]
    checks = [tf.debugging.assert_positive(batch, message="the batch is empty")]
    for name in names[1:]:
        checks.append(tf.debugging.assert_equal(
            tf.shape(tensors[name])[0], batch,
            message=f"batch sizes differ: {name} and {names[0]} must have the same first dimension"))
    return checks


def bucket_checks(config: SoundStormConfig, bucket: int, semantic_tokens) -> list:
    """A TPU bucket signature takes at most its bucket (it pads up to it; a longer input
    would need another program, which a TPU fleet must not compile on demand).

    semantic_tokens: int32 [b, s]; the assertion fails (InvalidArgumentError at run time)
    when s > bucket / frames_per_token.
    """
    tokens = bucket // config.frames_per_semantic_token
    return [tf.debugging.assert_less_equal(
        tf.shape(semantic_tokens)[1], tokens,
        message=f"this bucket signature takes at most {tokens} semantic tokens ({bucket} "
                "frames); use a larger bucket's signature or serving_default")]


def generate_checks(config: SoundStormConfig, max_frames: int, max_prompt_frames: int,
                    semantic_tokens, prompt_tokens, prompt_lengths, lengths, seeds,
                    temperature, choice_temperature) -> list:
    """Assertions on the inputs of a generate signature; run them before decoding."""
    checks = _same_batch(semantic_tokens=semantic_tokens, prompt_tokens=prompt_tokens,
                         prompt_lengths=prompt_lengths, lengths=lengths, seeds=seeds,
                         temperature=temperature, choice_temperature=choice_temperature)
    ratio = config.frames_per_semantic_token
    num_frames = tf.shape(semantic_tokens)[1] * ratio
    prompt_frames = tf.shape(prompt_tokens)[1]
    checks += [
        tf.debugging.assert_positive(tf.shape(semantic_tokens)[1],
                                     message="semantic_tokens needs at least one token"),
        tf.debugging.assert_less_equal(
            num_frames, max_frames,
            message=f"too long: semantic_tokens cover more than max_frames = {max_frames} frames "
                    f"({ratio} frames per semantic token); generate longer audio in windows"),
        tf.debugging.assert_positive(
            prompt_frames, message="prompt_tokens needs at least one frame (send prompt_lengths 0 "
                                   "for no prompt)"),
        tf.debugging.assert_less_equal(
            prompt_frames, tf.minimum(num_frames, max_prompt_frames),
            message=f"prompt_tokens has more frames than max_prompt_frames = {max_prompt_frames} "
                    "or than the semantic tokens cover"),
    ]
    checks += _in_range("semantic_tokens", semantic_tokens, 0, config.semantic_unknown_id)
    checks += _in_range("lengths", lengths, 1, num_frames,
                        high_text="the frames the semantic tokens cover")
    checks += _in_range("prompt_lengths", prompt_lengths, 0, prompt_frames,
                        high_text="the frames of prompt_tokens")
    checks.append(tf.debugging.assert_less(
        prompt_lengths, lengths, message="each prompt must be shorter than its total length "
                                         "(prompt_lengths < lengths)", summarize=8))
    in_prompt = tf.range(prompt_frames)[None, :] < prompt_lengths[:, None]
    checks += _in_range("prompt_tokens (within prompt_lengths)", prompt_tokens, 0,
                        config.codebook_size - 1,
                        where=tf.broadcast_to(in_prompt[..., None], tf.shape(prompt_tokens)))
    checks.append(tf.debugging.assert_non_negative(seeds, message="seeds must be >= 0"))
    checks += [
        tf.debugging.assert_all_finite(temperature, message="temperature must be finite"),
        tf.debugging.assert_positive(temperature, message="temperature must be > 0"),
        tf.debugging.assert_all_finite(choice_temperature,
                                       message="choice_temperature must be finite"),
        tf.debugging.assert_non_negative(choice_temperature,
                                         message="choice_temperature must be >= 0"),
    ]
    return checks


def logits_checks(config: SoundStormConfig, max_frames: int, semantic_tokens, acoustic_tokens,
                  lengths, levels) -> list:
    """Assertions on the inputs of the `logits` signature."""
    checks = _same_batch(semantic_tokens=semantic_tokens, acoustic_tokens=acoustic_tokens,
                         lengths=lengths, levels=levels)
    ratio = config.frames_per_semantic_token
    num_frames = tf.shape(semantic_tokens)[1] * ratio
    checks += [
        tf.debugging.assert_positive(tf.shape(semantic_tokens)[1],
                                     message="semantic_tokens needs at least one token"),
        tf.debugging.assert_less_equal(num_frames, max_frames,
                                       message=f"too long: more than max_frames = {max_frames}"),
        tf.debugging.assert_equal(
            tf.shape(acoustic_tokens)[1], num_frames,
            message=f"acoustic_tokens must have {ratio} frames per semantic token"),
    ]
    checks += _in_range("semantic_tokens", semantic_tokens, 0, config.semantic_unknown_id)
    checks += _in_range("acoustic_tokens (codes or the mask id)", acoustic_tokens, 0,
                        config.mask_id)
    checks += _in_range("lengths", lengths, 1, num_frames,
                        high_text="the frames of acoustic_tokens")
    checks += _in_range("levels", levels, 0, config.num_levels - 1)
    return checks
