"""Reads a built corpus and serves training batches.

Every training example is a prompt/target pair from one speaker: another
sentence of the same speaker followed by the target sentence, so the model
learns to continue a voice across an utterance boundary, which is what a voice
prompt asks of it at inference. (The training masking still draws the prompt
boundary uniformly, as in the paper.)

Batches are length-bucketed: each example is padded up to a multiple of
`bucket_frames`, and a batch holds examples of one bucket only, so padding
stays small and the number of distinct shapes (compilations) stays bounded by
max_frames / bucket_frames. The order is a pure function of (seed, epoch), so
a resumed run replays exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Iterator

import numpy as np

from soundstorm.batch import Batch
from soundstorm.config import ConfigError, SoundStormConfig
from soundstorm.data.corpus_format import MANIFEST
from soundstorm.run_dir import RunDirectory
from soundstorm.validation import InputError


@dataclasses.dataclass(frozen=True)
class Example:
    semantic_tokens: np.ndarray  # [S]
    acoustic_tokens: np.ndarray  # [S * r, Q]
    speaker: str
    text: str


class SpeechCorpus:
    """A built corpus on disk: its manifest and the examples of each split."""

    def __init__(self, directory):
        self.directory = Path(directory)
        path = self.directory / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"no corpus at {self.directory} ({MANIFEST} missing); build "
                                    f"one with: soundstorm data build --out {self.directory}")
        self.manifest = json.loads(path.read_text())
        if not self.manifest.get("complete"):
            raise InputError(f"the corpus at {self.directory} is incomplete (its build stopped); "
                             "re-run the same `soundstorm data build` command to finish it")

    @property
    def num_levels(self) -> int:
        return self.manifest["codec"]["num_levels"]

    @property
    def codebook_size(self) -> int:
        return self.manifest["codec"]["codebook_size"]

    @property
    def semantic_rate_hz(self) -> int:
        return self.manifest["semantic"]["rate_hz"]

    @property
    def vocabulary_size(self) -> int:
        return self.manifest["semantic"]["vocabulary_size"]

    def model_config(self, base: SoundStormConfig) -> SoundStormConfig:
        """`base` with the token settings of this corpus (levels, codes, rates, vocabulary)."""
        return base.replace(num_levels=self.num_levels, codebook_size=self.codebook_size,
                            frame_rate_hz=self.manifest["codec"]["frame_rate_hz"],
                            semantic_rate_hz=self.semantic_rate_hz,
                            semantic_vocab_size=self.vocabulary_size)

    def check_compatible(self, config: SoundStormConfig) -> None:
        wanted = {"num_levels": self.num_levels, "codebook_size": self.codebook_size,
                  "semantic_rate_hz": self.semantic_rate_hz,
                  "frame_rate_hz": self.manifest["codec"]["frame_rate_hz"]}
        for name, value in wanted.items():
            if getattr(config, name) != value:
                raise ConfigError(f"model {name} = {getattr(config, name)} but the corpus at "
                                  f"{self.directory} has {value}")
        if config.semantic_vocab_size < self.vocabulary_size:
            raise ConfigError(f"model semantic_vocab_size = {config.semantic_vocab_size} is smaller "
                              f"than the corpus vocabulary ({self.vocabulary_size})")

    def record_token_contract(self, workdir) -> Path:
        """Writes workdir/data.json: the codec and semantic settings a model trained on this
        corpus expects (the export puts them in the model's metadata)."""
        record = {"corpus": str(self.directory.resolve()), "codec": self.manifest["codec"],
                  "semantic": self.manifest["semantic"]}
        return RunDirectory(workdir).write_data_record(record)

    def examples(self, split: str) -> list[Example]:
        if split not in self.manifest["splits"]:
            raise InputError(f"no split {split!r}; the corpus has {sorted(self.manifest['splits'])}")
        examples = []
        for name in sorted(self.manifest["splits"][split]["shards"]):
            with np.load(self.directory / name, allow_pickle=False) as shard:
                semantic, acoustic = shard["semantic_tokens"], shard["acoustic_tokens"]
                s_off, f_off = shard["semantic_offsets"], shard["frame_offsets"]
                for i, (speaker, text) in enumerate(zip(shard["speaker"], shard["text"])):
                    examples.append(Example(semantic[s_off[i]:s_off[i + 1]],
                                            acoustic[f_off[i]:f_off[i + 1]], str(speaker),
                                            str(text)))
        return examples


def pick_prompt(examples: list[Example], target_index: int) -> Example:
    """The next example (cyclically) by the same speaker with a different text."""
    target = examples[target_index]
    for offset in range(1, len(examples)):
        candidate = examples[(target_index + offset) % len(examples)]
        if candidate.speaker == target.speaker and candidate.text != target.text:
            return candidate
    raise InputError(f"speaker {target.speaker} has no other sentence to prompt with")


def unigram_entropy(examples: list[Example], num_levels: int, codebook_size: int) -> float:
    """Mean over levels of the entropy (nats) of each level's code frequencies.

    The loss of a model that ignores all context and predicts each level's
    marginal; training draws the level uniformly, hence the mean.
    """
    tokens = np.concatenate([example.acoustic_tokens for example in examples])
    entropies = []
    for level in range(num_levels):
        counts = np.bincount(tokens[:, level], minlength=codebook_size).astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        entropies.append(float(-(p * np.log(p)).sum()))
    return float(np.mean(entropies))


def _pair(prompt: Example, target: Example, max_frames: int, ratio: int):
    """Semantic [S] and acoustic [S * ratio, Q] of prompt + target, cut to max_frames.

    The prompt is cut from its start (the target is kept whole when it fits),
    always in whole semantic frames so the two streams stay aligned.
    """
    semantic = np.concatenate([prompt.semantic_tokens, target.semantic_tokens])
    acoustic = np.concatenate([prompt.acoustic_tokens, target.acoustic_tokens])
    max_semantic = max_frames // ratio
    if len(semantic) > max_semantic:
        drop = min(len(prompt.semantic_tokens), len(semantic) - max_semantic)
        semantic, acoustic = semantic[drop:], acoustic[drop * ratio:]
        semantic, acoustic = semantic[:max_semantic], acoustic[:max_semantic * ratio]
    return semantic, acoustic


def training_batches(examples: list[Example], config: SoundStormConfig, batch_size: int, *,
                     seed: int = 0, max_frames: int = 500, bucket_frames: int = 100
                     ) -> Iterator[Batch]:
    """Endless prompt/target batches, length-bucketed, in an order fixed by `seed`."""
    ratio = config.frames_per_semantic_token
    if bucket_frames % ratio or max_frames % bucket_frames:
        raise ConfigError(f"bucket_frames ({bucket_frames}) must be a multiple of "
                          f"{ratio} frames per semantic token and divide max_frames ({max_frames})")
    by_speaker: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        by_speaker.setdefault(example.speaker, []).append(index)
    lonely = [name for name, indices in by_speaker.items() if len(indices) < 2]
    if lonely:
        raise InputError(f"speakers {lonely} have a single sentence: no prompt can be drawn")
    if len(examples) < batch_size:
        raise InputError(f"{len(examples)} examples cannot fill a batch of {batch_size}")

    for epoch in range(2 ** 31):
        rng = np.random.default_rng([seed, epoch])
        buckets: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for target_index in rng.permutation(len(examples)):
            target = examples[target_index]
            candidates = by_speaker[target.speaker]
            prompt_index = target_index
            while prompt_index == target_index:
                prompt_index = candidates[rng.integers(len(candidates))]
            semantic, acoustic = _pair(examples[prompt_index], target, max_frames, ratio)
            padded = math.ceil(len(acoustic) / bucket_frames) * bucket_frames
            buckets.setdefault(padded, []).append((semantic, acoustic))
        batches = []
        for padded, pairs in sorted(buckets.items()):
            for start in range(0, len(pairs) - batch_size + 1, batch_size):
                batches.append((padded, pairs[start:start + batch_size]))
        for order in rng.permutation(len(batches)):
            yield _collate(*batches[order], ratio, config.num_levels)


# Corpus batches are padded to whole multiples of this many seconds.
BUCKET_SECONDS = 1


def bucketed_batches(examples: list[Example], config: SoundStormConfig, batch_size: int, *,
                     max_seconds: float = 10.0, seed: int = 0) -> Iterator[Batch]:
    """`training_batches` in buckets of BUCKET_SECONDS, the longest pair (prompt + target)
    `max_seconds` rounded down to whole buckets (at least one): what `soundstorm train` feeds
    the trainer from a corpus."""
    bucket = BUCKET_SECONDS * config.frame_rate_hz
    max_frames = max(bucket, int(max_seconds * config.frame_rate_hz) // bucket * bucket)
    return training_batches(examples, config, batch_size, seed=seed, max_frames=max_frames,
                            bucket_frames=bucket)


def _collate(num_frames: int, pairs, ratio: int, num_levels: int) -> Batch:
    batch = len(pairs)
    semantic = np.zeros((batch, num_frames // ratio), np.int32)
    acoustic = np.zeros((batch, num_frames, num_levels), np.int32)
    lengths = np.zeros((batch,), np.int32)
    for row, (pair_semantic, pair_acoustic) in enumerate(pairs):
        semantic[row, :len(pair_semantic)] = pair_semantic
        acoustic[row, :len(pair_acoustic)] = pair_acoustic
        lengths[row] = len(pair_acoustic)
    return Batch(semantic, acoustic, lengths)
