"""Builds a speech corpus offline: espeak-ng speakers x English sentences -> Lyra tokens.

    soundstorm data build --out data/corpus

Sentences come from WordNet's example sentences (open vocabulary; held-out
sentences carry words no training sentence has) or the built-in generator;
speakers are generated espeak recipes (hundreds, with held-out variants) or
the 28 built-in ones (CorpusConfig says which). Each example is one sentence
said by one speaker: its phoneme-aligned semantic tokens [S], its codec tokens
[S * r, Q] (the audio is padded to whole semantic frames, so the two always
line up), the speaker's name and the text.

Splits, fixed by the seed and never mixed:
- `train`: training speakers x training sentences;
- `eval_seen_speakers`: training speakers x held-out sentences;
- `eval_unseen_speakers`: held-out speakers x held-out sentences.

Examples go to numbered shards of `shard_size`, each written under a temporary
name and renamed when complete; a build that crashes is resumed by running the
same command, which skips the shards already on disk, so no example is lost or
written twice. The manifest is rewritten after every shard and marked complete
at the end, with the phoneme and diphone coverage of each split
(apps/corpus/coverage.py).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from soundstorm.apps.corpus.coverage import coverage
from soundstorm.apps.corpus.sentences import sentence
from soundstorm.apps.corpus.wordnet_text import example_sentences, split_open_vocabulary
from soundstorm.runtime.codec import Codec, LyraCodec, to_mono
from soundstorm.runtime.frontend import (ENGLISH_VOICES, SPEAKERS, VARIANTS, generated_speaker, get_speaker,
                              load_vocabulary, semantic_tokens, synthesize)
from soundstorm.config import ConfigError
from soundstorm.data.corpus_format import CORPUS_FORMAT_VERSION, MANIFEST, SPLITS, shard_name



# espeak-ng's English voices for generated speakers. West Midlands is left out:
# Whisper tiny.en could not transcribe its raw audio at all (word error rate 3.0,
# hallucinated text, where the other voices score 0.37-0.83; docs/data.md).
TRAINING_VOICES = tuple(sorted(set(ENGLISH_VOICES) - {"en-gb-x-gbcwmd"}))
# Held-out speakers use the four voices whose raw audio the recogniser
# understands best (0.37-0.51), so that the evaluation measures the model, not
# the recogniser's trouble with espeak's regional accents.
EVALUATION_VOICES = ("en", "en-gb-x-rp", "en-us", "en-us-nyc")
TEXT_SOURCES = ("wordnet", "generator")
SPEAKER_SETS = ("generated", "builtin")


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """What a corpus holds. The defaults are the reference model's corpus (docs/data.md).

    text: "wordnet" (open vocabulary, WordNet's example sentences, held-out words
    never in training; apps/corpus/wordnet_text.py) or "generator" (the
    built-in closed-vocabulary generator, apps/corpus/sentences.py).
    speakers: "generated" (espeak voices x variants x pitch x range x rate, with
    `num_heldout_variants` variants kept out of training) or "builtin" (the 28
    named speakers of runtime/frontend/speakers.py).
    speakers_per_sentence: how many speakers say each sentence; 0 = every
    speaker of the split says every sentence.
    """

    num_sentences: int = 24000
    num_heldout_sentences: int = 64
    num_speakers: int = 480
    num_heldout_speakers: int = 24
    seed: int = 0
    shard_size: int = 512
    # Not the paper's 25 Hz: at 25 Hz 3.1% of espeak's phonemes hold no token
    # (short stop bursts), at 50 Hz 0.9% (benchmarks/phoneme_rate.py). The model
    # attends over codec frames (50 Hz) whatever this rate, so 50 Hz costs
    # nothing in sequence length. docs/data.md has the table.
    semantic_rate_hz: int = 50
    vocabulary_version: str = "v2"
    # The codec setting (docs/codec.md says why these).
    lyra_levels: int = 16
    group_size: int = 2
    text: str = "wordnet"
    speakers: str = "generated"
    speakers_per_sentence: int = 1
    num_heldout_variants: int = 6

    def __post_init__(self):
        for name in ("num_sentences", "num_heldout_sentences", "num_speakers", "shard_size",
                     "semantic_rate_hz"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_heldout_speakers", "speakers_per_sentence", "num_heldout_variants"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.text not in TEXT_SOURCES:
            raise ConfigError(f"text must be one of {TEXT_SOURCES}, got {self.text!r}")
        if self.speakers not in SPEAKER_SETS:
            raise ConfigError(f"speakers must be one of {SPEAKER_SETS}, got {self.speakers!r}")
        total = self.num_speakers + self.num_heldout_speakers
        if self.speakers == "builtin" and total > len(SPEAKERS):
            raise ConfigError(f"{self.num_speakers} training + {self.num_heldout_speakers} held-out "
                              f"speakers asked for, but only {len(SPEAKERS)} speakers exist")
        if self.speakers == "generated" and not 0 <= self.num_heldout_variants < len(VARIANTS):
            raise ConfigError(f"num_heldout_variants must be in [0, {len(VARIANTS)}), "
                              f"got {self.num_heldout_variants}")


@dataclasses.dataclass(frozen=True)
class Job:
    split: str
    speaker: str
    sentence_id: int
    text: str


def unique_sentences(seed: int, count: int) -> list[tuple[int, str]]:
    """The first `count` distinct generator sentences, as (generator index, text)."""
    seen, chosen, index = set(), [], 0
    while len(chosen) < count:
        text = sentence(seed, index)
        if text not in seen:
            seen.add(text)
            chosen.append((index, text))
        index += 1
    return chosen


def split_texts(config: CorpusConfig) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(held-out, training) sentences as (sentence id, text).

    Generator: ids are generator indices, the first distinct ones held out.
    WordNet: ids index `example_sentences()`; held-out sentences carry words no
    training sentence has (`split_open_vocabulary`); training takes the first
    `num_sentences` of the rest in a seeded order.
    """
    if config.text == "generator":
        texts = unique_sentences(config.seed, config.num_heldout_sentences + config.num_sentences)
        return texts[:config.num_heldout_sentences], texts[config.num_heldout_sentences:]
    sentences = example_sentences()
    split = split_open_vocabulary(sentences, config.num_heldout_sentences, seed=config.seed)
    ids = {text: index for index, text in enumerate(sentences)}
    if len(split.train) < config.num_sentences:
        raise ConfigError(f"WordNet has {len(split.train)} training sentences; asked for "
                          f"{config.num_sentences}")
    order = np.random.default_rng([config.seed, 1]).permutation(len(split.train))
    train = [split.train[index] for index in order[:config.num_sentences]]
    return [(ids[text], text) for text in split.heldout], [(ids[text], text) for text in train]


