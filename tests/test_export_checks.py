"""The SavedModel's in-graph input checks, at their boundaries, without exporting anything.

Each limit is tried on both sides: a request exactly at every limit passes, and a
request one step past a limit fails with InvalidArgument naming that limit. (The
tests in test_export.py send bad requests through a real export; these pin every
bound of export/checks.py directly, in eager mode, where an assertion raises at once.)
"""

import numpy as np
import pytest
import tensorflow as tf

from soundstorm.export.checks import bucket_checks, generate_checks, logits_checks
from soundstorm.config import PRESETS

# 12 semantic ids + unknown (12), 16 codes + mask (16), 3 levels, 2 frames per token.
CONFIG = PRESETS["tiny"]
Q, K, UNKNOWN = CONFIG.num_levels, CONFIG.codebook_size, CONFIG.semantic_unknown_id
MAX_FRAMES, MAX_PROMPT_FRAMES = 16, 6


def at_the_limits() -> dict:
    """A valid batch of 2 that touches every limit: the longest input, the longest prompt,
    no prompt, ids 0 and the largest, length 1, prompt = length - 1, junk past the prompt."""
    prompt = np.zeros((2, MAX_PROMPT_FRAMES, Q), np.int32)
    prompt[1, :, 0] = K - 1
    prompt[0, :, 1] = 999  # example 0 has no prompt: its prompt_tokens are junk, not an error
    return {
        "semantic_tokens": np.array([[0] * 8, [UNKNOWN] * 8], np.int32),
        "prompt_tokens": prompt,
        "prompt_lengths": np.array([0, MAX_PROMPT_FRAMES], np.int32),
        "lengths": np.array([1, MAX_FRAMES], np.int32),
        "seeds": np.array([0, 2**31 - 1], np.int32),
        "temperature": np.array([1e-6, 1.0], np.float32),
        "choice_temperature": np.array([0.0, 4.5], np.float32),
    }


def check_generate(**inputs):
    return generate_checks(CONFIG, MAX_FRAMES, MAX_PROMPT_FRAMES,
                           **{name: tf.constant(value) for name, value in inputs.items()})


def changed(request: dict, name: str, index, value) -> dict:
    array = request[name].copy()
    array[index] = value
    return {**request, name: array}


def test_a_request_at_every_limit_passes():
    checks = check_generate(**at_the_limits())
    # One op per check, all returned (the signature runs them before decoding): 7 on the
    # batch, 4 on the shapes, 14 on the values.
    assert len(checks) == 7 + 4 + 14


@pytest.mark.parametrize("change, message", [
    # Values, each one step past its bound.
    (lambda r: changed(r, "semantic_tokens", (0, 3), -1), "semantic_tokens must be >= 0"),
    (lambda r: changed(r, "semantic_tokens", (1, 7), UNKNOWN + 1),
     f"semantic_tokens must be <= {UNKNOWN}"),
    (lambda r: changed(r, "lengths", 0, 0), "lengths must be >= 1"),
    (lambda r: changed(r, "lengths", 1, MAX_FRAMES + 1),
     "lengths must be <= the frames the semantic tokens cover"),
    (lambda r: changed(r, "prompt_lengths", 0, -1), "prompt_lengths must be >= 0"),
    (lambda r: changed(changed(r, "prompt_lengths", 1, MAX_PROMPT_FRAMES + 1), "lengths", 1, 16),
     "prompt_lengths must be <= the frames of prompt_tokens"),
    (lambda r: changed(r, "lengths", 1, MAX_PROMPT_FRAMES), "each prompt must be shorter"),
    (lambda r: changed(r, "prompt_tokens", (1, 5, 2), -1),
     r"prompt_tokens \(within prompt_lengths\) must be >= 0"),
    (lambda r: changed(r, "prompt_tokens", (1, 0, 0), K),
     rf"prompt_tokens \(within prompt_lengths\) must be <= {K - 1}"),
    (lambda r: changed(r, "seeds", 1, -1), "seeds must be >= 0"),
    (lambda r: changed(r, "temperature", 0, 0.0), "temperature must be > 0"),
    (lambda r: changed(r, "temperature", 1, np.inf), "temperature must be finite"),
    (lambda r: changed(r, "temperature", 1, np.nan), "temperature must be finite"),
    (lambda r: changed(r, "choice_temperature", 0, -1e-3), "choice_temperature must be >= 0"),
    (lambda r: changed(r, "choice_temperature", 1, np.nan), "choice_temperature must be finite"),
    # Shapes.
    (lambda r: {**r, "semantic_tokens": np.zeros((2, 9), np.int32)},
     f"too long: semantic_tokens cover more than max_frames = {MAX_FRAMES} frames"),
    (lambda r: {**r, "semantic_tokens": np.zeros((2, 0), np.int32)},
     "semantic_tokens needs at least one token"),
    (lambda r: {**r, "prompt_tokens": np.zeros((2, 0, Q), np.int32),
                "prompt_lengths": np.zeros(2, np.int32)},
     "prompt_tokens needs at least one frame"),
    (lambda r: {**r, "prompt_tokens": np.zeros((2, MAX_PROMPT_FRAMES + 1, Q), np.int32)},
     f"more frames than max_prompt_frames = {MAX_PROMPT_FRAMES} or than the semantic tokens"),
    # A prompt longer than the whole request (5 frames of a 4-frame request).
    (lambda r: {**r, "semantic_tokens": np.zeros((2, 2), np.int32),
                "prompt_tokens": np.zeros((2, 5, Q), np.int32),
                "prompt_lengths": np.zeros(2, np.int32), "lengths": np.ones(2, np.int32)},
     "more frames than max_prompt_frames"),
])
def test_one_step_past_a_limit_is_invalid_argument_naming_it(change, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        check_generate(**change(at_the_limits()))


def test_an_empty_batch_is_invalid_argument():
    with pytest.raises(tf.errors.InvalidArgumentError, match="the batch is empty"):
        check_generate(**{name: value[:0] for name, value in at_the_limits().items()})


@pytest.mark.parametrize("name", ["prompt_tokens", "prompt_lengths", "lengths", "seeds",
                                  "temperature", "choice_temperature"])
def test_every_input_must_have_the_batch_size(name):
    request = at_the_limits()
    request[name] = request[name][:1]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=f"batch sizes differ: {name} and semantic_tokens"):
        check_generate(**request)


