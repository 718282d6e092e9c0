"""Speaker similarity and DNSMOS on espeak-ng speech: the orderings the evaluation relies on."""

import numpy as np
import pytest

from runtime.codec import to_mono
from runtime.frontend import get_speaker, synthesize
from soundstorm.evaluation import dnsmos, speaker_similarity
from tests.conftest import OTHER_SPEECH_TEXT, SPEECH_TEXT


@pytest.fixture(scope="module")
def voices():
    """16 kHz: (voice A, sentence 1), (voice A, sentence 2), (voice B, sentence 2)."""
    def say(text, name):
        utterance = synthesize(text, get_speaker(name))
        return to_mono(utterance.waveform, utterance.sample_rate, 16_000)
    return say(SPEECH_TEXT, "us_female_1"), say(OTHER_SPEECH_TEXT, "us_female_1"), \
        say(OTHER_SPEECH_TEXT, "us_male_2")


def test_the_same_voice_is_more_similar_than_another_voice(voices):
    a1, a2, b2 = voices
    same, other = speaker_similarity(a1, a2, 16_000), speaker_similarity(a1, b2, 16_000)
    assert same > other + 0.1, (same, other)
    assert speaker_similarity(a1, a1, 16_000) == pytest.approx(1.0, abs=1e-5)


def test_dnsmos_rates_speech_above_noise(voices):
    speech = dnsmos(voices[0], 16_000)
    noise = dnsmos(np.random.default_rng(0).normal(0, 0.1, 48_000).astype(np.float32), 16_000)
    assert set(speech) == {"ovrl", "sig", "bak", "p808"}
    assert all(1.0 <= value <= 5.0 for value in speech.values())
    assert speech["ovrl"] > noise["ovrl"] + 0.5


def test_too_short_audio_is_refused():
    with pytest.raises(ValueError, match="at least 1 s"):
        dnsmos(np.zeros(8000, np.float32), 16_000)
    with pytest.raises(ValueError, match="at least 0.25 s"):
        speaker_similarity(np.zeros(100, np.float32), np.zeros(100, np.float32), 16_000)