def split_speakers(config: CorpusConfig) -> tuple[list[str], list[str]]:
    """(held-out, training) speaker names, fixed by the seed.

    Generated: `num_heldout_variants` variants are never used by a training
    speaker; held-out speakers alternate between those variants and training
    variants (new pitch, range and rate), so evaluation hears both new variants
    and new settings of known ones. Training voices cycle through
    TRAINING_VOICES, held-out ones through EVALUATION_VOICES.
    """
    rng = np.random.default_rng(config.seed)
    if config.speakers == "builtin":
        names = [str(name) for name in rng.permutation(sorted(SPEAKERS))]
        return (names[:config.num_heldout_speakers],
                names[config.num_heldout_speakers:config.num_heldout_speakers + config.num_speakers])
    variants = [VARIANTS[index] for index in rng.permutation(len(VARIANTS))]
    heldout_variants = variants[:config.num_heldout_variants]
    train_variants = variants[config.num_heldout_variants:]

    def draw(count, pick_variant, taken, voices):
        names = []
        while len(names) < count:
            number = len(taken) + len(names)
            speaker = generated_speaker(voices[number % len(voices)], pick_variant(len(names)), rng)
            if speaker.name not in taken and speaker.name not in names:
                names.append(speaker.name)
        return names
    train = draw(config.num_speakers, lambda i: train_variants[i % len(train_variants)], set(),
                 TRAINING_VOICES)
    pools = [heldout_variants, train_variants] if heldout_variants else [train_variants]
    heldout = draw(config.num_heldout_speakers,
                   lambda i: pools[i % len(pools)][(i // len(pools)) % len(pools[i % len(pools)])],
                   set(train), EVALUATION_VOICES)
    return heldout, train


def plan(config: CorpusConfig) -> dict[str, list[Job]]:
    """Every example of every split, in build order. Held-out sentences stay the same
    whatever `num_sentences` is, and never reach `train`; nor do held-out speakers.

    With `speakers_per_sentence` k > 0, sentence i of a split is said by k speakers
    taken in turn from the split's speakers; the evaluation splits take their
    speakers from at most half as many speakers as they have sentences, so every
    evaluation speaker says at least two sentences (one is the other's prompt).
    """
    heldout_speakers, train_speakers = split_speakers(config)
    heldout_texts, train_texts = split_texts(config)

    def jobs(split, speakers, sentences, evaluation):
        if config.speakers_per_sentence == 0:
            return [Job(split, speaker, index, text) for index, text in sentences
                    for speaker in speakers]
        if evaluation:
            speakers = speakers[:max(1, len(sentences) // 2)]
        k = config.speakers_per_sentence
        return [Job(split, speakers[(number * k + j) % len(speakers)], index, text)
                for number, (index, text) in enumerate(sentences) for j in range(k)]
    return {"train": jobs("train", train_speakers, train_texts, False),
            "eval_seen_speakers": jobs("eval_seen_speakers", train_speakers, heldout_texts, True),
            "eval_unseen_speakers": jobs("eval_unseen_speakers", heldout_speakers, heldout_texts,
                                         True)}


def make_codec(config: CorpusConfig, codec_dir=None) -> LyraCodec:
    return LyraCodec(codec_dir, lyra_levels=config.lyra_levels, group_size=config.group_size)


def encode_example(job: Job, codec: Codec, vocabulary, semantic_rate_hz: int):
    """(semantic tokens [S], codec tokens [S * r, Q]) of one sentence said by one speaker."""
    utterance = synthesize(job.text, get_speaker(job.speaker))
    audio = to_mono(utterance.waveform, utterance.sample_rate, codec.sample_rate)
    samples_per_semantic = codec.sample_rate // semantic_rate_hz
    num_semantic = -(-audio.size // samples_per_semantic)
    audio = np.pad(audio, (0, num_semantic * samples_per_semantic - audio.size))
    semantic = semantic_tokens(utterance, vocabulary, semantic_rate_hz, num_frames=num_semantic)
    return semantic.astype(np.int32), codec.encode(audio, codec.sample_rate)


def _write_shard(path: Path, jobs: list[Job], encoded: list[tuple[np.ndarray, np.ndarray]]):
    semantic = [pair[0] for pair in encoded]
    acoustic = [pair[1] for pair in encoded]
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        np.savez(file,
                 semantic_tokens=np.concatenate(semantic).astype(np.int32),
                 semantic_offsets=np.cumsum([0] + [len(s) for s in semantic]),
                 acoustic_tokens=np.concatenate(acoustic).astype(np.int32),
                 frame_offsets=np.cumsum([0] + [len(a) for a in acoustic]),
                 speaker=np.array([job.speaker for job in jobs]),
                 text=np.array([job.text for job in jobs]),
                 sentence_id=np.array([job.sentence_id for job in jobs], np.int32))
    partial.replace(path)


def _manifest(config: CorpusConfig, codec: Codec, vocabulary, jobs: dict[str, list[Job]],
              done: dict[str, list[str]], complete: bool) -> dict:
    return {
        "format_version": CORPUS_FORMAT_VERSION,
        "config": dataclasses.asdict(config),
        "codec": {"name": "lyra_v2", "lyra_levels": config.lyra_levels,
                  "group_size": config.group_size, "num_levels": codec.num_levels,
                  "codebook_size": codec.codebook_size, "frame_rate_hz": codec.frame_rate_hz,
                  "sample_rate": codec.sample_rate},
        "semantic": {"vocabulary_version": vocabulary.version, "vocabulary_size": vocabulary.size,
                     "rate_hz": config.semantic_rate_hz},
        "splits": {split: {"examples": len(split_jobs),
                           "speakers": sorted({job.speaker for job in split_jobs}),
                           "shards": done[split]}
                   for split, split_jobs in jobs.items()},
        "complete": complete,
    }


def _write_json(path: Path, value: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, indent=1) + "\n")
    partial.replace(path)


class _Encoder:
    """encode_example with a codec and vocabulary of its own: one per worker process."""

    def __init__(self, config: CorpusConfig, codec_dir):
        self.codec = make_codec(config, codec_dir)
        self.vocabulary = load_vocabulary(config.vocabulary_version)
        self.rate = config.semantic_rate_hz

    def __call__(self, job: Job):
        return encode_example(job, self.codec, self.vocabulary, self.rate)


_worker_encoder: _Encoder | None = None


def _start_worker(config: CorpusConfig, codec_dir) -> None:
    global _worker_encoder
    _worker_encoder = _Encoder(config, codec_dir)


def _encode_in_worker(job: Job):
    return _worker_encoder(job)


def build_corpus(out_dir, config: CorpusConfig, *, codec_dir=None, progress: bool = True,
                 after_shard: Callable[[str], None] | None = None, workers: int = 1) -> dict:
    """Builds (or resumes building) the corpus in `out_dir`; returns its manifest.

    `workers` > 1 encodes in that many processes (started with "spawn": this
    process may hold JAX threads); each example is a pure function of its job,
    so the corpus is the same whatever the count. `after_shard(name)` is called
    after each shard is on disk (tests use it to simulate a crash).
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists():
        existing = json.loads(manifest_path.read_text())
        if existing.get("config") != dataclasses.asdict(config):
            raise ConfigError(f"{out_dir} holds a corpus built with {existing.get('config')}; "
                              f"asked for {dataclasses.asdict(config)}. Use another --out.")
    codec = make_codec(config, codec_dir)
    vocabulary = load_vocabulary(config.vocabulary_version)
    jobs = plan(config)
    shards = {split: [split_jobs[start:start + config.shard_size]
                      for start in range(0, len(split_jobs), config.shard_size)]
              for split, split_jobs in jobs.items()}
    on_disk = {(split, index) for split, split_shards in shards.items()
               for index in range(len(split_shards))
               if (out_dir / shard_name(split, index)).exists()}
    done = {split: [shard_name(split, index) for index in range(len(shards[split]))
                    if (split, index) in on_disk] for split in SPLITS}
    total = sum(len(split_jobs) for split_jobs in jobs.values())
    already = sum(len(shards[split][index]) for split, index in on_disk)
    bar = tqdm(total=total, initial=already, unit="utt", desc="corpus", disable=not progress)
    _write_json(manifest_path, _manifest(config, codec, vocabulary, jobs, done, complete=False))
    pool = None
    if workers > 1:
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
            initargs=(config, codec_dir))
        encode = lambda shard_jobs: pool.map(_encode_in_worker, shard_jobs, chunksize=4)
    else:
        encoder = _Encoder(config, codec_dir)
        encode = lambda shard_jobs: map(encoder, shard_jobs)
    try:
        for split in SPLITS:
            for index, shard_jobs in enumerate(shards[split]):
                name = shard_name(split, index)
                if name in done[split]:
                    continue
                encoded = []
                for example in encode(shard_jobs):
                    encoded.append(example)
                    bar.update(1)
                _write_shard(out_dir / name, shard_jobs, encoded)
                done[split].append(name)
                _write_json(manifest_path, _manifest(config, codec, vocabulary, jobs, done, False))
                if after_shard is not None:
                    after_shard(name)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    bar.close()
    manifest = _manifest(config, codec, vocabulary, jobs, done, complete=True)
    manifest["coverage"] = coverage({split: list(_semantic_of(out_dir, done[split]))
                                     for split in SPLITS}, vocabulary.size)
    _write_json(manifest_path, manifest)
    return manifest


def _semantic_of(out_dir: Path, shard_names: list[str]):
    for name in sorted(shard_names):
        with np.load(out_dir / name, allow_pickle=False) as shard:
            tokens, offsets = shard["semantic_tokens"], shard["semantic_offsets"]
            for start, end in zip(offsets[:-1], offsets[1:]):
                yield tokens[start:end]
