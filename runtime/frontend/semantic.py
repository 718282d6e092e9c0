"""Semantic tokens from phoneme spans: the phoneme under the centre of each semantic frame.

SoundStorm conditions on one semantic token per frame of a fixed rate. Here a
token is the vocabulary id of the phoneme that espeak was saying at the centre
of the frame (frame k covers [k / rate, (k + 1) / rate) seconds), so the token
sequence is aligned with the audio by construction. A phoneme shorter than a
frame may cover no frame centre and vanish from the sequence: lost_phonemes
measures how often that happens at a rate (benchmarks/phoneme_rate.py).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np

from soundstorm.runtime.frontend.errors import FrontendError
from soundstorm.runtime.frontend.normalize import normalize_text
from soundstorm.runtime.frontend.espeak import Utterance, synthesize
from soundstorm.runtime.frontend.spans import PhonemeSpan
from soundstorm.runtime.frontend.text_check import MAX_TEXT_CHARS
from soundstorm.runtime.frontend.speakers import Speaker
from soundstorm.runtime.frontend.vocabulary import PhonemeVocabulary

TOKEN_DTYPE = np.int32


def _checked_rate(rate_hz: float) -> Fraction:
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, (int, float)) or not rate_hz > 0:
        raise FrontendError(f"semantic rate must be a positive number of Hz, got {rate_hz!r}")
    return Fraction(rate_hz)


def num_semantic_frames(num_samples: int, sample_rate: int, rate_hz: float) -> int:
    """ceil(duration * rate), computed exactly (no float rounding at whole frames)."""
    return math.ceil(Fraction(num_samples, sample_rate) * _checked_rate(rate_hz))


def frame_centres(num_frames: int, sample_rate: int, rate_hz: float) -> np.ndarray:
    """Sample positions (float64) of the centres of frames 0..num_frames-1."""
    samples_per_frame = float(Fraction(sample_rate) / _checked_rate(rate_hz))
    return (np.arange(num_frames, dtype=np.float64) + 0.5) * samples_per_frame


def _span_arrays(utterance: Utterance) -> tuple[np.ndarray, np.ndarray]:
    starts = np.array([span.start for span in utterance.phonemes], dtype=np.int64)
    ends = np.array([span.end for span in utterance.phonemes], dtype=np.int64)
    return starts, ends


def semantic_tokens(utterance: Utterance, vocabulary: PhonemeVocabulary, rate_hz: float,
                    num_frames: int | None = None) -> np.ndarray:
    """int32 [S]: the vocabulary id of the phoneme at each frame centre.

    S = ceil(duration * rate_hz) unless `num_frames` is given; frames whose
    centre lies past the end of the audio are silence, so a larger num_frames
    pads with the silence id and a smaller one cuts. Every span's symbol must
    be in the vocabulary, even one that no frame centre lands on.
    """
    if num_frames is None:
        num_frames = num_semantic_frames(utterance.waveform.size, utterance.sample_rate, rate_hz)
    elif isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) \
            or num_frames < 0:
        raise FrontendError(f"num_frames must be a non-negative int or None, got {num_frames!r}")
    span_ids = np.array([vocabulary.id(span.symbol) for span in utterance.phonemes]
                        + [vocabulary.silence_id], dtype=TOKEN_DTYPE)
    _, ends = _span_arrays(utterance)
    centres = frame_centres(int(num_frames), utterance.sample_rate, rate_hz)
    # Spans are contiguous, so the span holding a centre is the first whose end lies past
    # it (zero-length spans are skipped by this too); index len(spans) = past the audio.
    span_index = np.searchsorted(ends, centres, side="right")
    return span_ids[span_index]


def lost_spans(utterance: Utterance, rate_hz: float) -> tuple[PhonemeSpan, ...]:
    """The non-silence spans that hold no frame centre at `rate_hz`: absent from the tokens."""
    num_frames = num_semantic_frames(utterance.waveform.size, utterance.sample_rate, rate_hz)
    centres = frame_centres(num_frames, utterance.sample_rate, rate_hz)
    starts, ends = _span_arrays(utterance)
    # Number of centres c with start <= c < end, per span.
    centres_inside = (np.searchsorted(centres, ends, side="left")
                      - np.searchsorted(centres, starts, side="left"))
    return tuple(span for span, inside in zip(utterance.phonemes, centres_inside)
                 if inside == 0 and not span.is_silence)


def lost_phonemes(utterance: Utterance, rate_hz: float) -> tuple[int, int]:
    """(non-silence spans holding no frame centre, all non-silence spans) at `rate_hz`."""
    num_speech = sum(not span.is_silence for span in utterance.phonemes)
    return len(lost_spans(utterance, rate_hz)), num_speech


def text_to_semantic(text: str, speaker: Speaker, vocabulary: PhonemeVocabulary,
                     rate_hz: float) -> np.ndarray:
    """Semantic tokens (int32 [frames]) of a user's `text` said by `speaker`: the text is
    normalized first (normalize.py: typography, line breaks, numbers and symbols as words),
    then said by espeak in pieces of whole sentences of at most MAX_TEXT_CHARS characters
    (sentence_pieces), whose tokens follow each other. Raises FrontendError for text over
    MAX_DOCUMENT_CHARS, with nothing to say, or with a character without a reading."""
    return np.concatenate([semantic_tokens(synthesize(piece, speaker), vocabulary, rate_hz)
                           for piece in sentence_pieces(normalize_text(text))])


def sentence_pieces(text: str, max_chars: int = MAX_TEXT_CHARS) -> list[str]:
    """Normalized `text` cut into pieces of at most `max_chars` characters for one espeak
    synthesis each: whole sentences packed together where they fit; a longer sentence is
    cut after a comma or semicolon, and a clause still too long between words."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    return _pack([part for sentence in sentences for part in _parts(sentence, max_chars)],
                 max_chars, " ")


def _pack(pieces: list[str], max_chars: int, separator: str) -> list[str]:
    """Consecutive pieces joined by `separator` into as few strings of at most max_chars as
    they go (a piece already longer stays alone)."""
    packed: list[str] = []
    for piece in pieces:
        if packed and len(packed[-1]) + len(separator) + len(piece) <= max_chars:
            packed[-1] += separator + piece
        else:
            packed.append(piece)
    return packed


def _parts(sentence: str, max_chars: int) -> list[str]:
    """A sentence in parts of at most max_chars: at clause marks, then at spaces, then a
    hyphenated word at its hyphens; a word still longer is a FrontendError (no language has
    one: it is a pasted hash, a base64 blob, a run of letters)."""
    if len(sentence) <= max_chars:
        return [sentence]
    words = []
    for clause in re.split(r"(?<=[,;:])\s+", sentence):
        for word in clause.split(" ") if len(clause) > max_chars else [clause]:
            words += (_pack(re.split(r"(?<=-)", word), max_chars, "") if len(word) > max_chars
                      else [word])
    for word in words:
        if len(word) > max_chars:
            raise FrontendError(f"a word of {len(word)} characters ({word[:20]!r}...): "
                                f"nothing longer than {max_chars} can be said as one word")
    return _pack(words, max_chars, " ")
