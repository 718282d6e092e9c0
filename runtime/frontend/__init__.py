"""Text frontend: English text -> espeak-ng audio with phoneme spans -> semantic tokens.

Pure numpy + ctypes + stdlib; nothing here imports JAX or TensorFlow.
"""

from soundstorm.runtime.frontend.errors import FrontendError
from soundstorm.runtime.frontend.espeak import Utterance, espeak_version, synthesize
from soundstorm.runtime.frontend.normalize import normalize_text
from soundstorm.runtime.frontend.semantic import lost_phonemes, lost_spans, semantic_tokens, text_to_semantic
from soundstorm.runtime.frontend.spans import SILENCE_SYMBOL, PhonemeSpan
from soundstorm.runtime.frontend.speakers import (ENGLISH_VOICES, SPEAKERS, VARIANTS, Speaker, generated_speaker,
                                      get_speaker)
from soundstorm.runtime.frontend.text_check import MAX_DOCUMENT_CHARS, MAX_TEXT_CHARS
from soundstorm.runtime.frontend.vocabulary import PhonemeVocabulary, load_vocabulary

__all__ = [
    "ENGLISH_VOICES", "MAX_DOCUMENT_CHARS", "MAX_TEXT_CHARS", "SILENCE_SYMBOL", "SPEAKERS", "FrontendError",
    "PhonemeSpan", "PhonemeVocabulary", "Speaker", "Utterance", "VARIANTS", "espeak_version",
    "generated_speaker", "get_speaker",
    "load_vocabulary", "lost_phonemes", "normalize_text", "lost_spans", "semantic_tokens", "synthesize", "text_to_semantic",
]
