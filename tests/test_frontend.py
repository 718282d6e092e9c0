"""Text frontend: espeak-ng synthesis, phoneme spans, vocabulary and semantic tokens."""

from __future__ import annotations

import difflib
import math
import subprocess
import sys
import threading

import numpy as np
import pytest

from soundstorm.runtime.frontend import (SILENCE_SYMBOL, SPEAKERS, FrontendError, PhonemeSpan,
                              PhonemeVocabulary, Speaker, Utterance, VARIANTS, generated_speaker,
                              get_speaker, load_vocabulary,
                              lost_phonemes, semantic_tokens, synthesize, text_to_semantic)
from soundstorm.runtime.frontend.vocabulary import vocabulary_path

# Speakers whose variant has no echo: their pauses are digital silence.
ECHO_FREE_SPEAKERS = ("us_neutral_1", "us_male_1", "gb_male_1", "scottish_male_1")
TWO_CLAUSES = "The first part ends here, and the second part follows. Then comes a third sentence."
VOWELS = {"a", "a#", "aa", "A:", "A@", "E", "e@", "eI", "I", "I2", "i", "i:", "i@", "0", "O:",
          "O@", "o@", "oU", "OI", "U", "u:", "U@", "V", "@", "@2", "3", "3:", "aI", "aU"}
LONG_PAUSE_S = 0.05
# Silence may hold a variant's echo tail, but far below speech.
MAX_SILENCE_TO_VOWEL_RMS = 0.1
SEMANTIC_RATES_HZ = (12.5, 25, 50)
SAME_VOICE_MIN_PHONEME_AGREEMENT = 0.9
VOCABULARY_HEADER = ("# soundstorm phoneme vocabulary v1: espeak-ng 1.51 mnemonic phoneme names "
                     "of the English voices; one symbol per line; line order = token id")


def speech_symbols(utterance: Utterance) -> list[str]:
    return [span.symbol for span in utterance.phonemes if not span.is_silence]


def rms(waveform: np.ndarray, span: PhonemeSpan) -> float:
    return float(np.sqrt(np.mean(waveform[span.start:span.end].astype(np.float64) ** 2)))


@pytest.fixture(scope="module")
def vocabulary():
    return load_vocabulary("v1")


def test_hello_gives_the_expected_phonemes():
    utterance = synthesize("hello", get_speaker("us_neutral_1"))
    assert utterance.sample_rate == 22050
    assert utterance.waveform.dtype == np.float32 and utterance.waveform.ndim == 1
    assert np.abs(utterance.waveform).max() <= 1.0
    assert speech_symbols(utterance) == ["h", "@", "l", "oU"]
    assert utterance.phonemes[0].symbol == SILENCE_SYMBOL


@pytest.mark.parametrize("speaker_name", ["us_neutral_1", "gb_female_1", "scottish_male_1"])
def test_spans_are_contiguous_and_cover_the_waveform(speaker_name):
    utterance = synthesize(TWO_CLAUSES, get_speaker(speaker_name))
    spans = utterance.phonemes
    assert spans[0].start == 0 and spans[-1].end == utterance.waveform.size
    for span, following in zip(spans, spans[1:]):
        assert span.start <= span.end == following.start
        assert not (span.is_silence and following.is_silence), "neighbouring silences merge"


def test_phoneme_timing_matches_audio_energy():
    """Pauses are quiet and vowels loud in every speaker; without echo the boundaries are exact."""
    for speaker in SPEAKERS.values():
        utterance = synthesize(TWO_CLAUSES, speaker)
        waveform, rate = utterance.waveform, utterance.sample_rate
        pauses = [s for s in utterance.phonemes if s.is_silence and s.end - s.start > LONG_PAUSE_S * rate]
        vowels = [s for s in utterance.phonemes if s.symbol in VOWELS and s.end > s.start]
        assert len(pauses) >= 2 and len(vowels) >= 10, speaker.name  # comma and sentence end
        quietest_vowel = min(rms(waveform, span) for span in vowels)
        loudest_pause = max(rms(waveform, span) for span in pauses)
        assert loudest_pause < MAX_SILENCE_TO_VOWEL_RMS * quietest_vowel, speaker.name
        if speaker.name in ECHO_FREE_SPEAKERS:
            for pause in pauses:
                # espeak_EVENT.sample is exact: zeros exactly inside the pause, sound on both
                # sides of it, to the sample.
                assert not waveform[pause.start:pause.end].any(), speaker.name
                assert waveform[pause.start - 1] != 0, speaker.name
                if pause.end < waveform.size:
                    assert waveform[pause.end] != 0, speaker.name


