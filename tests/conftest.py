"""Shared fixtures. Expensive ones (a trained tiny model) are built once per test run."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from soundstorm.config import PRESETS
from soundstorm.synthetic import synthetic_batches
from soundstorm.config import TrainConfig
from soundstorm.train import Trainer

# A memorisation run: 8 fixed synthetic examples, cycled.
MEMORISE_CONFIG = TrainConfig(batch_size=8, total_steps=400, warmup_steps=20,
                              peak_learning_rate=3e-3, checkpoint_every=200, log_every=20,
                              unknown_semantic_prob=0.0)
MEMORISE_SEMANTIC_TOKENS = 8


# Set by tools/mutation_score.py for modules that the expensive fixtures never run (the
# client, the server): the unmutated build of each fixture is kept here and reused by every
# mutant's pytest run, instead of training and exporting again each time.
FIXTURE_CACHE = os.environ.get("SOUNDSTORM_TEST_FIXTURE_CACHE", "")


def built_once(name, tmp_path_factory, build):
    """build(folder) -> a path inside folder, in a fresh temporary folder; with
    SOUNDSTORM_TEST_FIXTURE_CACHE set, built into the cache the first time and reused after."""
    if not FIXTURE_CACHE:
        return build(tmp_path_factory.mktemp(name))
    root = Path(FIXTURE_CACHE) / name
    done = root / "built-path.txt"
    if done.is_file():
        return Path(done.read_text())
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    path = build(root)
    done.write_text(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_config():
    return PRESETS["tiny"]


@pytest.fixture(scope="session")
def memorise_batches(tiny_config):
    def batches():
        return synthetic_batches(tiny_config, MEMORISE_CONFIG.batch_size,
                                 MEMORISE_SEMANTIC_TOKENS, dataset_size=8)
    return batches


@pytest.fixture(scope="session")
def trained_tiny(tiny_config, memorise_batches, tmp_path_factory):
    """(workdir, TrainResult) of a tiny model that memorised 8 synthetic examples."""
    workdir = tmp_path_factory.mktemp("trained_tiny")
    result = Trainer(tiny_config, MEMORISE_CONFIG, workdir).run(memorise_batches(),
                                                                progress=False)
    return workdir, result


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# Speech for codec and corpus tests: espeak-ng, converted to the codec's rate.
SPEECH_TEXT = "The quick brown fox jumps over the lazy dog. Then it sat down, and thought."
OTHER_SPEECH_TEXT = "Please bring eleven shells to the small basket before dinner."


@pytest.fixture(scope="session")
def lyra():
    from soundstorm.runtime.codec import LyraCodec
    return LyraCodec()


@pytest.fixture(scope="session")
def speech():
    """16 kHz float32 speech of SPEECH_TEXT and of OTHER_SPEECH_TEXT, one voice."""
    from soundstorm.runtime.codec import to_mono
    from soundstorm.runtime.frontend import get_speaker, synthesize
    speaker = get_speaker(sorted(_speaker_names())[0])
    waves = []
    for text in (SPEECH_TEXT, OTHER_SPEECH_TEXT):
        utterance = synthesize(text, speaker)
        waves.append(to_mono(utterance.waveform, utterance.sample_rate, 16_000))
    return waves


def _speaker_names():
    from soundstorm.runtime.frontend import SPEAKERS
    return SPEAKERS.keys()


TINY_CORPUS = dict(num_sentences=3, num_heldout_sentences=2, num_speakers=2,
                   num_heldout_speakers=1, shard_size=4, seed=7, text="generator",
                   speakers="builtin", speakers_per_sentence=0)


@pytest.fixture(scope="session")
def tiny_corpus_dir(tmp_path_factory):
    """A corpus of 3 + 2 sentences x 2 + 1 speakers, built once."""
    from soundstorm.apps.corpus.build import CorpusConfig, build_corpus

    def build(folder):
        build_corpus(folder / "corpus", CorpusConfig(**TINY_CORPUS), progress=False)
        return folder / "corpus"
    return built_once("tiny_corpus", tmp_path_factory, build)


# An export for serving tests: CPU only, one 32-frame bucket, so a server loads it quickly.
SERVING_EXPORT = dict(max_seconds=0.64, max_prompt_seconds=0.16, bucket_seconds=(0.64,),
                      platforms=("cpu",))


@pytest.fixture(scope="session")
def served_version(request, tmp_path_factory):
    """The memorising tiny model exported once for serving tests: its version folder."""
    from soundstorm.export import ExportConfig, export_savedmodel

    def build(folder):
        workdir = request.getfixturevalue("trained_tiny")[0]
        return export_savedmodel(workdir, folder, ExportConfig(**SERVING_EXPORT), log=None)
    return built_once("serving_exports", tmp_path_factory, build)


# A speech-token tiny model (Lyra tokens, phoneme vocabulary) whose calls take at most
# 1.28 s (64 frames) with prompts of up to 0.4 s: anything longer exercises windows.
CLIENT_EXPORT = ["--max-seconds", "1.28", "--prompt-seconds", "0.4", "--buckets", "0.64,1.28",
                 "--platforms", "cpu"]


@pytest.fixture(scope="session")
def speech_model(request, tmp_path_factory):
    """A tiny model trained briefly on the tiny speech corpus, exported: its base path."""
    from soundstorm.apps.cli.main import main

    def build(root):
        corpus = request.getfixturevalue("tiny_corpus_dir")
        assert main(["train", "--preset", "tiny", "--data", str(corpus), "--workdir",
                     str(root / "run"), "--steps", "4", "--batch-size", "2",
                     "--checkpoint-every", "4"]) == 0
        assert main(["export", "--workdir", str(root / "run"), "--base-path",
                     str(root / "exports"), *CLIENT_EXPORT]) == 0
        return root / "exports" / "soundstorm"
    return built_once("speech_model", tmp_path_factory, build)


def predict_request(arrays, name="soundstorm", version=None, label="", signature="",
                    output_filter=()):
    """A PredictRequest built with nothing but the tensorflow_serving.apis classes."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    request.model_spec.signature_name = signature
    for key, value in arrays.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request
