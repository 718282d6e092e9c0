"""Builds a speech corpus offline: espeak-ng speakers x built-in sentences -> Lyra tokens.

    soundstorm data build --out data/corpus --sentences 400 --speakers 16

Each example is one sentence said by one speaker: its phoneme-aligned semantic
tokens [S], its codec tokens [S * r, Q] (the audio is padded to whole semantic
frames, so the two always line up), the speaker's name and the text.

Splits, fixed by the seed and never mixed:
- `train`: training speakers x training sentences;
- `eval_seen_speakers`: training speakers x held-out sentences;
- `eval_unseen_speakers`: held-out speakers x held-out sentences.

Examples go to numbered shards of `shard_size`, each written under a temporary
name and renamed when complete; a build that crashes is resumed by running the
same command, which skips the shards already on disk, so no example is lost or
written twice. The manifest is rewritten after every shard and marked complete
at the end.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from runtime.codec import Codec, LyraCodec, to_mono
from runtime.frontend import SPEAKERS, get_speaker, load_vocabulary, semantic_tokens, synthesize
from soundstorm.config import ConfigError
from soundstorm.data.sentences import sentence

CORPUS_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "eval_seen_speakers", "eval_unseen_speakers")


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    num_sentences: int = 400
    num_heldout_sentences: int = 24
    num_speakers: int = 16
    num_heldout_speakers: int = 4
    seed: int = 0
    shard_size: int = 128
    # Not the paper's 25 Hz: at 25 Hz 3.1% of espeak's phonemes hold no token
    # (short stop bursts), at 50 Hz 0.9% (benchmarks/phoneme_rate.py). The model
    # attends over codec frames (50 Hz) whatever this rate, so 50 Hz costs
    # nothing in sequence length. docs/data.md has the table.
    semantic_rate_hz: int = 50
    vocabulary_version: str = "v1"
    # The codec setting (docs/codec.md says why these).
    lyra_levels: int = 16
    group_size: int = 2

    def __post_init__(self):
        for name in ("num_sentences", "num_heldout_sentences", "num_speakers", "shard_size",
                     "semantic_rate_hz"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_heldout_speakers < 0:
            raise ConfigError(f"num_heldout_speakers must be >= 0, got {self.num_heldout_speakers}")
        total = self.num_speakers + self.num_heldout_speakers
        if total > len(SPEAKERS):
            raise ConfigError(f"{self.num_speakers} training + {self.num_heldout_speakers} held-out "
                              f"speakers asked for, but only {len(SPEAKERS)} speakers exist")


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


def plan(config: CorpusConfig) -> dict[str, list[Job]]:
    """Every example of every split, in build order. Held-out sentences come first in the
    generator's order, so they stay the same whatever `num_sentences` is."""
    rng = np.random.default_rng(config.seed)
    names = [str(name) for name in rng.permutation(sorted(SPEAKERS))]
    heldout_speakers = names[:config.num_heldout_speakers]
    train_speakers = names[config.num_heldout_speakers:
                           config.num_heldout_speakers + config.num_speakers]
    texts = unique_sentences(config.seed, config.num_heldout_sentences + config.num_sentences)
    heldout_texts = texts[:config.num_heldout_sentences]
    train_texts = texts[config.num_heldout_sentences:]

    def jobs(split, speakers, sentences):
        return [Job(split, speaker, index, text) for index, text in sentences for speaker in speakers]
    return {"train": jobs("train", train_speakers, train_texts),
            "eval_seen_speakers": jobs("eval_seen_speakers", train_speakers, heldout_texts),
            "eval_unseen_speakers": jobs("eval_unseen_speakers", heldout_speakers, heldout_texts)}


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


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.npz"


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


def build_corpus(out_dir, config: CorpusConfig, *, codec_dir=None, progress: bool = True,
                 after_shard: Callable[[str], None] | None = None) -> dict:
    """Builds (or resumes building) the corpus in `out_dir`; returns its manifest.

    `after_shard(name)` is called after each shard is on disk (tests use it to
    simulate a crash).
    """
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
    for split in SPLITS:
        for index, shard_jobs in enumerate(shards[split]):
            name = shard_name(split, index)
            if name in done[split]:
                continue
            encoded = []
            for job in shard_jobs:
                encoded.append(encode_example(job, codec, vocabulary, config.semantic_rate_hz))
                bar.update(1)
            _write_shard(out_dir / name, shard_jobs, encoded)
            done[split].append(name)
            _write_json(manifest_path, _manifest(config, codec, vocabulary, jobs, done, False))
            if after_shard is not None:
                after_shard(name)
    bar.close()
    manifest = _manifest(config, codec, vocabulary, jobs, done, complete=True)
    _write_json(manifest_path, manifest)
    return manifest
