"""Voice consistency: speaker-embedding cosine similarity (Resemblyzer's GE2E encoder).

Resemblyzer ships its encoder weights in the package, so this runs offline. Its
embeddings are L2-normalised, so the cosine similarity is a dot product.
"""

from __future__ import annotations

import functools

import numpy as np

# Resemblyzer's encoder works on 16 kHz audio.
ENCODER_SAMPLE_RATE = 16_000


@functools.lru_cache(maxsize=1)
def _encoder():
    from resemblyzer import VoiceEncoder
    return VoiceEncoder("cpu", verbose=False)


def speaker_embedding(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 [256], unit norm: who is speaking (not what is said)."""
    from resemblyzer import preprocess_wav
    from soundstorm.runtime.codec import to_mono
    audio = to_mono(waveform, sample_rate, ENCODER_SAMPLE_RATE)
    if audio.size < ENCODER_SAMPLE_RATE // 4:
        raise ValueError(f"need at least 0.25 s of audio for a speaker embedding, got "
                         f"{audio.size / ENCODER_SAMPLE_RATE:.3f} s")
    # preprocess_wav normalises loudness and trims long silences (with webrtcvad).
    return _encoder().embed_utterance(preprocess_wav(audio, ENCODER_SAMPLE_RATE))


def speaker_similarity(a: np.ndarray, b: np.ndarray, sample_rate: int) -> float:
    """Cosine similarity of the speaker embeddings of two waveforms at one rate."""
    return float(speaker_embedding(a, sample_rate) @ speaker_embedding(b, sample_rate))
