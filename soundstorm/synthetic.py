"""A synthetic token source with the structure SoundStorm has to learn.

Each "speaker" owns a random table from (semantic token, position within the
token's frames) to the codes of every level, so the acoustic tokens are a
deterministic function of the semantic tokens and of a speaker that only the
prompt reveals. A model that learns it has learnt to use both conditionings.
Real data comes from the corpus builder; this source needs nothing on disk.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from soundstorm.batch import Batch
from soundstorm.config import SoundStormConfig


class SyntheticLanguage:
    def __init__(self, config: SoundStormConfig, num_speakers: int = 4, seed: int = 0):
        self.config = config
        rng = np.random.default_rng(seed)
        self.speaker_tables = rng.integers(
            0, config.codebook_size,
            (num_speakers, config.semantic_vocab_size, config.frames_per_semantic_token,
             config.num_levels), dtype=np.int32)

    @property
    def num_speakers(self) -> int:
        return self.speaker_tables.shape[0]

    def utterance(self, rng: np.random.Generator, num_semantic: int, speaker: int):
        """Semantic [S] and acoustic [S * r, Q] tokens of one utterance."""
        semantic = rng.integers(0, self.config.semantic_vocab_size, num_semantic, dtype=np.int32)
        acoustic = self.speaker_tables[speaker, semantic].reshape(-1, self.config.num_levels)
        return semantic, acoustic

    def batch(self, rng: np.random.Generator, batch_size: int, num_semantic: int,
              min_semantic: int | None = None) -> Batch:
        """A padded batch; lengths vary in [min_semantic, num_semantic] semantic tokens."""
        r = self.config.frames_per_semantic_token
        min_semantic = num_semantic if min_semantic is None else min_semantic
        semantic = np.zeros((batch_size, num_semantic), np.int32)
        acoustic = np.zeros((batch_size, num_semantic * r, self.config.num_levels), np.int32)
        lengths = np.zeros((batch_size,), np.int32)
        for b in range(batch_size):
            size = int(rng.integers(min_semantic, num_semantic + 1))
            speaker = int(rng.integers(self.num_speakers))
            semantic[b, :size], acoustic[b, :size * r] = self.utterance(rng, size, speaker)
            lengths[b] = size * r
        return Batch(semantic, acoustic, lengths)


def synthetic_batches(config: SoundStormConfig, batch_size: int, num_semantic: int, *,
                      seed: int = 0, num_speakers: int = 4,
                      dataset_size: int | None = None) -> Iterator[Batch]:
    """Endless batches. With `dataset_size`, a fixed set of that many examples is
    cycled in order (for memorisation tests); otherwise every batch is new."""
    language = SyntheticLanguage(config, num_speakers, seed)
    rng = np.random.default_rng(seed + 1)
    if dataset_size is None:
        while True:
            yield language.batch(rng, batch_size, num_semantic, max(1, num_semantic // 2))
    dataset = language.batch(rng, dataset_size, num_semantic, max(1, num_semantic // 2))
    position = 0
    while True:
        rows = (position + np.arange(batch_size)) % dataset_size
        position = (position + batch_size) % dataset_size
        yield Batch(*(field[rows] for field in dataset))