def test_semantic_tokens_of_a_hand_checked_utterance(vocabulary):
    # 1 s at 1 kHz: frame centres at 10 Hz are 50, 150, ..., 950.
    spans = (PhonemeSpan("_", 0, 100), PhonemeSpan("h", 100, 130), PhonemeSpan("@", 130, 400),
             PhonemeSpan("l", 400, 400), PhonemeSpan("oU", 400, 900), PhonemeSpan("_", 900, 1000))
    utterance = Utterance(np.zeros(1000, np.float32), 1000, spans)
    expected = ["_", "@", "@", "@", "oU", "oU", "oU", "oU", "oU", "_"]
    tokens = semantic_tokens(utterance, vocabulary, 10)
    assert tokens.dtype == np.int32
    assert [vocabulary.symbol(int(token)) for token in tokens] == expected
    assert lost_phonemes(utterance, 10) == (2, 4)  # "h" is between centres, "l" has no length
    assert lost_phonemes(utterance, 50) == (1, 4)  # "h" holds the centre at 110
    assert len(semantic_tokens(utterance, vocabulary, 12.5)) == 13  # ceil(1 s * 12.5 Hz)
    padded = semantic_tokens(utterance, vocabulary, 10, num_frames=12)
    assert padded.tolist() == tokens.tolist() + [vocabulary.silence_id] * 2
    assert semantic_tokens(utterance, vocabulary, 10, num_frames=4).tolist() == tokens[:4].tolist()


@pytest.mark.parametrize("rate_hz", SEMANTIC_RATES_HZ)
def test_semantic_tokens_follow_the_spans_at_frame_centres(vocabulary, rate_hz):
    utterance = synthesize(TWO_CLAUSES, get_speaker("rp_female_1"))
    tokens = semantic_tokens(utterance, vocabulary, rate_hz)
    assert len(tokens) == math.ceil(utterance.waveform.size / utterance.sample_rate * rate_hz)
    samples_per_frame = utterance.sample_rate / rate_hz
    for frame, token in enumerate(tokens):
        centre = (frame + 0.5) * samples_per_frame
        holding = [s for s in utterance.phonemes if s.start <= centre < s.end]
        symbol = holding[0].symbol if holding else SILENCE_SYMBOL
        assert vocabulary.symbol(int(token)) == symbol, frame
    assert text_to_semantic(TWO_CLAUSES, get_speaker("rp_female_1"), vocabulary,
                            rate_hz).tolist() == tokens.tolist()


def test_same_text_and_speaker_give_identical_output():
    speaker = get_speaker("gb_female_1")  # breath noise, echo and pitch flutter
    first = synthesize(TWO_CLAUSES, speaker)
    synthesize("Something else in between, to change espeak's internal state.", speaker)
    second = synthesize(TWO_CLAUSES, speaker)
    assert np.array_equal(first.waveform, second.waveform)
    assert first.phonemes == second.phonemes


