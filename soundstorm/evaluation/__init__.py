"""Objective audio quality: mel-cepstral distortion and an offline ASR word error rate."""

from soundstorm.evaluation.asr import SpeechRecognizer, word_error_rate
from soundstorm.evaluation.spectral import mel_cepstral_distortion

__all__ = ["SpeechRecognizer", "mel_cepstral_distortion", "word_error_rate"]
