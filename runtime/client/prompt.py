"""Prompt assembly: audio files -> voice prompt tokens; text -> semantic tokens; transcripts."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from runtime.client.errors import bad_input

# The espeak voice whose timing turns text into semantic tokens (the model gives the
# speech the prompt's voice; only phoneme durations come from here).
TIMING_SPEAKER = "us_male_1"
_TURN = re.compile(r"^\s*(?P<speaker>[^:]{1,40}):\s*(?P<text>.*\S)\s*$")


@dataclasses.dataclass(frozen=True)
class VoicePrompt:
    tokens: np.ndarray    # int32 [P, Q] codec tokens, P a multiple of frames_per_token
    semantic: np.ndarray  # int32 [P / frames_per_token]: transcript tokens or the unknown id

    @property
    def frames(self) -> int:
        return self.tokens.shape[0]


def read_audio(path) -> tuple[np.ndarray, int]:
    """Any format libsndfile reads (wav, flac, ogg, ...): float32 [samples(, channels)], rate."""
    import soundfile
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no audio file at {path}")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise bad_input(f"cannot read audio from {path}: {error}") from None
    if samples.size == 0:
        raise bad_input(f"{path} holds no audio")
    return samples, rate


def write_audio(path, waveform: np.ndarray, sample_rate: int) -> Path:
    """16-bit PCM (wav, or flac by extension), written whole or not at all."""
    import soundfile
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    soundfile.write(str(partial), np.clip(waveform, -1, 1), sample_rate, subtype="PCM_16",
                    format=(path.suffix.lstrip(".") or "wav").upper())
    partial.replace(path)
    return path


def parse_transcript(text: str) -> list[tuple[str, str]]:
    """`A: hello` lines -> [(speaker, text)]; blank lines are skipped."""
    turns = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _TURN.match(line)
        if match is None:
            raise bad_input(f"transcript line {number} is not 'SPEAKER: text': {line.strip()!r}")
        turns.append((match.group("speaker").strip(), match.group("text")))
    if not turns:
        raise bad_input("the transcript has no turns")
    return turns
