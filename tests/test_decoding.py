import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundstorm.config import PRESETS
from soundstorm.decoding import (DecodingConfig, check_decode_inputs, cosine_masked_share,
                                 generate, masked_after_iteration, paper_schedule)
from soundstorm.model import SoundStorm, frame_mask_from_lengths, init_params
from soundstorm.validation import InputError

from reference_decoder import DecoderNoise, reference_decode

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


# Input checks first: they are quick, so `pytest -x` (tools/mutation_score.py) stops early
# on a broken check.
@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(semantic_tokens=r["semantic_tokens"].astype(np.float32)), "integers"),
    (lambda r: r.update(prompt_tokens=r["prompt_tokens"][..., :2]), "3 levels"),
    (lambda r: r.update(prompt_tokens=np.concatenate([r["prompt_tokens"]] * 2, axis=2)),
     "3 levels"),
    (lambda r: r["semantic_tokens"].__setitem__((0, 0), -1),
     r"semantic_tokens must lie in \[0, 12\]"),
    (lambda r: r["prompt_tokens"].__setitem__((0, 0, 0), CONFIG.codebook_size),
     r"prompt_tokens \(within prompt_lengths\) must lie in \[0, 15\]"),
    (lambda r: r["prompt_tokens"].__setitem__((2, 2, 1), -1),
     r"prompt_tokens \(within prompt_lengths\) must lie in \[0, 15\]"),
    (lambda r: r["semantic_tokens"].__setitem__((1, 2), CONFIG.semantic_vocab_size + 1),
     "semantic_tokens must lie"),
    (lambda r: r.update(lengths=np.array([13, 12, 12])), "lengths must lie in \\[1, 12\\]"),
    (lambda r: r.update(lengths=np.array([3, 12, 12])), "prompt must be shorter"),
    (lambda r: r.update(lengths=np.array([12, 2, 12])), "prompt must be shorter"),
    (lambda r: r.update(prompt_lengths=np.array([3, -1, 3])),
     r"prompt_lengths must lie in \[0, 4\]"),
    (lambda r: r.update(seeds=r["seeds"][:2]), "batch sizes differ"),
    (lambda r: r.update(seeds=np.array([-1, 0, 0])), r"seeds must lie in \[0, 4294967295\]"),
    (lambda r: r.update(seeds=np.array([0, 2**32, 0])), r"seeds must lie in \[0, 4294967295\]"),
    (lambda r: r.update(prompt_tokens=np.zeros((3, 13, 3), np.int32)),
     "prompt_tokens has 13 frames, more than the 12 frames that 6 semantic tokens cover"),
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
    ({"temperature": -1.0}, "temperature must be finite and > 0"),
    ({"choice_temperature": -1.0}, "choice_temperature"),
    ({"temperature": np.ones(2)}, "temperature must be a scalar or have shape"),
    ({"decoding": DecodingConfig(level_schedule=(4, 1))}, "level_schedule has 2 entries"),
    ({"decoding": DecodingConfig(level_schedule=(4, 1, 1, 1))}, "level_schedule has 4 entries"),
])
def test_bad_options_raise_clear_errors(params, kwargs, message):
    with pytest.raises(InputError, match=message):
        run(params, make_request(np.random.default_rng(0)), **kwargs)


@pytest.mark.parametrize("kwargs", [{"level_schedule": (4, 0, 1)}, {"level_schedule": ()},
                                    {"level_schedule": (1,), "top_k": 0},
                                    {"level_schedule": (1,), "scan_unroll": 0}])
def test_bad_decoding_configs_raise(kwargs):
    with pytest.raises(InputError):
        DecodingConfig(**kwargs)



def test_inputs_at_their_limits_are_accepted(params, rng):
    request = make_request(rng)
    # A prompt array as long as the output, junk (even out of range) past each prompt length.
    request["prompt_tokens"] = rng.integers(0, CONFIG.codebook_size, (3, 12, CONFIG.num_levels))
    request["prompt_lengths"], request["lengths"] = np.array([0, 5, 11]), np.array([1, 12, 12])
    junk = request["prompt_tokens"].copy()
    for b, p in enumerate(request["prompt_lengths"]):
        junk[b, p:] = [-7, 999, CONFIG.mask_id]
    np.testing.assert_array_equal(run(params, dict(request, prompt_tokens=junk)),
                                  run(params, request))


def test_paper_schedule_is_16_then_one_pass_per_level():
    assert paper_schedule(12) == (16,) + (1,) * 11
    assert sum(paper_schedule(12)) == 27
    assert DecodingConfig.paper(CONFIG).level_schedule == (16, 1, 1)
    assert DecodingConfig.paper(CONFIG).num_passes == 18


