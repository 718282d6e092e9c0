"""Speaker similarity, DNSMOS and mel-cepstral distortion: textbook values on known vectors and
spectra, and on espeak-ng speech the orderings the evaluation relies on."""

import math

import numpy as np
import pytest

from soundstorm.runtime.codec import to_mono
from soundstorm.runtime.frontend import get_speaker, synthesize
from soundstorm.apps.evaluation import (dnsmos, mel_cepstral_distortion, speaker_embedding,
                                   speaker_similarity)
from soundstorm.apps.evaluation import spectral, speaker
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
    # Unit-norm embeddings, so the dot product speaker_similarity takes is the cosine.
    for audio in (a1, b2):
        assert np.linalg.norm(speaker_embedding(audio, 16_000)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("u, v, cosine", [
    ((3, 4), (4, 3), 24 / 25),
    ((1, 0), (0, 1), 0.0),  # orthogonal
    ((0.6, 0.8), (-0.6, -0.8), -1.0),  # opposite
    ((1, 0), (math.sqrt(0.5), math.sqrt(0.5)), math.sqrt(0.5)),  # 45 degrees
])
def test_speaker_similarity_is_the_cosine_of_the_embeddings(monkeypatch, u, v, cosine):
    unit = {name: np.array(vector, np.float32) / np.linalg.norm(vector)
            for name, vector in (("u", u), ("v", v))}
    monkeypatch.setattr(speaker, "speaker_embedding", lambda audio, rate: unit[audio])
    assert speaker_similarity("u", "v", 16_000) == pytest.approx(cosine, abs=1e-6)
    assert speaker_similarity("v", "u", 16_000) == pytest.approx(cosine, abs=1e-6)
    assert speaker_similarity("u", "u", 16_000) == pytest.approx(1.0, abs=1e-6)


# Mel-cepstral distortion: (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2), averaged over the
# reference's non-silent frames, c_d the orthonormal DCT-II of the log mel amplitudes, d >= 1.

def _dct_basis(k: int, n: int = spectral.NUM_MEL_BANDS) -> np.ndarray:
    """The k-th orthonormal DCT-II basis vector over n mel bands, written out."""
    scale = math.sqrt((1 if k == 0 else 2) / n)
    return np.array([scale * math.cos(math.pi * k * (2 * i + 1) / (2 * n)) for i in range(n)])


def test_mel_cepstral_distortion_of_known_spectra(monkeypatch):
    frames = 6
    reference = np.full((frames, spectral.NUM_MEL_BANDS), 1.0)
    # Log amplitude (ln of power / 2) moved by 0.5 along cepstral coefficient 1 and by 0.3
    # along coefficient 3: a distance of sqrt(0.5^2 + 0.3^2) in every frame.
    degraded = reference * np.exp(2 * (0.5 * _dct_basis(1) + 0.3 * _dct_basis(3)))
    spectra = {"ref": reference, "deg": degraded}
    monkeypatch.setattr(spectral, "mel_power_spectrum", lambda audio, rate: spectra[audio[0]])
    expected = 10 / math.log(10) * math.sqrt(2 * (0.5 ** 2 + 0.3 ** 2))  # 3.581
    assert mel_cepstral_distortion(["ref"], ["deg"], 16_000) == pytest.approx(expected, rel=1e-9)
    assert mel_cepstral_distortion(["deg"], ["ref"], 16_000) == pytest.approx(expected, rel=1e-9)
    # A gain (all bands x 7) and a change of c0 (loudness) cost nothing.
    spectra["deg"] = reference * 7 * np.exp(2 * 0.9 * _dct_basis(0))
    assert mel_cepstral_distortion(["ref"], ["deg"], 16_000) == pytest.approx(0.0, abs=1e-9)
    # Coefficients past NUM_COEFFICIENTS are not counted.
    spectra["deg"] = reference * np.exp(2 * 0.5 * _dct_basis(spectral.NUM_COEFFICIENTS + 1))
    assert mel_cepstral_distortion(["ref"], ["deg"], 16_000) == pytest.approx(0.0, abs=1e-9)
    # The mean is over frames: the difference in half the frames gives half the distortion.
    bands = spectral.NUM_MEL_BANDS
    spectra["deg"] = np.vstack([reference[:3] * np.exp(2 * 0.5 * _dct_basis(1)), reference[3:]])
    assert mel_cepstral_distortion(["ref"], ["deg"], 16_000) == pytest.approx(
        10 / math.log(10) * math.sqrt(2 * 0.5 ** 2) / 2, rel=1e-9)
    # Frames of the reference 50 dB below its loudest are silence: differences there are
    # left out, however large.
    spectra["ref"] = reference * np.r_[np.ones(3), np.full(3, 1e-5)][:, None]
    spectra["deg"] = spectra["ref"] * np.vstack(
        [np.ones((3, bands)), np.tile(np.exp(2 * 3.0 * _dct_basis(2)), (3, 1))])
    assert mel_cepstral_distortion(["ref"], ["deg"], 16_000) == pytest.approx(0.0, abs=1e-9)


def test_mel_cepstral_distortion_of_known_signals():
    rate = 16_000
    t = np.arange(rate // 2) / rate
    tone = np.sin(2 * np.pi * 440 * t)
    noise = np.random.default_rng(0).normal(0, 0.1, t.size)
    assert mel_cepstral_distortion(tone, tone, rate) == 0.0
    assert mel_cepstral_distortion(noise, 0.25 * noise, rate) == pytest.approx(0.0, abs=1e-6)
    # The longer signal is cut to the shorter one.
    assert mel_cepstral_distortion(noise, np.r_[noise, tone], rate) == 0.0
    # A tone against noise is far apart, a tone against a slightly detuned tone much closer.
    detuned = np.sin(2 * np.pi * 450 * t)
    assert mel_cepstral_distortion(tone, noise, rate) > \
        3 * mel_cepstral_distortion(tone, detuned, rate) > 0
    assert spectral._hz_to_mel(700.0) == pytest.approx(2595 * math.log10(2))
    assert spectral._mel_to_hz(spectral._hz_to_mel(1234.5)) == pytest.approx(1234.5)


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
