import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundstorm.config import PRESETS
from soundstorm.model import (ConvModule, SelfAttention, SoundStorm, frame_mask_from_lengths,
                              init_params, upsample_semantic)

CONFIG = PRESETS["tiny"]


@pytest.fixture(scope="module")
def params():
    return init_params(CONFIG, jax.random.key(0))


def random_inputs(rng, batch, num_semantic, config=CONFIG):
    num_frames = num_semantic * config.frames_per_semantic_token
    semantic = rng.integers(0, config.semantic_vocab_size, (batch, num_semantic))
    acoustic = rng.integers(0, config.codebook_size + 1, (batch, num_frames, config.num_levels))
    levels = rng.integers(0, config.num_levels, (batch,))
    return semantic, acoustic, levels


def logits_of(params, semantic, acoustic, lengths, levels, config=CONFIG):
    frame_mask = frame_mask_from_lengths(jnp.asarray(lengths), acoustic.shape[1])
    return np.asarray(SoundStorm(config).apply({"params": params}, semantic, acoustic,
                                               frame_mask, levels))


@pytest.mark.parametrize("ratio", [1, 2, 3])
def test_semantic_tokens_repeat_to_the_frame_rate(ratio):
    semantic = jnp.array([[5, 7, 9]])
    frames = upsample_semantic(semantic, 3 * ratio - 1, ratio)
    assert frames.tolist() == [np.repeat([5, 7, 9], ratio)[:3 * ratio - 1].tolist()]


def test_too_few_semantic_tokens_is_an_error():
    with pytest.raises(ValueError, match="cover 4 frames"):
        upsample_semantic(jnp.zeros((1, 2), jnp.int32), 5, 2)


def test_logits_have_one_row_per_frame_for_the_requested_level(params, rng):
    semantic, acoustic, levels = random_inputs(rng, 2, 5)
    logits = logits_of(params, semantic, acoustic, [10, 7], levels)
    assert logits.shape == (2, 10, CONFIG.codebook_size) and logits.dtype == np.float32


def test_level_head_matches_the_all_levels_head(params, rng):
    semantic, acoustic, levels = random_inputs(rng, 3, 4)
    model = SoundStorm(CONFIG)
    mask = jnp.ones(acoustic.shape[:2], bool)
    hidden = model.apply({"params": params}, semantic, acoustic, mask, method=SoundStorm.encode)
    every = model.apply({"params": params}, hidden, method=SoundStorm.all_level_logits)
    chosen = model.apply({"params": params}, hidden, jnp.asarray(levels),
                         method=SoundStorm.level_logits)
    np.testing.assert_allclose(chosen, np.asarray(every)[np.arange(3), :, levels], atol=1e-5)


def test_each_level_has_its_own_embedding_and_all_are_summed(params, rng):
    # Changing the code of any single level at one frame changes that frame's output.
    semantic, acoustic, levels = random_inputs(rng, 1, 4)
    acoustic[..., :] = 0
    base = logits_of(params, semantic, acoustic, [8], levels)
    for level in range(CONFIG.num_levels):
        changed = acoustic.copy()
        changed[0, 3, level] = 1
        assert not np.allclose(logits_of(params, semantic, changed, [8], levels)[0, 3], base[0, 3])


def test_padding_content_never_reaches_valid_frames(params, rng):
    semantic, acoustic, levels = random_inputs(rng, 2, 6)
    lengths = [7, 12]
    reference = logits_of(params, semantic, acoustic, lengths, levels)
    junk_semantic, junk_acoustic = semantic.copy(), acoustic.copy()
    junk_semantic[0, 4:] = rng.integers(0, CONFIG.semantic_vocab_size, 2)
    junk_acoustic[0, 7:] = rng.integers(0, CONFIG.codebook_size, junk_acoustic[0, 7:].shape)
    changed = logits_of(params, junk_semantic, junk_acoustic, lengths, levels)
    np.testing.assert_allclose(changed[0, :7], reference[0, :7], atol=1e-5)
    np.testing.assert_array_equal(changed[1], reference[1])


