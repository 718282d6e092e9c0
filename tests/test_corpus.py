"""The corpus builder: splits, alignment, determinism, resume; and the training loader."""

import collections
import json

import numpy as np
import pytest

from soundstorm.runtime.frontend import get_speaker
from soundstorm.config import ConfigError, get_preset
from soundstorm.apps.corpus.build import (EVALUATION_VOICES, TRAINING_VOICES, CorpusConfig, build_corpus,
                                    plan)
from soundstorm.apps.corpus.coverage import coverage
from soundstorm.data.loader import SpeechCorpus, training_batches, unigram_entropy
from soundstorm.train import check_batch_inputs
from soundstorm.validation import InputError
from tests.conftest import TINY_CORPUS


def _shard_arrays(directory):
    arrays = {}
    for path in sorted(directory.glob("*.npz")):
        with np.load(path) as shard:
            arrays[path.name] = {name: shard[name] for name in shard.files}
    return arrays


def _assert_same_shards(first_dir, second_dir):
    first, second = _shard_arrays(first_dir), _shard_arrays(second_dir)
    assert first.keys() == second.keys()
    for name in first:
        for field in first[name]:
            assert np.array_equal(first[name][field], second[name][field]), (name, field)


def test_held_out_speakers_and_sentences_never_reach_training():
    jobs = plan(CorpusConfig(**TINY_CORPUS))
    train_speakers = {job.speaker for job in jobs["train"]}
    train_texts = {job.text for job in jobs["train"]}
    assert len(jobs["train"]) == 3 * 2
    assert len(jobs["eval_seen_speakers"]) == 2 * 2
    assert len(jobs["eval_unseen_speakers"]) == 2 * 1
    assert {job.speaker for job in jobs["eval_seen_speakers"]} == train_speakers
    assert not {job.speaker for job in jobs["eval_unseen_speakers"]} & train_speakers
    for split in ("eval_seen_speakers", "eval_unseen_speakers"):
        assert not {job.text for job in jobs[split]} & train_texts
    # Held-out sentences do not move when the corpus grows.
    bigger = plan(CorpusConfig(**{**TINY_CORPUS, "num_sentences": 30}))
    assert ({job.text for job in bigger["eval_unseen_speakers"]}
            == {job.text for job in jobs["eval_unseen_speakers"]})


def test_the_default_corpus_plan_holds_speakers_and_variants_out():
    config = CorpusConfig()
    jobs = plan(config)
    train_speakers = {job.speaker for job in jobs["train"]}
    unseen = {job.speaker for job in jobs["eval_unseen_speakers"]}
    assert len(train_speakers) == config.num_speakers >= 400  # hundreds of voices
    assert len(unseen) == config.num_heldout_speakers and not unseen & train_speakers
    variant = lambda name: get_speaker(name).variant
    train_variants = {variant(name) for name in train_speakers}
    new_variants = {variant(name) for name in unseen} - train_variants
    assert len(new_variants) == config.num_heldout_variants  # held-out variants among them
    assert len({variant(name) for name in unseen} & train_variants) > 0  # and known ones anew
    assert {get_speaker(name).voice for name in train_speakers} == set(TRAINING_VOICES)
    assert {get_speaker(name).voice for name in unseen} <= set(EVALUATION_VOICES)
    for split in ("eval_seen_speakers", "eval_unseen_speakers"):
        assert len(jobs[split]) == config.num_heldout_sentences
        assert not {job.text for job in jobs[split]} & {job.text for job in jobs["train"]}
        # Every evaluation speaker says two sentences or more: one prompts the other.
        said = collections.Counter(job.speaker for job in jobs[split])
        assert min(said.values()) >= 2
    assert len({job.text for job in jobs["train"]}) == config.num_sentences


def test_examples_align_semantic_and_codec_tokens(tiny_corpus_dir):
    corpus = SpeechCorpus(tiny_corpus_dir)
    manifest = corpus.manifest
    assert manifest["complete"] and manifest["splits"]["train"]["examples"] == 6
    for split in manifest["splits"]:
        examples = corpus.examples(split)
        assert len(examples) == manifest["splits"][split]["examples"]
        for example in examples:
            assert len(example.acoustic_tokens) == len(example.semantic_tokens)  # both 50 Hz
            assert example.acoustic_tokens.shape[1] == corpus.num_levels == 8
            assert 0 <= example.acoustic_tokens.min() and example.acoustic_tokens.max() < 256
            assert 0 <= example.semantic_tokens.min()
            assert example.semantic_tokens.max() < corpus.vocabulary_size
            # espeak ends every utterance in a pause (token 0).
            assert example.semantic_tokens[-1] == 0
            assert len(set(example.semantic_tokens.tolist())) > 5


def test_build_is_deterministic_for_a_seed_whatever_the_worker_count(tiny_corpus_dir, tmp_path):
    # The fixture was built by one process; this build by two.
    build_corpus(tmp_path, CorpusConfig(**TINY_CORPUS), progress=False, workers=2)
    _assert_same_shards(tiny_corpus_dir, tmp_path)


def test_coverage_counts_phonemes_and_diphones_between_silences():
    # Frames: silence, a a b, silence, b c c, silence -> runs [a, b], [b, c].
    a, b, c = 1, 2, 3
    held = np.array([0, a, a, b, 0, b, c, c, 0])
    train = np.array([0, a, b, b, 0])
    report = coverage({"train": [train], "heldout": [held]}, vocabulary_size=5)
    assert report["heldout"]["phoneme_types"] == 3 and report["heldout"]["diphone_types"] == 2
    assert report["heldout"]["diphone_types_in_train"] == 0.5  # (a, b) yes, (b, c) no
    assert report["heldout"]["phoneme_tokens_in_train"] == 0.75  # a, b, b of a, b, b, c
    assert report["train"]["diphone_types_in_train"] == 1.0
    assert report["heldout"]["phoneme_types_of_vocabulary"] == 0.75


