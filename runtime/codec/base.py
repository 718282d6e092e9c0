"""The codec interface SoundStorm needs: waveform <-> integer tokens [frames, levels]."""

from __future__ import annotations

import abc

import numpy as np

from soundstorm.protos.status import StatusError


class CodecError(StatusError, ValueError):
    """A codec could not be loaded or was given input it cannot take."""


class Codec(abc.ABC):
    """A neural audio codec with a residual vector quantizer.

    `encode` takes a waveform (any rate or channel count; it is converted to the
    codec's rate, mono) and returns int32 tokens [frames, num_levels] in
    [0, codebook_size); `decode` turns such tokens back into a float32 mono
    waveform at `sample_rate`, `samples_per_frame` samples per frame.
    """

    sample_rate: int
    frame_rate_hz: int
    num_levels: int
    codebook_size: int

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.frame_rate_hz

    @abc.abstractmethod
    def encode(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        """Tokens int32 [ceil(seconds * frame_rate_hz), num_levels]."""

    @abc.abstractmethod
    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Waveform float32 [frames * samples_per_frame] in [-1, 1]."""

    def check_tokens(self, tokens) -> np.ndarray:
        """`tokens` as int32 [frames, num_levels] in range, or a CodecError naming the problem."""
        array = np.asarray(tokens)
        if not np.issubdtype(array.dtype, np.integer):
            raise CodecError(f"tokens must be integers, got dtype {array.dtype}")
        if array.ndim != 2 or array.shape[1] != self.num_levels:
            raise CodecError(
                f"tokens must have shape [frames, {self.num_levels}], got {list(array.shape)}")
        if array.size and (array.min() < 0 or array.max() >= self.codebook_size):
            bad = array[(array < 0) | (array >= self.codebook_size)][0]
            raise CodecError(f"token {int(bad)} out of range [0, {self.codebook_size})")
        return array.astype(np.int32)