def test_synthesis_is_thread_safe():
    texts = ["One two three.", "Four five six.", "Seven eight nine.", "Ten eleven twelve."]
    speaker = get_speaker("us_female_1")
    expected = {text: synthesize(text, speaker).waveform for text in texts}
    results = {}

    def say(text):
        results[text] = synthesize(text, speaker).waveform

    threads = [threading.Thread(target=say, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(results[text], expected[text]) for text in texts)


def test_speakers_of_one_voice_differ_in_audio_not_in_phonemes():
    male = synthesize(TWO_CLAUSES, get_speaker("us_male_1"))
    female = synthesize(TWO_CLAUSES, get_speaker("us_female_1"))
    assert get_speaker("us_male_1").voice == get_speaker("us_female_1").voice
    assert male.waveform.size != female.waveform.size or not np.array_equal(male.waveform,
                                                                            female.waveform)
    agreement = difflib.SequenceMatcher(None, speech_symbols(male), speech_symbols(female)).ratio()
    assert agreement >= SAME_VOICE_MIN_PHONEME_AGREEMENT


def test_speaker_registry():
    assert len(SPEAKERS) >= 24
    assert all(name == speaker.name for name, speaker in SPEAKERS.items())
    settings = {(s.voice, s.variant, s.pitch, s.pitch_range, s.rate) for s in SPEAKERS.values()}
    assert len(settings) == len(SPEAKERS), "every speaker is a distinct voice"
    assert all(140 <= speaker.rate <= 210 for speaker in SPEAKERS.values())
    assert len({speaker.voice for speaker in SPEAKERS.values()}) >= 6


def test_generated_speakers_are_named_by_their_recipe():
    rng = np.random.default_rng(3)
    speakers = [generated_speaker("en-gb-scotland", "f3", rng) for _ in range(50)]
    assert len({s.name for s in speakers}) > 40
    for speaker in speakers:
        assert get_speaker(speaker.name) == speaker  # the name alone reproduces the voice
        assert (speaker.voice, speaker.variant) == ("en-gb-scotland", "f3")
        assert 25 <= speaker.pitch <= 75 and 20 <= speaker.pitch_range <= 80
        assert 135 <= speaker.rate <= 215
    assert get_speaker("en-us_f2_p70_r50_w175") == Speaker("en-us_f2_p70_r50_w175", "en-us", "f2",
                                                           70, 50, 175)


@pytest.mark.parametrize("name, expected", [
    ("en-us_f2_p100_r50_w175", "pitch must be an int in \\[0, 99\\]"),
    ("en-us_f2_p50_r50_w20", "rate must be"),
    ("fr_f2_p50_r50_w175", "not an English espeak-ng voice"),
    ("en-us_f2_p50_r50", "unknown speaker"),
])
def test_bad_recipe_names_are_refused(name, expected):
    with pytest.raises(FrontendError, match=expected):
        get_speaker(name)


def test_every_listed_variant_exists_and_keeps_the_phonemes():
    reference = speech_symbols(synthesize(TWO_CLAUSES, Speaker("plain", "en-us")))
    for variant in VARIANTS:
        spoken = synthesize(TWO_CLAUSES, Speaker("v", "en-us", variant, rate=160))
        agreement = difflib.SequenceMatcher(None, reference, speech_symbols(spoken)).ratio()
        assert agreement >= SAME_VOICE_MIN_PHONEME_AGREEMENT, variant


def test_vocabulary_file(vocabulary):
    lines = vocabulary_path("v1").read_text(encoding="utf-8").splitlines()
    assert lines[0] == VOCABULARY_HEADER
    assert lines[1:] == list(vocabulary.symbols)
    assert vocabulary.version == "v1" and vocabulary.size == len(lines) - 1
    assert vocabulary.symbol(0) == SILENCE_SYMBOL == vocabulary.symbols[vocabulary.silence_id]
    assert all(vocabulary.id(vocabulary.symbol(i)) == i for i in range(vocabulary.size))
    assert list(vocabulary.symbols[1:]) == sorted(vocabulary.symbols[1:])


def test_vocabulary_v2_extends_v1_keeping_its_ids(vocabulary):
    v2 = load_vocabulary("v2")
    assert v2.symbols[:vocabulary.size] == vocabulary.symbols
    assert v2.symbols[vocabulary.size:] == ("A~", "O", "O~", "u")
    # Words v1 cannot say: v2 gives them tokens (v1 refuses them by name).
    korea = synthesize("They visited Korea.", Speaker("gb", "en", "m1"))
    assert v2.id("O") in semantic_tokens(korea, v2, 50)
    with pytest.raises(FrontendError, match="phoneme 'O' is not in phoneme vocabulary v1"):
        semantic_tokens(korea, vocabulary, 50)


@pytest.mark.parametrize("text, expected", [
    ("", "empty"),
    ("   ", "empty"),
    ("hello \U0001F600", "position 6"),
    ("<speak>hello</speak>", "'<'"),
    ("[[h@'loU]]", "'['"),
    ("bell\x07", "U+0007"),
    ("two\nlines", "U+000A"),
    ("word " * 201, "limit is 1000"),
])
def test_bad_text_is_refused_with_the_reason(text, expected):
    with pytest.raises(FrontendError) as error:
        synthesize(text, get_speaker("us_neutral_1"))
    assert expected in str(error.value)


def test_emoji_error_names_the_character():
    with pytest.raises(FrontendError, match="GRINNING FACE"):
        synthesize("hello \U0001F600", get_speaker("us_neutral_1"))


def test_unknown_speaker_name_lists_the_known_ones():
    with pytest.raises(FrontendError, match="unknown speaker 'nobody'.*us_male_1"):
        get_speaker("nobody")


@pytest.mark.parametrize("fields, expected", [
    (dict(pitch=100), "pitch must be an int in \\[0, 99\\]"),
    (dict(pitch_range=-1), "pitch_range must be"),
    (dict(rate=50), "rate must be an int in \\[80, 450\\]"),
    (dict(rate=True), "rate must be"),
    (dict(voice="fr"), "not an English espeak-ng voice"),
    (dict(variant="../f2"), "variant must be"),
    (dict(name=""), "name must be"),
])
def test_bad_speaker_parameters(fields, expected):
    with pytest.raises(FrontendError, match=expected):
        Speaker(**{"name": "test", "voice": "en-us", **fields})


def test_unknown_variant_is_refused_at_synthesis():
    with pytest.raises(FrontendError, match="no voice variant 'nosuchvariant'"):
        synthesize("hello", Speaker("test", "en-us", "nosuchvariant"))


def test_unknown_phoneme_symbol_is_an_error_not_dropped(vocabulary):
    with pytest.raises(FrontendError, match="phoneme 'qq' is not in phoneme vocabulary v1"):
        vocabulary.id("qq")
    small = PhonemeVocabulary("tiny", ("_", "h", "l", "oU"))
    with pytest.raises(FrontendError, match="phoneme '@' is not in phoneme vocabulary tiny"):
        semantic_tokens(synthesize("hello", get_speaker("us_neutral_1")), small, 25)
    with pytest.raises(FrontendError, match="no phoneme vocabulary 'v999'"):
        load_vocabulary("v999")


def test_frontend_imports_neither_jax_nor_tensorflow():
    code = ("import sys, runtime.frontend as f; "
            "f.synthesize('hi', f.get_speaker('us_neutral_1')); "
            "bad = [m for m in ('jax', 'tensorflow') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_library_names_the_debian_package(monkeypatch):
    from soundstorm.runtime.frontend import libespeak
    monkeypatch.setattr(libespeak, "LIBRARY_SONAME", "libespeak-ng-absent.so.0")
    with pytest.raises(FrontendError, match="install the Debian package 'espeak-ng'"):
        libespeak.load_library()