def test_a_tpu_bucket_takes_up_to_its_bucket_and_no_more():
    for tokens in (1, 7, 8):  # 16 frames: up to 8 semantic tokens, padded to it in the graph
        assert len(bucket_checks(CONFIG, 16, tf.zeros((1, tokens), tf.int32))) == 1
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"at most 8 semantic tokens \(16 frames\); use a larger bucket"):
        bucket_checks(CONFIG, 16, tf.zeros((1, 9), tf.int32))


def logits_request() -> dict:
    """A valid `logits` batch of 2 at its limits: the longest input, ids 0 and the mask id."""
    acoustic = np.zeros((2, MAX_FRAMES, Q), np.int32)
    acoustic[1] = CONFIG.mask_id
    return {"semantic_tokens": np.array([[0] * 8, [UNKNOWN] * 8], np.int32),
            "acoustic_tokens": acoustic, "lengths": np.array([1, MAX_FRAMES], np.int32),
            "levels": np.array([0, Q - 1], np.int32)}


def check_logits(**inputs):
    return logits_checks(CONFIG, MAX_FRAMES,
                         **{name: tf.constant(value) for name, value in inputs.items()})


def test_a_logits_request_at_every_limit_passes():
    # 4 on the batch, 3 on the shapes, 8 on the values.
    assert len(check_logits(**logits_request())) == 4 + 3 + 8


@pytest.mark.parametrize("change, message", [
    (lambda r: changed(r, "semantic_tokens", (0, 0), -1), "semantic_tokens must be >= 0"),
    (lambda r: changed(r, "semantic_tokens", (1, 0), UNKNOWN + 1),
     f"semantic_tokens must be <= {UNKNOWN}"),
    (lambda r: changed(r, "acoustic_tokens", (0, 0, 0), -1),
     r"acoustic_tokens \(codes or the mask id\) must be >= 0"),
    (lambda r: changed(r, "acoustic_tokens", (1, 3, 2), CONFIG.mask_id + 1),
     rf"acoustic_tokens \(codes or the mask id\) must be <= {CONFIG.mask_id}"),
    (lambda r: changed(r, "lengths", 0, 0), "lengths must be >= 1"),
    (lambda r: changed(r, "lengths", 1, MAX_FRAMES + 1),
     "lengths must be <= the frames of acoustic_tokens"),
    (lambda r: changed(r, "levels", 0, -1), "levels must be >= 0"),
    (lambda r: changed(r, "levels", 1, Q), f"levels must be <= {Q - 1}"),
    (lambda r: {**r, "semantic_tokens": np.zeros((2, 9), np.int32),
                "acoustic_tokens": np.zeros((2, 18, Q), np.int32)},
     f"too long: more than max_frames = {MAX_FRAMES}"),
    (lambda r: {**r, "semantic_tokens": np.zeros((2, 0), np.int32),
                "acoustic_tokens": np.zeros((2, 0, Q), np.int32)},
     "semantic_tokens needs at least one token"),
    (lambda r: {**r, "acoustic_tokens": r["acoustic_tokens"][:, :-1]},
     "acoustic_tokens must have 2 frames per semantic token"),
    (lambda r: {**r, "levels": r["levels"][:1]}, "batch sizes differ: levels and semantic_tokens"),
])
def test_a_logits_request_past_a_limit_is_invalid_argument_naming_it(change, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        check_logits(**change(logits_request()))


def tiled(request: dict, times: int) -> dict:
    """The request's examples repeated: a batch of 2 * times."""
    return {name: np.concatenate([value] * times) for name, value in request.items()}


def first_values_shown(message: str) -> list[int]:
    """The values an assertion's message lists after 'First N elements of x:'."""
    header, _, rest = message.partition("elements of x:\n")
    assert header.rstrip().endswith("First 8"), message
    return [int(token) for token in rest.split("\n")[0].strip("[]").split()]


@pytest.mark.parametrize("name, values", [
    ("semantic_tokens", -np.arange(1, 17).reshape(2, 8)),                # below the bound
    ("semantic_tokens", UNKNOWN + np.arange(1, 17).reshape(2, 8)),       # above it
])
def test_a_range_error_lists_the_first_eight_offending_values_and_no_more(name, values):
    """A bad request of any size is answered with a bounded message: the first 8 values."""
    request = {**at_the_limits(), name: values.astype(np.int32)}
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        check_generate(**request)
    assert first_values_shown(caught.value.message) == list(values.reshape(-1)[:8])


def test_the_prompt_length_error_lists_the_first_eight_prompt_lengths():
    request = tiled(at_the_limits(), 5)
    request["prompt_lengths"] = np.arange(10, dtype=np.int32) % MAX_PROMPT_FRAMES + 1
    request["lengths"] = request["prompt_lengths"].copy()  # prompt == length: not shorter
    with pytest.raises(tf.errors.InvalidArgumentError, match="prompt_lengths < lengths") as caught:
        check_generate(**request)
    assert first_values_shown(caught.value.message) == [1, 2, 3, 4, 5, 6, 1, 2]