def test_padding_amount_never_changes_valid_frames(params, rng):
    semantic, acoustic, levels = random_inputs(rng, 1, 4)
    alone = logits_of(params, semantic, acoustic, [8], levels)
    padded_semantic = np.pad(semantic, ((0, 0), (0, 5)), constant_values=3)
    padded_acoustic = np.pad(acoustic, ((0, 0), (0, 10), (0, 0)), constant_values=7)
    padded = logits_of(params, padded_semantic, padded_acoustic, [8], levels)
    np.testing.assert_allclose(padded[:, :8], alone, atol=1e-5)


@pytest.mark.parametrize("module_class", [ConvModule, SelfAttention])
def test_sublayer_masks_padding_and_the_check_is_sensitive(module_class, rng):
    """Pins the public re-implementations' bug: padding leaking through the convolution."""
    module = module_class(CONFIG)
    x = jnp.asarray(rng.normal(size=(1, 10, CONFIG.model_dim)), jnp.float32)
    junk = x.at[:, 6:].set(100.0)
    mask = frame_mask_from_lengths(jnp.array([6]), 10)
    variables = module.init(jax.random.key(1), x, mask)
    out, out_junk = (module.apply(variables, v, mask) for v in (x, junk))
    np.testing.assert_allclose(out[:, :6], out_junk[:, :6], atol=1e-5)
    # Without the mask the junk does reach the valid frames (frame 5 is within the
    # kernel's and attention's reach), so the assertion above is not vacuous.
    everything = jnp.ones_like(mask)
    assert not np.allclose(module.apply(variables, x, everything)[:, :6],
                           module.apply(variables, junk, everything)[:, :6], atol=1e-3)


def test_bfloat16_compute_stays_close_to_float32(params, rng):
    semantic, acoustic, levels = random_inputs(rng, 2, 4)
    f32 = logits_of(params, semantic, acoustic, [8, 8], levels)
    bf16_config = CONFIG.replace(compute_dtype="bfloat16")
    bf16 = logits_of(params, semantic, acoustic, [8, 8], levels, bf16_config)
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16, f32, atol=0.1)