def test_cosine_schedule_counts():
    # floor(100 cos(pi/2 (i+1)/16)), i = 0..14, then nothing masked after the last iteration.
    shares = cosine_masked_share(np.arange(16), 16)
    counts = [int(masked_after_iteration(100, 100 - i, shares[i])) for i in range(16)]
    assert counts == [99, 98, 95, 92, 88, 83, 77, 70, 63, 55, 47, 38, 29, 19, 9, 0]
    # cos(pi/3) = 1/2 exactly: 9 of 18 stay masked after iteration 2 of 3 (float32's cos says 8).
    assert int(masked_after_iteration(18, 15, cosine_masked_share(1, 3))) == 9
    # Every iteration reveals at least one token, even when the schedule would not.
    assert int(masked_after_iteration(100, 3, shares[0])) == 2
    assert int(masked_after_iteration(100, 1, shares[0])) == 0
    assert int(masked_after_iteration(0, 0, shares[0])) == 0


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


def test_every_uint32_is_a_seed(params, rng):
    request = make_request(rng, batch=2)
    request["seeds"] = np.array([0, 2**32 - 1])
    out = run(params, request)
    np.testing.assert_array_equal(out[1], run(params, {k: v[1:] for k, v in request.items()})[0])


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


def test_top_k_of_the_whole_codebook_or_more_is_plain_sampling(params, rng):
    request = make_request(rng)
    plain = run(params, request)
    for top_k in (CONFIG.codebook_size, CONFIG.codebook_size + 5):
        np.testing.assert_array_equal(
            run(params, request, decoding=DecodingConfig(level_schedule=(4, 1, 1), top_k=top_k)),
            plain)


def test_top_k_keeps_the_k_most_likely_codes_of_each_frame(params, rng):
    # 6 frames and top_k 7 of 16 codes: the filter must count codes, not frames.
    request = make_request(np.random.default_rng(7), batch=2, num_semantic=3, prompt_frames=2)
    schedule = (3, 2, 1)
    out = run(params, request, decoding=DecodingConfig(level_schedule=schedule, top_k=7))
    for b in range(2):
        np.testing.assert_array_equal(out[b], _reference(params, request, b, schedule, top_k=7))


def test_the_defaults_are_maskgit_s_temperatures():
    # MaskGIT's choice temperature 4.5 (Chang et al. 2022), plain sampling at temperature 1.
    for function in (generate, check_decode_inputs):
        defaults = inspect.signature(function).parameters
        assert defaults["temperature"].default == 1.0
        assert defaults["choice_temperature"].default == 4.5


def test_scan_unroll_gives_the_same_tokens(params, rng):
    request = make_request(rng)
    unrolled = DecodingConfig(level_schedule=(4, 1, 1), scan_unroll=6)
    np.testing.assert_array_equal(run(params, request), run(params, request, decoding=unrolled))


_apply = jax.jit(SoundStorm(CONFIG).apply)


def _reference(params, request, b, schedule, *, temperature=1.0, choice_temperature=4.5,
               top_k=None):
    """Example b of `request`, decoded by the independent NumPy reference."""
    semantic = np.asarray(request["semantic_tokens"][b:b + 1])
    num_frames = semantic.shape[1] * R
    valid = (np.arange(num_frames) < request["lengths"][b])[None]

    def logits_fn(tokens, level):
        return _apply({"params": params}, semantic, tokens[None].astype(np.int32), valid,
                      np.array([level], np.int32))[0]

    return reference_decode(
        logits_fn, np.asarray(request["prompt_tokens"][b]), int(request["prompt_lengths"][b]),
        int(request["lengths"][b]), num_frames, schedule, mask_id=CONFIG.mask_id,
        noise=DecoderNoise(request["seeds"][b], CONFIG.codebook_size, num_frames),
        temperature=temperature,
        choice_temperature=choice_temperature, top_k=top_k)


@pytest.mark.parametrize("schedule, options", [
    # Several iterations on several levels: the cosine schedule, the annealed choice
    # noise and the greedy last iteration of every level.
    ((4, 3, 2), {}),
    ((5, 1, 3), {"temperature": 0.7, "choice_temperature": 2.0}),
    ((3, 2, 1), {"top_k": 5}),
    ((1, 1, 1), {}),
])
def test_decoder_equals_the_independent_reference(params, schedule, options):
    # Prompts of 0 to 6 frames, lengths from just past the prompt to the full 18 frames,
    # so that target counts, prompt copying and padding all vary.
    request = make_request(np.random.default_rng(sum(schedule)), batch=4, num_semantic=9,
                           prompt_frames=6)
    request["prompt_lengths"] = np.array([0, 2, 6, 5])
    request["lengths"] = np.array([18, 11, 13, 6])
    out = run(params, request, decoding=DecodingConfig(level_schedule=schedule,
                                                       top_k=options.get("top_k")),
              temperature=options.get("temperature", 1.0),
              choice_temperature=options.get("choice_temperature", 4.5))
    for b in range(4):
        np.testing.assert_array_equal(out[b], _reference(params, request, b, schedule, **options),
                                      err_msg=f"example {b}")
