"""Offline speech recognition (pocketsphinx's bundled US English model) and word error rate.

Two language models: pocketsphinx's general US English one, and optionally a
JSGF grammar of the task's language (the corpus sentence generator's
templates and word lists). espeak-ng's voices are far from the speech the
acoustic model was trained on, so with the general model even the raw
espeak-ng audio scores a high word error rate; the grammar removes the
language model's share of errors, leaving the acoustic evidence to decide
between the domain's words: a sharper intelligibility measure.
"""

from __future__ import annotations

import re

import numpy as np

ASR_SAMPLE_RATE = 16_000
# espeak-ng writes exact digital silence between words, which throws
# pocketsphinx's feature normalisation off (it recognises the codec's output,
# which has a noise floor, better than the clean original). A fixed, seeded
# dither at -80 dBFS levels the field for every signal compared.
DITHER_AMPLITUDE = 1e-4
DITHER_SEED = 0
_PCM_SCALE = 32767


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation: what a recogniser's output is compared on."""
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by edit distance."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        raise ValueError("word_error_rate needs a reference with at least one word")
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1] / len(ref)


class SpeechRecognizer:
    """Transcribes 16 kHz mono float waveforms; each call is a fresh utterance.

    `grammar`: a JSGF grammar (text) the transcripts must belong to; None uses
    pocketsphinx's general English language model.
    """

    def __init__(self, grammar: str | None = None):
        from pocketsphinx import Decoder
        self._decoder = Decoder(samprate=ASR_SAMPLE_RATE, loglevel="FATAL")
        if grammar is not None:
            self._decoder.add_jsgf_string("grammar", grammar)
            self._decoder.activate_search("grammar")

    def transcribe(self, waveform: np.ndarray) -> str:
        noise = np.random.default_rng(DITHER_SEED).standard_normal(len(waveform))
        dithered = np.clip(np.asarray(waveform) + DITHER_AMPLITUDE * noise, -1.0, 1.0)
        pcm = (dithered * _PCM_SCALE).astype(np.int16).tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""
