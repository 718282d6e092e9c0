"""Mel-cepstral distortion (MCD) between two waveforms of the same utterance.

MFCC-style mel cepstra (a mel filterbank over the power spectrum, floored, log amplitude, DCT),
coefficients 1..num_coefficients (c0, the loudness, is left out as is usual),
and MCD = (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2) averaged over the
frames where the reference is not silent. Values are in dB-like units: about
2-4 for a good codec, 8+ for unrelated speech of the same voice. Not the
SPTK mel-generalized cepstrum, so compare figures only with figures from here.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct, rfft
from scipy.signal import get_window

FRAME_SECONDS = 0.025
HOP_SECONDS = 0.010
NUM_MEL_BANDS = 40
NUM_COEFFICIENTS = 13
# Frames whose energy is this far below the loudest frame count as silence.
SILENCE_BELOW_PEAK_DB = 40.0
# Mel band powers are floored this far below each signal's own loudest band, so
# that digital silence (espeak writes exact zeros) and a codec's faint noise
# floor do not count as a large spectral difference, and gain does not matter.
MEL_FLOOR_BELOW_PEAK_DB = 60.0
_MCD_SCALE = 10.0 / np.log(10.0) * np.sqrt(2.0)
_POWER_FLOOR = 1e-10


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, fft_size: int, num_bands: int = NUM_MEL_BANDS) -> np.ndarray:
    """Triangular filters [num_bands, fft_size // 2 + 1], equally spaced on the mel scale."""
    edges_hz = _mel_to_hz(np.linspace(0.0, _hz_to_mel(sample_rate / 2), num_bands + 2))
    bin_hz = np.linspace(0.0, sample_rate / 2, fft_size // 2 + 1)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz - lower) / (centre - lower)
    falling = (upper - bin_hz) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def _frames(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    frame = int(round(FRAME_SECONDS * sample_rate))
    hop = int(round(HOP_SECONDS * sample_rate))
    padded = np.pad(np.asarray(waveform, np.float64), (0, max(0, frame - len(waveform))))
    count = 1 + (len(padded) - frame) // hop
    index = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    return padded[index] * get_window("hann", frame)


def mel_power_spectrum(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mel band powers [frames, NUM_MEL_BANDS] of Hann-windowed frames."""
    frames = _frames(waveform, sample_rate)
    fft_size = 1 << (frames.shape[1] - 1).bit_length()
    power = np.abs(rfft(frames, fft_size, axis=1)) ** 2
    return power @ mel_filterbank(sample_rate, fft_size).T


def mel_cepstrum(mel_power: np.ndarray, floor: float) -> np.ndarray:
    """Cepstra [frames, NUM_COEFFICIENTS] without c0, of the log amplitude (ln of power / 2)."""
    log_amplitude = 0.5 * np.log(np.maximum(mel_power, floor))
    return dct(log_amplitude, type=2, norm="ortho", axis=1)[:, 1:NUM_COEFFICIENTS + 1]


def _floor(mel_power: np.ndarray) -> float:
    return max(float(mel_power.max()), _POWER_FLOOR) * 10.0 ** (-MEL_FLOOR_BELOW_PEAK_DB / 10.0)


def mel_cepstral_distortion(reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> float:
    """MCD over the reference's non-silent frames; the longer signal is cut to the shorter."""
    length = min(len(reference), len(degraded))
    if length == 0:
        raise ValueError("mel_cepstral_distortion needs two non-empty waveforms")
    reference_power = mel_power_spectrum(reference[:length], sample_rate)
    degraded_power = mel_power_spectrum(degraded[:length], sample_rate)
    reference_cepstra = mel_cepstrum(reference_power, _floor(reference_power))
    degraded_cepstra = mel_cepstrum(degraded_power, _floor(degraded_power))
    energy_db = 10.0 * np.log10(reference_power.sum(axis=1) + _POWER_FLOOR)
    voiced = energy_db > energy_db.max() - SILENCE_BELOW_PEAK_DB
    distance = np.sqrt(((reference_cepstra - degraded_cepstra) ** 2).sum(axis=1))
    return float(_MCD_SCALE * distance[voiced].mean())
