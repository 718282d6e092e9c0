"""Audio in and out: any rate, channel count and sample format to float32 mono at a target rate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from soundstorm.runtime.codec.base import CodecError

# Integer PCM is scaled by the magnitude of its most negative value.
_INTEGER_FULL_SCALE = {np.dtype(np.int16): 2.0 ** 15, np.dtype(np.int32): 2.0 ** 31}


def to_mono(waveform, sample_rate: int, target_rate: int) -> np.ndarray:
    """float32 mono [samples] at `target_rate` from [samples] or [samples, channels].

    Accepts float (assumed in [-1, 1]), int16 and int32 PCM, and uint8 PCM
    (offset binary, as WAV stores it). Channels are averaged; the rate is
    changed with a polyphase filter (scipy's resample_poly).
    """
    array = np.asarray(waveform)
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise CodecError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if array.ndim not in (1, 2):
        raise CodecError(f"waveform must be [samples] or [samples, channels], got shape "
                         f"{list(array.shape)}")
    if array.ndim == 2 and array.shape[1] > array.shape[0]:
        raise CodecError(f"waveform of shape {list(array.shape)} looks like [channels, samples]; "
                         "pass [samples, channels]")
    if array.dtype in _INTEGER_FULL_SCALE:
        array = array.astype(np.float32) / _INTEGER_FULL_SCALE[array.dtype]
    elif array.dtype == np.uint8:
        array = (array.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise CodecError("waveform contains NaN or infinite samples")
    else:
        raise CodecError(f"unsupported sample format {array.dtype}; use float, int16, int32 or uint8")
    if array.ndim == 2:
        array = array.mean(axis=1)
    if sample_rate != target_rate:
        divisor = math.gcd(int(sample_rate), int(target_rate))
        array = resample_poly(array, target_rate // divisor, sample_rate // divisor)
    return np.asarray(array, dtype=np.float32)


def read_wav(path) -> tuple[np.ndarray, int]:
    """(samples as stored, sample rate) of a WAV file, with a clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such audio file: {path}")
    try:
        sample_rate, samples = wavfile.read(path)
    except ValueError as error:
        raise CodecError(f"{path} is not a readable WAV file: {error}") from error
    return samples, int(sample_rate)


def write_wav(path, waveform: np.ndarray, sample_rate: int) -> Path:
    """Writes float32 samples in [-1, 1] as 16-bit PCM (clipped), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.round(np.clip(np.asarray(waveform, np.float32), -1.0, 1.0) * 32767).astype(np.int16)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        wavfile.write(file, sample_rate, pcm)
    partial.replace(path)
    return path
