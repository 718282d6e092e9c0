"""The committed reference model (models/soundstorm/4): it loads on a fresh clone and speaks.

Generation is a pure function of (model, inputs, seed), so these figures are
the model's own; the bounds sit well inside what MODEL_CARD.md measured, so
they catch a broken or replaced model, not numerical noise (another CPU's
arithmetic may flip a token, not a sentence).
"""

import json
from pathlib import Path

import pytest

from soundstorm.export.contract import read_contract
from soundstorm.runtime.client import Client
from soundstorm.apps.evaluation.harness import SAMPLE_RATE, espeak
from soundstorm.apps.evaluation.speaker import speaker_similarity

MODEL = Path(__file__).resolve().parent.parent / "models" / "soundstorm"
VERSION = MODEL / "4"
MAX_BYTES = 25_000_000
# A held-out sentence of the corpus, spoken in a held-out voice prompted by another sentence.
PROMPT_TEXT = "Please bring eleven shells to the small basket before dinner."
TARGET_TEXTS = ("Maria painted the narrow harbour in the morning.",
                "Yesterday Henry carried four apples behind the old mill.")
PROMPT_SPEAKER, OTHER_SPEAKER = "nyc_female_2", "nyc_male_1"


@pytest.fixture(scope="module")
def client():
    return Client.embedded(MODEL)


@pytest.fixture(scope="module")
def spoken(client):
    prompt_audio = espeak(PROMPT_TEXT, PROMPT_SPEAKER)
    voice = client.voice_prompt(prompt_audio, sample_rate=SAMPLE_RATE, transcript=PROMPT_TEXT)
    return prompt_audio, [client.synthesize(text, voice, seed=0) for text in TARGET_TEXTS]


def test_the_committed_export_is_small_complete_and_bfloat16():
    files = [path for path in VERSION.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) <= MAX_BYTES
    assert (VERSION / "saved_model.pb").is_file()
    assert (VERSION / "assets.extra" / "tf_serving_warmup_requests").is_file()
    contract = read_contract(VERSION)
    assert contract.export_info.variables_dtype == "bfloat16"
    config = json.loads(contract.export_info.model_config_json)
    # The `compact` preset (4.7M parameters), 8,500 steps on the open-vocabulary corpus.
    assert (config["num_layers"], config["model_dim"], config["num_levels"]) == (4, 192, 8)
    assert contract.export_info.checkpoint_step == 8500
    # Chosen on held-out utterances the evaluation does not report (MODEL_CARD.md).
    assert contract.default_choice_temperature == 2.0
    # The corpus token layout: Lyra's 16 levels in pairs, phoneme vocabulary v2 at 50 Hz.
    assert (contract.codec.name, contract.codec.native_levels, contract.codec.group_size) == \
        ("lyra_v2", 16, 2)
    assert (contract.semantic.vocabulary, contract.semantic.vocabulary_size,
            contract.semantic.rate_hz) == ("espeak-phonemes-v2", 78, 50)
    # Version 4: version 3's weights with the TPU bucket signatures (docs/tpu.md).
    buckets = {s.name: s.fixed_frames for s in contract.signatures if s.fixed_frames}
    assert buckets == {f"generate_{frames}": frames for frames in (250, 500, 1000, 1500)}
    assert list(contract.export_info.tpu_batch_sizes) == [1, 2, 4, 8, 16]
    assert (VERSION / "assets.extra" / "tpu_warmup_requests").is_file()


def test_it_speaks_in_the_prompted_voice(spoken, client):
    prompt_audio, speeches = spoken
    other = espeak(TARGET_TEXTS[0], OTHER_SPEAKER)
    for speech in speeches:
        assert speech.waveform.size / SAMPLE_RATE > 1.5
        same = speaker_similarity(prompt_audio, speech.waveform, SAMPLE_RATE)
        assert same > speaker_similarity(prompt_audio, other, SAMPLE_RATE)


# The README's main command: an `en-us` prompt (a voice the corpus never had) and a held-out
# sentence that Whisper hears exactly from the raw espeak-ng audio and from its codec
# resynthesis (chosen by that, not by what the model makes of it; MODEL_CARD.md).
README_VOICE_TEXT = "Please bring eleven shells to the small basket before dinner."
README_TEXT = "The children must be properly socialized."


def test_whisper_understands_the_readme_sentence(client, tmp_path):
    import subprocess

    from soundstorm.apps.evaluation.asr import SpeechRecognizer, word_error_rate
    # The voice file exactly as the README makes it (espeak-ng's command, 22.05 kHz).
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(tmp_path / "voice.wav"),
                    README_VOICE_TEXT], check=True)
    voice = client.voice_prompt(tmp_path / "voice.wav", transcript=README_VOICE_TEXT)
    recogniser = SpeechRecognizer()
    rates = [word_error_rate(README_TEXT, recogniser.transcribe(
        client.synthesize(README_TEXT, voice, seed=seed).waveform)) for seed in range(10)]
    # Measured (MODEL_CARD.md), seeds 0-9: 0.17 0.67 0.0 0.83 1.0 0.17 1.0 1.0 0.0 0.83, mean
    # 0.57; seed 0 (the README's) heard as "that children must be properly socialised". A
    # model that does not speak scores 1.0 or worse on every seed.
    assert rates[0] <= 0.2 and sum(rates) / len(rates) <= 0.8, rates
