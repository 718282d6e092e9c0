"""Objective audio measures: Whisper word and character error rates, mel-cepstral
distortion, speaker similarity (Resemblyzer) and DNSMOS. Models are imported lazily."""

from soundstorm.apps.evaluation.asr import (SpeechRecognizer, character_error_rate, normalise,
                                       word_error_rate)
from soundstorm.apps.evaluation.dnsmos import dnsmos
from soundstorm.apps.evaluation.spectral import mel_cepstral_distortion
from soundstorm.apps.evaluation.speaker import speaker_embedding, speaker_similarity

__all__ = ["SpeechRecognizer", "character_error_rate", "dnsmos", "mel_cepstral_distortion",
           "normalise", "speaker_embedding", "speaker_similarity", "word_error_rate"]
