import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundstorm.config import PRESETS
from soundstorm.decoding import DecodingConfig, generate, masked_after_iteration, paper_schedule
from soundstorm.model import SoundStorm, frame_mask_from_lengths, init_params
from soundstorm.validation import InputError

CONFIG = PRESETS["tiny"]
R = CONFIG.frames_per_semantic_token
# A shorter first-level schedule than the paper's keeps the tests quick.
DECODING = DecodingConfig(level_schedule=(4, 1, 1))


@pytest.fixture(scope="module")
def params():
    return init_params(CONFIG, jax.random.key(3))


def make_request(rng, batch=3, num_semantic=6, prompt_frames=4):
    return dict(
        semantic_tokens=rng.integers(0, CONFIG.semantic_vocab_size, (batch, num_semantic)),
        prompt_tokens=rng.integers(0, CONFIG.codebook_size, (batch, prompt_frames, CONFIG.num_levels)),
        prompt_lengths=rng.integers(0, prompt_frames + 1, (batch,)),
        lengths=rng.integers(prompt_frames + 1, num_semantic * R + 1, (batch,)),
        seeds=rng.integers(0, 2**31, (batch,)),
    )


def run(params, request, **kwargs):
    kwargs.setdefault("decoding", DECODING)
    return generate(params, CONFIG, **request, **kwargs)


def test_paper_schedule_is_16_then_one_pass_per_level():
    assert paper_schedule(12) == (16,) + (1,) * 11
    assert sum(paper_schedule(12)) == 27
    assert DecodingConfig.paper(CONFIG).level_schedule == (16, 1, 1)


def test_cosine_schedule_counts():
    counts = [int(masked_after_iteration(100, 100 - i, i, 16)) for i in range(16)]
    expected = [int(np.floor(100 * np.cos(np.pi / 2 * (i + 1) / 16))) for i in range(15)] + [0]
    assert counts == expected
    # Every iteration reveals at least one token, even when the schedule would not.
    assert int(masked_after_iteration(100, 3, 0, 16)) == 2
    assert int(masked_after_iteration(0, 0, 0, 16)) == 0


def test_output_tokens_are_codes_prompt_is_kept_padding_is_zero(params, rng):
    request = make_request(rng)
    out = run(params, request)
    assert out.shape == (3, 12, CONFIG.num_levels) and out.dtype == np.int32
    frames = np.arange(12)
    for b in range(3):
        p, n = request["prompt_lengths"][b], request["lengths"][b]
        np.testing.assert_array_equal(out[b, :p], request["prompt_tokens"][b, :p])
        assert ((out[b, p:n] >= 0) & (out[b, p:n] < CONFIG.codebook_size)).all()
        assert (out[b, frames >= n] == 0).all()


def test_batch_invariance(params, rng):
    request = make_request(rng, batch=4)
    together = run(params, request)
    for b in range(4):
        alone = run(params, {k: v[b:b + 1] for k, v in request.items()})
        np.testing.assert_array_equal(alone[0], together[b])


def test_padding_invariance(params, rng):
    request = make_request(rng, batch=1, num_semantic=5, prompt_frames=3)
    request["lengths"] = np.array([9])
    alone = run(params, request)
    padded = dict(request)
    padded["semantic_tokens"] = np.concatenate(
        [request["semantic_tokens"], rng.integers(0, CONFIG.semantic_vocab_size, (1, 4))], 1)
    # Junk past the prompt length must not matter either.
    padded["prompt_tokens"] = np.concatenate(
        [request["prompt_tokens"], rng.integers(0, CONFIG.codebook_size, (1, 5, CONFIG.num_levels))], 1)
    padded_out = run(params, padded)
    assert padded_out.shape[1] == 18
    np.testing.assert_array_equal(padded_out[0, :9], alone[0, :9])


def test_seed_decides_the_sample(params, rng):
    request = make_request(rng, batch=1, prompt_frames=1)
    request["prompt_lengths"], request["lengths"] = np.array([1]), np.array([12])
    first, again = run(params, request), run(params, request)
    np.testing.assert_array_equal(first, again)
    other = run(params, dict(request, seeds=request["seeds"] + 1))
    assert (other != first).any()