def test_the_manifest_reports_coverage(tiny_corpus_dir):
    corpus = SpeechCorpus(tiny_corpus_dir)
    cover = corpus.manifest["coverage"]
    assert set(cover) == {"train", "eval_seen_speakers", "eval_unseen_speakers"}
    # The figures are those of each split's own utterances, against the training split's.
    splits = {split: [example.semantic_tokens for example in corpus.examples(split)]
              for split in cover}
    assert cover == json.loads(json.dumps(coverage(splits, corpus.manifest["semantic"]["vocabulary_size"])))
    assert cover["train"]["diphone_types_in_train"] == 1.0
    assert cover["train"]["phoneme_types"] > 20


class _Crash(Exception):
    pass


def test_a_crashed_build_resumes_without_losing_or_repeating_examples(tiny_corpus_dir, tmp_path):
    config = CorpusConfig(**TINY_CORPUS)
    written = []

    def crash_after_two(name):
        written.append(name)
        if len(written) == 2:
            raise _Crash

    with pytest.raises(_Crash):
        build_corpus(tmp_path, config, progress=False, after_shard=crash_after_two)
    assert not json.loads((tmp_path / "manifest.json").read_text())["complete"]
    with pytest.raises(InputError, match="incomplete"):
        SpeechCorpus(tmp_path)
    resumed = []
    build_corpus(tmp_path, config, progress=False, after_shard=resumed.append)
    assert not set(resumed) & set(written)  # finished shards are not redone
    _assert_same_shards(tiny_corpus_dir, tmp_path)


def test_resuming_with_other_settings_is_refused(tiny_corpus_dir):
    with pytest.raises(ConfigError, match="another --out"):
        build_corpus(tiny_corpus_dir, CorpusConfig(**{**TINY_CORPUS, "seed": 8}), progress=False)


def test_missing_corpus_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="soundstorm data build"):
        SpeechCorpus(tmp_path / "nothing")


def _find_pair(row_semantic, examples):
    """(prompt, target) examples whose concatenation starts this row, or None."""
    for prompt in examples:
        for target in examples:
            joined = np.concatenate([prompt.semantic_tokens, target.semantic_tokens])
            if prompt is not target and np.array_equal(row_semantic[:len(joined)], joined):
                return prompt, target
    return None


def test_batches_pair_a_prompt_and_a_target_of_one_speaker(tiny_corpus_dir):
    corpus = SpeechCorpus(tiny_corpus_dir)
    config = corpus.model_config(get_preset("small"))
    examples = corpus.examples("train")
    batches = training_batches(examples, config, batch_size=2, seed=3, max_frames=1000,
                               bucket_frames=50)
    for _ in range(4):
        batch = check_batch_inputs(config, next(batches))
        num_frames = batch.acoustic_tokens.shape[1]
        assert num_frames % 50 == 0 and batch.semantic_tokens.shape[1] == num_frames
        for row in range(2):
            length = batch.lengths[row]
            assert num_frames - 50 < length <= num_frames  # one bucket, little padding
            assert not batch.acoustic_tokens[row, length:].any()
            prompt, target = _find_pair(batch.semantic_tokens[row], examples)
            assert prompt.speaker == target.speaker and prompt.text != target.text
            joined = np.concatenate([prompt.acoustic_tokens, target.acoustic_tokens])
            assert np.array_equal(batch.acoustic_tokens[row, :length], joined)


def test_batch_order_is_a_function_of_the_seed(tiny_corpus_dir):
    corpus = SpeechCorpus(tiny_corpus_dir)
    config = corpus.model_config(get_preset("small"))
    examples = corpus.examples("train")
    take = lambda seed: [next(it) for it in [training_batches(examples, config, 2, seed=seed,
                                                              max_frames=1000, bucket_frames=50)]
                         for _ in range(6)]
    first, again, other = take(1), take(1), take(2)
    assert all(np.array_equal(a.acoustic_tokens, b.acoustic_tokens) for a, b in zip(first, again))
    assert not all(a.acoustic_tokens.shape == b.acoustic_tokens.shape
                   and np.array_equal(a.acoustic_tokens, b.acoustic_tokens)
                   for a, b in zip(first, other))


def test_long_pairs_are_cut_in_whole_semantic_frames(tiny_corpus_dir):
    corpus = SpeechCorpus(tiny_corpus_dir)
    config = corpus.model_config(get_preset("small"))
    batch = next(training_batches(corpus.examples("train"), config, 2, max_frames=100,
                                  bucket_frames=50))
    assert batch.acoustic_tokens.shape[1] == 100 and (batch.lengths == 100).all()


def test_unigram_entropy_lies_between_zero_and_uniform(tiny_corpus_dir):
    corpus = SpeechCorpus(tiny_corpus_dir)
    entropy = unigram_entropy(corpus.examples("train"), corpus.num_levels, corpus.codebook_size)
    assert 0 < entropy < np.log(corpus.codebook_size)


def test_model_config_must_match_the_corpus(tiny_corpus_dir):
    corpus = SpeechCorpus(tiny_corpus_dir)
    corpus.check_compatible(corpus.model_config(get_preset("tiny")))
    with pytest.raises(ConfigError, match="num_levels = 3"):
        corpus.check_compatible(get_preset("tiny"))
    with pytest.raises(InputError, match="single sentence"):
        next(training_batches(corpus.examples("train")[:1], corpus.model_config(
            get_preset("tiny")), 1))
