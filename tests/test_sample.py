"""Continuing a held-out corpus utterance: the path from a trained model to a WAV file."""

import jax
import numpy as np
import pytest

from soundstorm.runtime.codec import read_wav
from soundstorm.config import get_preset
from soundstorm.data.loader import SpeechCorpus, pick_prompt
from soundstorm.model import init_params
from soundstorm.apps.evaluation.sample import continue_utterance, write_continuation
from soundstorm.validation import InputError


def test_continuation_keeps_the_prompt_and_writes_playable_audio(tiny_corpus_dir, lyra, tmp_path):
    corpus = SpeechCorpus(tiny_corpus_dir)
    config = corpus.model_config(get_preset("tiny"))
    params = init_params(config, jax.random.key(0))
    examples = corpus.examples("eval_unseen_speakers")
    prompt = pick_prompt(examples, 0)
    assert prompt.speaker == examples[0].speaker and prompt.text != examples[0].text
    continuation = continue_utterance(params, config, lyra, prompt, examples[0], seed=3)
    assert continuation.generated_tokens.shape == examples[0].acoustic_tokens.shape
    assert np.array_equal(continuation.reference_tokens, examples[0].acoustic_tokens)
    assert np.array_equal(continuation.prompt_audio, lyra.decode(prompt.acoustic_tokens))
    figures = write_continuation(continuation, lyra, tmp_path)
    for name in ("prompt", "generated", "reference"):
        samples, rate = read_wav(tmp_path / f"{name}.wav")
        assert rate == 16_000 and samples.dtype == np.int16
        assert len(samples) == len(getattr(continuation, f"{name}_audio"))
    assert (tmp_path / "spectrograms.png").stat().st_size > 10_000
    assert len(figures["token_agreement_per_level"]) == config.num_levels


def test_a_speaker_without_a_second_sentence_cannot_be_prompted(tiny_corpus_dir):
    examples = SpeechCorpus(tiny_corpus_dir).examples("eval_unseen_speakers")
    with pytest.raises(InputError, match="no other sentence"):
        pick_prompt(examples[:1], 0)


def test_the_prompt_goes_in_first_and_only_the_target_frames_come_out(tiny_corpus_dir, lyra,
                                                                        monkeypatch):
    corpus = SpeechCorpus(tiny_corpus_dir)
    config = corpus.model_config(get_preset("tiny"))
    examples = corpus.examples("eval_unseen_speakers")
    target, prompt = examples[0], pick_prompt(examples, 0)
    calls = []

    def fake_generate(params, config, semantic, prompt_tokens, prompt_lengths, lengths, seeds,
                      **kwargs):
        calls.append((semantic, prompt_tokens, prompt_lengths, lengths, seeds))
        # Every frame's codes say which frame it is, so a shifted slice shows.
        frames = np.arange(semantic.shape[1] * config.frames_per_semantic_token)
        return np.broadcast_to(frames[None, :, None] % config.codebook_size,
                               (1, len(frames), config.num_levels)).copy()

    monkeypatch.setattr("soundstorm.apps.evaluation.sample.generate", fake_generate)
    continuation = continue_utterance(None, config, lyra, prompt, target, seed=7)
    (semantic, prompt_tokens, prompt_lengths, lengths, seeds), = calls
    p, t = len(prompt.acoustic_tokens), len(target.acoustic_tokens)
    np.testing.assert_array_equal(semantic[0], np.concatenate([prompt.semantic_tokens,
                                                               target.semantic_tokens]))
    np.testing.assert_array_equal(prompt_tokens[0], prompt.acoustic_tokens)
    assert (prompt_lengths.tolist(), lengths.tolist(), seeds.tolist()) == ([p], [p + t], [7])
    np.testing.assert_array_equal(continuation.generated_tokens[:, 0],
                                  np.arange(p, p + t) % config.codebook_size)
