"""The autoregressive baseline: its cached one-token steps are the causal forward pass."""

import jax
import jax.numpy as jnp
import numpy as np

from soundstorm import autoregressive as ar
from soundstorm.config import PRESETS

CONFIG = PRESETS["tiny"]


def test_cached_steps_give_the_logits_of_the_full_causal_pass(rng):
    params = ar.init_params(CONFIG, jax.random.key(0))
    semantic = jnp.asarray(rng.integers(0, CONFIG.semantic_vocab_size + 1, (2, 3)))
    tokens = jnp.asarray(rng.integers(0, CONFIG.codebook_size, (2, 6, CONFIG.num_levels)))
    full = ar.forward(params, CONFIG, semantic, tokens)
    length = 6 * CONFIG.num_levels
    cache, every = ar.empty_cache(CONFIG, 2, length), jnp.arange(length)
    for position in range(length):
        here = jnp.array([position])
        x = ar._inputs(params, CONFIG, semantic, tokens, here)
        hidden, cache = ar._layers(params, CONFIG, x, here, cache, every[None, :] <= position)
        step = ar._logits(params, CONFIG, hidden, here)[:, 0]
        np.testing.assert_allclose(step, full[:, position], rtol=1e-4, atol=1e-5)


def test_generation_keeps_the_prompt_and_is_a_function_of_the_seed(rng):
    params = ar.init_params(CONFIG, jax.random.key(1))
    semantic = jnp.asarray(rng.integers(0, CONFIG.semantic_vocab_size, (1, 4)))
    prompt = jnp.asarray(rng.integers(0, CONFIG.codebook_size, (1, 3, CONFIG.num_levels)))
    run = lambda seed: np.asarray(ar.generate(params, semantic, prompt, seed, 1.0, config=CONFIG,
                                              prompt_frames=3))
    first = run(0)
    assert first.shape == (1, 8, CONFIG.num_levels)
    np.testing.assert_array_equal(first[:, :3], prompt)
    assert ((first >= 0) & (first < CONFIG.codebook_size)).all()
    np.testing.assert_array_equal(run(0), first)
    assert not np.array_equal(run(1)[:, 3:], first[:, 3:])