def test_one_iteration_levels_are_greedy(params, rng):
    request = make_request(rng, batch=2)
    out = run(params, request, decoding=DecodingConfig(level_schedule=(1, 1, 1)))
    # Level 0 in one pass: argmax of the model's logits given the prompt alone.
    frames = np.arange(12)[None, :]
    in_prompt = frames < request["prompt_lengths"][:, None]
    prompt = np.pad(request["prompt_tokens"], ((0, 0), (0, 8), (0, 0)))
    inputs = np.where(in_prompt[..., None], prompt, CONFIG.mask_id)
    mask = frame_mask_from_lengths(jnp.asarray(request["lengths"]), 12)
    logits = SoundStorm(CONFIG).apply({"params": params}, request["semantic_tokens"], inputs,
                                      mask, jnp.zeros(2, jnp.int32))
    target = ~in_prompt & np.asarray(mask)
    np.testing.assert_array_equal(out[..., 0][target], np.argmax(logits, -1)[target])


def test_top_k_one_makes_the_seed_irrelevant(params, rng):
    request = make_request(rng, batch=1)
    outputs = [run(params, dict(request, seeds=np.array([seed])), choice_temperature=0.0,
                   decoding=DecodingConfig(level_schedule=(4, 1, 1), top_k=1))
               for seed in (0, 1, 2)]
    assert all((o == outputs[0]).all() for o in outputs)


def test_scan_unroll_gives_the_same_tokens(params, rng):
    request = make_request(rng)
    unrolled = DecodingConfig(level_schedule=(4, 1, 1), scan_unroll=6)
    np.testing.assert_array_equal(run(params, request), run(params, request, decoding=unrolled))


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(semantic_tokens=r["semantic_tokens"].astype(np.float32)), "integers"),
    (lambda r: r.update(prompt_tokens=r["prompt_tokens"][..., :2]), "3 levels"),
    (lambda r: r["prompt_tokens"].__setitem__((0, 0, 0), CONFIG.codebook_size), "prompt_tokens"),
    (lambda r: r["semantic_tokens"].__setitem__((1, 2), CONFIG.semantic_vocab_size + 1),
     "semantic_tokens must lie"),
    (lambda r: r.update(lengths=np.array([13, 12, 12])), "lengths must lie in \\[1, 12\\]"),
    (lambda r: r.update(lengths=np.array([3, 12, 12])), "prompt must be shorter"),
    (lambda r: r.update(seeds=r["seeds"][:2]), "batch sizes differ"),
    (lambda r: r.update(seeds=np.array([-1, 0, 0])), "seeds"),
    (lambda r: r.update(prompt_tokens=np.zeros((3, 13, 3), np.int32)), "more than the 12 frames"),
])
def test_bad_inputs_raise_clear_errors(params, change, message):
    request = make_request(np.random.default_rng(0))
    request["prompt_lengths"] = np.array([3, 3, 3])
    request["lengths"] = np.array([12, 12, 12])
    change(request)
    with pytest.raises(InputError, match=message):
        run(params, request)


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 0.0}, "temperature must be finite and > 0"),
    ({"choice_temperature": -1.0}, "choice_temperature"),
    ({"temperature": np.ones(2)}, "temperature must be a scalar or have shape"),
    ({"decoding": DecodingConfig(level_schedule=(4, 1))}, "level_schedule has 2 entries"),
])
def test_bad_options_raise_clear_errors(params, kwargs, message):
    with pytest.raises(InputError, match=message):
        run(params, make_request(np.random.default_rng(0)), **kwargs)


@pytest.mark.parametrize("kwargs", [{"level_schedule": (4, 0, 1)}, {"level_schedule": ()},
                                    {"level_schedule": (1,), "top_k": 0}])
def test_bad_decoding_configs_raise(kwargs):
    with pytest.raises(InputError):
        DecodingConfig(**kwargs)
