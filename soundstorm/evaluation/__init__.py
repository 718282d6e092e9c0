"""Objective audio measures: mel-cepstral distortion, offline ASR word error rate, speaker
similarity (Resemblyzer) and DNSMOS. The last two import their models lazily."""

from soundstorm.evaluation.asr import SpeechRecognizer, word_error_rate
from soundstorm.evaluation.dnsmos import dnsmos
from soundstorm.evaluation.spectral import mel_cepstral_distortion
from soundstorm.evaluation.speaker import speaker_embedding, speaker_similarity

__all__ = ["SpeechRecognizer", "dnsmos", "mel_cepstral_distortion", "speaker_embedding",
           "speaker_similarity", "word_error_rate"]
