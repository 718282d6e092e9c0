"""The paper's training masking, checked as statistics over many examples."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundstorm.config import PRESETS
from soundstorm.masking import mask_for_training, masked_cross_entropy

CONFIG = PRESETS["tiny"].replace(num_levels=4)
NUM_EXAMPLES = 4000
NUM_SEMANTIC = 10


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    num_frames = NUM_SEMANTIC * CONFIG.frames_per_semantic_token
    semantic = rng.integers(0, CONFIG.semantic_vocab_size, (NUM_EXAMPLES, NUM_SEMANTIC))
    acoustic = rng.integers(0, CONFIG.codebook_size, (NUM_EXAMPLES, num_frames, CONFIG.num_levels))
    # Half the examples at full length, half padded to 12 frames.
    lengths = np.where(np.arange(NUM_EXAMPLES) % 2 == 0, num_frames, 12)
    return semantic, acoustic, lengths


@pytest.fixture(scope="module")
def masked(batch):
    result = mask_for_training(jax.random.key(0), CONFIG, *map(jnp.asarray, batch),
                               unknown_semantic_prob=0.3)
    return jax.tree_util.tree_map(np.asarray, result)


def within(count, total, probability, sigmas=5):
    """A binomial count within `sigmas` standard deviations of its mean."""
    mean = total * probability
    return abs(count - mean) <= sigmas * math.sqrt(total * probability * (1 - probability))


def test_prompt_boundary_is_uniform_over_the_example(batch, masked):
    _, _, lengths = batch
    for length in (12, 20):
        boundaries = masked.prompt_lengths[lengths == length]
        assert boundaries.min() == 0 and boundaries.max() == length - 1
        counts = np.bincount(boundaries, minlength=length)
        assert all(within(c, len(boundaries), 1 / length) for c in counts), counts


def test_level_is_uniform(masked):
    counts = np.bincount(masked.levels, minlength=CONFIG.num_levels)
    assert all(within(c, NUM_EXAMPLES, 1 / CONFIG.num_levels) for c in counts), counts


def test_level_weights_set_the_odds_of_each_level(batch):
    weights = (3.0, 0.0, 1.0, 0.0)  # levels 1 and 3 never; level 0 three times level 2
    levels = np.asarray(mask_for_training(jax.random.key(2), CONFIG, *map(jnp.asarray, batch),
                                          level_weights=weights).levels)
    counts = np.bincount(levels, minlength=CONFIG.num_levels)
    assert counts[1] == counts[3] == 0, counts
    assert within(counts[0], NUM_EXAMPLES, 0.75) and within(counts[2], NUM_EXAMPLES, 0.25), counts


def test_mask_ratio_is_cosine_of_a_uniform_angle(batch, masked):
    # Per example, the masked share of level-q target frames estimates p = cos(u);
    # E[cos u] = 2/pi and E[cos^2 u] = 1/2 for u ~ U[0, pi/2].
    _, _, lengths = batch
    frames = np.arange(masked.frame_mask.shape[1])[None, :]
    in_target = (frames >= masked.prompt_lengths[:, None]) & (frames < lengths[:, None])
    # Long targets only, so the per-example share is a good estimate of p.
    long = in_target.sum(1) >= 10
    share = (masked.loss_mask & in_target).sum(1)[long] / in_target.sum(1)[long]
    assert abs(share.mean() - 2 / math.pi) < 0.03
    assert share.min() < 0.1 and share.max() > 0.9


def test_prompt_frames_are_never_masked_and_levels_follow_the_scheme(batch, masked):
    _, acoustic, lengths = batch
    frames = np.arange(acoustic.shape[1])[None, :]
    in_prompt = frames < masked.prompt_lengths[:, None]
    in_target = ~in_prompt & (frames < lengths[:, None])
    is_mask = masked.acoustic_inputs == CONFIG.mask_id
    level = masked.levels[:, None, None]
    levels = np.arange(CONFIG.num_levels)[None, None, :]
    assert not is_mask[np.broadcast_to(in_prompt[..., None], is_mask.shape)].any()
    # Coarser levels are always given, finer levels always masked in the target region.
    assert not is_mask[np.broadcast_to(levels < level, is_mask.shape)].any()
    finer_in_target = (levels > level) & in_target[..., None]
    assert is_mask[finer_in_target].all()
    # Level q: masked exactly where the loss is taken; given tokens unchanged.
    level_q_masked = np.take_along_axis(is_mask, level, axis=2)[..., 0]
    np.testing.assert_array_equal(level_q_masked & (frames < lengths[:, None]), masked.loss_mask)
    given = ~is_mask
    np.testing.assert_array_equal(masked.acoustic_inputs[given], acoustic[given])
    np.testing.assert_array_equal(masked.targets,
                                  np.take_along_axis(acoustic, level, axis=2)[..., 0])


def test_padding_never_counts_in_the_loss(batch, masked):
    _, _, lengths = batch
    padding = np.arange(masked.loss_mask.shape[1])[None, :] >= lengths[:, None]
    assert not masked.loss_mask[padding].any()
    np.testing.assert_array_equal(masked.frame_mask, ~padding)


def test_unknown_semantic_replaces_only_the_prompt_region(batch, masked):
    semantic, _, _ = batch
    is_unknown = masked.semantic_tokens == CONFIG.semantic_unknown_id
    hidden = is_unknown.any(1)
    # Examples with t = 0 have no prompt to hide, so the share is a little under 0.3.
    has_prompt = masked.prompt_lengths > 0
    assert within(hidden[has_prompt].sum(), has_prompt.sum(), 0.3)
    starts = np.arange(semantic.shape[1])[None, :] * CONFIG.frames_per_semantic_token
    overlaps_prompt = starts < masked.prompt_lengths[:, None]
    np.testing.assert_array_equal(is_unknown, hidden[:, None] & overlaps_prompt)
    np.testing.assert_array_equal(masked.semantic_tokens[~is_unknown], semantic[~is_unknown])


def test_unknown_semantic_probability_zero_keeps_the_transcript(batch):
    result = mask_for_training(jax.random.key(1), CONFIG, *map(jnp.asarray, batch))
    np.testing.assert_array_equal(result.semantic_tokens, batch[0])


def test_cross_entropy_of_uniform_logits_is_log_codebook_and_ignores_unmasked():
    targets = jnp.array([[1, 2, 3, 4]])
    logits = jnp.zeros((1, 4, 16)).at[0, 3].set(jnp.arange(16.0) * 50)  # frame 3: huge loss
    loss_mask = jnp.array([[True, True, True, False]])
    loss, count = masked_cross_entropy(logits, targets, loss_mask)
    assert count == 3
    np.testing.assert_allclose(loss, math.log(16), rtol=1e-6)
    empty_loss, empty_count = masked_cross_entropy(logits, targets, jnp.zeros_like(loss_mask))
    assert empty_count == 0 and empty_loss == 0


def test_the_loss_of_one_masked_token_is_its_negative_log_likelihood():
    # The mean divides by the count of masked tokens (at least 1, so an empty mask gives 0):
    # with exactly one, the loss is that token's -log p, not half of it.
    logits = jnp.asarray(np.log(np.array([[[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]], np.float32)))
    targets = jnp.asarray([[2, 0]])
    loss, count = masked_cross_entropy(logits, targets, jnp.asarray([[True, False]]))
    assert int(count) == 1
    np.testing.assert_allclose(float(loss), -np.log(0.7), rtol=1e-6)
    loss, count = masked_cross_entropy(logits, targets, jnp.asarray([[False, False]]))
    assert (float(loss), int(count)) == (0.0, 0)