def test_a_six_block_stack_learns_a_per_frame_lookup_quickly():
    """Pins the non-convergence public re-implementations shipped: in a deep stack
    the branches' shared components buried each frame's own input and training sat
    at the unigram loss. The code of every frame here is a fixed function of its
    semantic token, all acoustic inputs are masked; with LayerScale'd branches 40
    Adam steps bring the loss to ~0.2 nats (measured: ~2.1 with branch scale 1, i.e.
    without LayerScale; a one-block model reaches ~0.4)."""
    import optax
    config = PRESETS["tiny"].replace(num_layers=6, semantic_rate_hz=50)
    rng = np.random.default_rng(0)
    code_of_token = jnp.asarray(rng.integers(0, config.codebook_size, config.semantic_vocab_size))
    model = SoundStorm(config)
    params = init_params(config, jax.random.key(0))
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)
    batch, frames, run = 8, 150, 5
    masked = jnp.full((batch, frames, config.num_levels), config.mask_id)

    @jax.jit
    def step(params, opt_state, semantic):
        def loss_fn(p):
            logits = model.apply({"params": p}, semantic, masked, jnp.ones((batch, frames), bool),
                                 jnp.zeros(batch, jnp.int32))
            log_probs = jax.nn.log_softmax(logits)
            return -jnp.take_along_axis(log_probs, code_of_token[semantic][..., None], -1).mean()
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    for _ in range(40):
        tokens = rng.integers(0, config.semantic_vocab_size, (batch, frames // run))
        params, opt_state, loss = step(params, opt_state, jnp.asarray(np.repeat(tokens, run, 1)))
        losses.append(float(loss))
    assert np.mean(losses[20:]) < 0.25 * np.log(config.codebook_size)


def _scrambled(params, seed):
    """Every parameter replaced by a random draw of its shape (scales near 1, not 0.01), so
    each branch, scale and head moves the output far more than float32 rounding does."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda leaf: jnp.asarray(rng.normal(0.0, 0.5, leaf.shape), leaf.dtype), params)


@pytest.mark.parametrize("seed, num_semantic, lengths", [
    (0, 5, [10, 7]),     # one example padded
    (1, 4, [8, 1]),      # a one-frame example
    (2, 6, [12, 12]),    # no padding, every level's tokens random (mask id included)
])
def test_the_network_equals_an_independent_numpy_forward_pass(params, seed, num_semantic,
                                                               lengths):
    """tests/reference_model.py computes the same network from the papers' description in
    float64, one example and one head at a time: embedding sum, Macaron Conformer blocks
    with LayerScale, rotary attention over valid frames, the convolution module, a head per
    level. The JAX model must give the same logits on every valid frame and level."""
    from reference_model import reference_logits
    config = dataclasses.replace(CONFIG, rotary_base=100.0)  # angles that turn within 12 frames
    scrambled = _scrambled(params, seed)
    rng = np.random.default_rng(seed)
    semantic, acoustic, _ = random_inputs(rng, len(lengths), num_semantic, config)
    frame_mask = frame_mask_from_lengths(jnp.asarray(lengths), acoustic.shape[1])
    model = SoundStorm(config)
    hidden = model.apply({"params": scrambled}, semantic, acoustic, frame_mask,
                         method=SoundStorm.encode)
    logits = np.asarray(model.apply({"params": scrambled}, hidden,
                                    method=SoundStorm.all_level_logits))
    for b, length in enumerate(lengths):
        expected = reference_logits(scrambled, config, semantic[b], acoustic[b], length)
        np.testing.assert_allclose(logits[b, :length], expected[:length], rtol=2e-4, atol=2e-4)


def test_parameter_shapes_follow_the_paper():
    """A table per level with a mask row; semantic ids plus `unknown`; a head per level; the
    heads' initial scale is LeCun's 1/sqrt(fan_in) with fan_in = model_dim."""
    config = dataclasses.replace(CONFIG, model_dim=256)
    fresh = init_params(config, jax.random.key(1))
    Q, K, D = config.num_levels, config.codebook_size, config.model_dim
    assert fresh["acoustic_embedding"].shape == (Q, K + 1, D)
    assert fresh["semantic_embedding"].shape == (config.semantic_vocab_size + 1, D)
    assert fresh["head_kernel"].shape == (Q, D, K) and fresh["head_bias"].shape == (Q, K)
    std = float(np.std(np.asarray(fresh["head_kernel"])))
    assert abs(std - 1 / np.sqrt(D)) < 0.1 / np.sqrt(D), std


def test_each_examples_level_head_equals_that_level_of_all_heads_with_nonzero_biases(params,
                                                                                     rng):
    """level_logits picks one head per example; with scrambled (non-zero) biases it must give
    exactly that level's slice of all_level_logits, bias included."""
    scrambled = _scrambled(params, 5)
    semantic, acoustic, levels = random_inputs(rng, 3, 4)
    frame_mask = frame_mask_from_lengths(jnp.asarray([8, 5, 1]), acoustic.shape[1])
    model = SoundStorm(CONFIG)
    hidden = model.apply({"params": scrambled}, semantic, acoustic, frame_mask,
                         method=SoundStorm.encode)
    every = np.asarray(model.apply({"params": scrambled}, hidden,
                                   method=SoundStorm.all_level_logits))
    picked = np.asarray(model.apply({"params": scrambled}, hidden, jnp.asarray(levels),
                                    method=SoundStorm.level_logits))
    np.testing.assert_allclose(picked, every[np.arange(3), :, levels], rtol=1e-5, atol=1e-5)
