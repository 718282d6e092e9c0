"""Lyra v2 (Google's public SoundStream) as a `Codec`, over its three TFLite models.

The encoder and the decoder (lyragan) are streaming models with internal
state: frames must go in order and every stream starts from a fresh state.
`reset_all_variables` is not enough (measured: after another stream, a reset
encoder still gives different codes for the first frames), so every stream
gets new interpreters, built from model bytes read once (about 0.2 ms each).
`tests/test_codec.py` pins that a stream's tokens do not depend on what the
codec encoded before. The quantizer is stateless.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import grpc
import numpy as np

from soundstorm.runtime.codec.audio import to_mono
from soundstorm.runtime.codec.base import Codec, CodecError
from soundstorm.runtime.codec.grouping import group_levels, ungroup_levels

# The files as published in github.com/google/lyra, lyra/model_coeffs, release 1.3.2.
LYRA_COMMIT = "47698dadf0010abff6a848e02642f55f806d4842"
LYRA_SHA256 = {
    "soundstream_encoder.tflite": "237da0b16226fb0a68d49551c81bebf614e42142af72764448359f68581e88f1",
    "quantizer.tflite": "841ee05989687d32d1f616a8ad1419fc7eda37599d3c05c7cf5a0d60ccf8ac5c",
    "lyragan.tflite": "50e7839cda4f30599a3a34cfaddcd9c98449b049eee884e1a74295780448ad06",
}
CODEC_DIR_ENV = "SOUNDSTORM_CODEC_DIR"

LYRA_SAMPLE_RATE = 16_000
LYRA_FRAME_RATE_HZ = 50
LYRA_MAX_LEVELS = 46
LYRA_CODES_PER_LEVEL = 16
# The quantizer's fixed index tensor marks levels past num_quantizers with -1.
_UNUSED_LEVEL = -1
_FEATURE_DIM = 64

# Chosen by benchmarks/codec_quality.py (see docs/codec.md): 16 Lyra levels in
# pairs, i.e. 8 SoundStorm levels of 256 codes.
DEFAULT_LYRA_LEVELS = 16
DEFAULT_GROUP_SIZE = 2


def user_codec_dir() -> Path:
    """The per-user codec folder that `soundstorm codec fetch` fills by default: the
    platform's user data folder (platformdirs; ~/.local/share/soundstorm/codecs/lyra_v2 on
    Linux, $XDG_DATA_HOME respected)."""
    import platformdirs
    return platformdirs.user_data_path("soundstorm") / "codecs" / "lyra_v2"


def default_codec_dir() -> Path:
    """Where the codec's files are looked for: $SOUNDSTORM_CODEC_DIR; else, in a source
    checkout with the team's shared folder beside it (../shared/codecs/lyra_v2), that
    folder; else the per-user folder (user_codec_dir)."""
    if os.environ.get(CODEC_DIR_ENV):
        return Path(os.environ[CODEC_DIR_ENV])
    checkout = Path(__file__).resolve().parents[2]
    shared = checkout.parent / "shared" / "codecs" / "lyra_v2"
    if (checkout / "pyproject.toml").is_file() and shared.is_dir():
        return shared
    return user_codec_dir()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_codec_dir(codec_dir: Path) -> None:
    """Raises CodecError unless all three files are present with the pinned checksums:
    NOT_FOUND for a missing file (the message says how to fetch it), DATA_LOSS for one with
    another checksum."""
    for name, expected in LYRA_SHA256.items():
        path = codec_dir / name
        if not path.is_file():
            raise CodecError(
                f"Lyra model file missing: {path}. Point ${CODEC_DIR_ENV} at a folder holding "
                f"{', '.join(LYRA_SHA256)}, or fetch them: soundstorm codec fetch "
                f"(into {user_codec_dir()}, where they are found by default)",
                grpc.StatusCode.NOT_FOUND)
        actual = sha256_of(path)
        if actual != expected:
            raise CodecError(f"{path} has sha256 {actual}, expected {expected} (Lyra commit "
                             f"{LYRA_COMMIT}): the file is corrupt or a different version",
                             grpc.StatusCode.DATA_LOSS)


def _interpreter(model: bytes):
    # LiteRT is TFLite's maintained home; tf.lite.Interpreter is deprecated.
    from ai_edge_litert.interpreter import Interpreter
    return Interpreter(model_content=model)


class LyraCodec(Codec):
    """Lyra v2 with `lyra_levels` RVQ levels, grouped `group_size` at a time into tokens."""

    sample_rate = LYRA_SAMPLE_RATE
    frame_rate_hz = LYRA_FRAME_RATE_HZ

    def __init__(self, codec_dir=None, lyra_levels: int = DEFAULT_LYRA_LEVELS,
                 group_size: int = DEFAULT_GROUP_SIZE):
        if not 1 <= lyra_levels <= LYRA_MAX_LEVELS:
            raise CodecError(f"lyra_levels must lie in [1, {LYRA_MAX_LEVELS}], got {lyra_levels}")
        if group_size < 1 or lyra_levels % group_size:
            raise CodecError(
                f"group_size must divide lyra_levels ({lyra_levels}), got {group_size}")
        self.codec_dir = Path(codec_dir) if codec_dir is not None else default_codec_dir()
        check_codec_dir(self.codec_dir)
        self.lyra_levels = lyra_levels
        self.group_size = group_size
        self.num_levels = lyra_levels // group_size
        self.codebook_size = LYRA_CODES_PER_LEVEL ** group_size
        # The interpreter keeps a reference into these bytes: they live as long as the codec.
        self._encoder_model = (self.codec_dir / "soundstream_encoder.tflite").read_bytes()
        self._decoder_model = (self.codec_dir / "lyragan.tflite").read_bytes()
        self._quantizer_model = (self.codec_dir / "quantizer.tflite").read_bytes()
        quantizer = _interpreter(self._quantizer_model)
        self._quantize = quantizer.get_signature_runner("encode")
        self._dequantize = quantizer.get_signature_runner("decode")
        # The quantizer interpreter is shared: one stream at a time per codec.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"LyraCodec(lyra_levels={self.lyra_levels}, group_size={self.group_size}: "
                f"{self.num_levels} levels x {self.codebook_size} codes)")

    def encode(self, waveform, sample_rate: int) -> np.ndarray:
        audio = to_mono(waveform, sample_rate, self.sample_rate)
        if audio.size == 0:
            raise CodecError("cannot encode an empty waveform")
        num_frames = -(-audio.size // self.samples_per_frame)
        audio = np.pad(audio, (0, num_frames * self.samples_per_frame - audio.size))
        frames = audio.reshape(num_frames, 1, self.samples_per_frame)
        codes = np.empty((num_frames, self.lyra_levels), np.int32)
        levels = np.int32(self.lyra_levels)
        encode_frame = _interpreter(self._encoder_model).get_signature_runner()
        with self._lock:
            for index, frame in enumerate(frames):
                features = encode_frame(input_audio=frame)["output_0"]
                quantized = self._quantize(input_frames=features, num_quantizers=levels)
                codes[index] = quantized["output_0"].reshape(-1)[:self.lyra_levels]
        return group_levels(codes, self.group_size, LYRA_CODES_PER_LEVEL)

    def decode(self, tokens) -> np.ndarray:
        return self.stream_decoder()(tokens)

    def stream_decoder(self):
        """A decoder for one stream taken in pieces: it keeps the decoder's state between
        calls, so decoding pieces one after another gives exactly the audio of decoding
        them joined (no restart transient at the seams of long-form or streamed audio)."""
        decode_frame = _interpreter(self._decoder_model).get_signature_runner()

        def decode(tokens) -> np.ndarray:
            tokens = self.check_tokens(tokens)
            codes = ungroup_levels(tokens, self.group_size, LYRA_CODES_PER_LEVEL)
            indices = np.full((tokens.shape[0], LYRA_MAX_LEVELS, 1, 1), _UNUSED_LEVEL, np.int32)
            indices[:, :self.lyra_levels, 0, 0] = codes
            waveform = np.empty((tokens.shape[0], self.samples_per_frame), np.float32)
            with self._lock:
                for index, frame_indices in enumerate(indices):
                    features = self._dequantize(encoding_indices=frame_indices)["output_0"]
                    waveform[index] = decode_frame(input_audio=features)["output_0"][0]
            return np.clip(waveform.reshape(-1), -1.0, 1.0)
        return decode
