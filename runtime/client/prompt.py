"""Prompt assembly: audio files -> voice prompt tokens; text -> semantic tokens; transcripts."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import grpc
import numpy as np

from soundstorm.runtime.client.errors import ClientError, bad_input, client_errors

# The espeak voice whose timing turns text into semantic tokens (the model gives the
# speech the prompt's voice; only phoneme durations come from here).
TIMING_SPEAKER = "us_male_1"
_TURN = re.compile(r"^\s*(?P<speaker>[^:]{1,40}):\s*(?P<text>.*\S)\s*$")


@dataclasses.dataclass(frozen=True)
class VoicePrompt:
    """A voice prompt (Client.voice_prompt), the voice generated speech takes.

    Attributes:
      tokens: int32 [P, levels], the prompt audio's codec tokens; P (frames, at the codec's
        frame rate) a multiple of frames_per_token.
      semantic: int32 [P / frames_per_token], its transcript's semantic tokens, or the
        model's unknown id where there is no transcript.
    """

    tokens: np.ndarray
    semantic: np.ndarray

    @property
    def frames(self) -> int:
        """P: the prompt's length in codec frames."""
        return self.tokens.shape[0]


@client_errors()
def read_audio(path) -> tuple[np.ndarray, int]:
    """An audio file in any format libsndfile reads (wav, flac, ogg, ...).

    Returns:
      (samples float32 [samples] or [samples, channels] in [-1, 1], sample rate in Hz).
    Raises:
      ClientError: NOT_FOUND for a missing file, INVALID_ARGUMENT for one that is not
        audio or holds none.
    """
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


@client_errors()
def write_audio(path, waveform: np.ndarray, sample_rate: int) -> Path:
    """Writes float `waveform` [samples] (clipped to [-1, 1]) at `sample_rate` Hz in the format
    of the file's extension: 16-bit PCM where the format holds it (wav, flac, aiff, ...), else
    the format's own encoding (ogg: Vorbis, mp3: MPEG layer III). Written whole or not at all:
    a failed write leaves neither the file nor its temporary `.NAME.partial`.

    Returns:
      The path written.
    Raises:
      ClientError: INVALID_ARGUMENT for a path that is a folder, an extension soundfile
        cannot write, or a folder that is not writable (check_output_path); INTERNAL when
        the write itself fails (a full disk), naming the path.
    """
    import soundfile
    path = check_output_path(path)
    kind, subtype = _audio_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        soundfile.write(str(partial), np.clip(waveform, -1, 1), sample_rate, subtype=subtype,
                        format=kind)
        partial.replace(path)
    except (soundfile.LibsndfileError, OSError, ValueError) as error:
        raise ClientError(grpc.StatusCode.INTERNAL, f"{path}: writing the audio failed: {error}") \
            from None
    finally:
        partial.unlink(missing_ok=True)
    return path


def _audio_format(path: Path) -> tuple[str, str]:
    """(soundfile format, subtype) for `path`'s extension: 16-bit PCM where the format holds
    it, else the format's default encoding."""
    import soundfile
    kind = (path.suffix.lstrip(".") or "wav").upper()
    subtype = "PCM_16" if soundfile.check_format(kind, "PCM_16") else \
        soundfile.default_subtype(kind)
    return kind, subtype


def check_output_path(path) -> Path:
    """Raises InputError unless an audio file can be written at `path` (not a folder, a
    format soundfile writes, its folder writable or creatable): checked before synthesis, so
    minutes of work are not lost to a typo. The format is tried on 0.1 s of silence in
    memory, so an extension libsndfile lists but cannot encode here is refused now too."""
    import io

    import soundfile
    path = Path(path)
    if path.is_dir():
        raise bad_input(f"{path} is a folder; name the audio file to write, e.g. {path / 'out.wav'}")
    try:
        kind, subtype = _audio_format(path)
        soundfile.write(io.BytesIO(), np.zeros(1600, np.float32), 16000, subtype=subtype,
                        format=kind)
    except (soundfile.LibsndfileError, ValueError, TypeError):
        raise bad_input(f"{path}: cannot write {path.suffix or 'extensionless'} audio; use "
                        ".wav, .flac, .ogg or .mp3") from None
    folder = next((parent for parent in path.absolute().parents if parent.exists()), None)
    if folder is not None and not folder.is_dir():
        raise bad_input(f"{path}: {folder} is a file, not a folder")
    if folder is None or not os.access(folder, os.W_OK | os.X_OK):
        raise bad_input(f"{path}: the folder {folder} is not writable")
    if folder == path.absolute().parent:
        import tempfile
        try:  # a file made and removed: what only writing shows (/proc, a read-only mount)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise bad_input(f"{path}: cannot create a file in {folder} ({error.strerror})") \
                from None
    return path


def parse_transcript(text: str) -> list[tuple[str, str]]:
    """A dialogue transcript, lines "SPEAKER: text", as [(speaker, text)] in order; blank lines
    are skipped. A speaker name is 1 to 40 characters without ":".

    Raises:
      ClientError: INVALID_ARGUMENT naming the first line that is not "SPEAKER: text", or
        for a transcript without turns.
    """
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
