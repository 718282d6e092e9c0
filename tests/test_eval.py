"""`soundstorm eval` end to end on the tiny speech model: every measure, report and plots."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from soundstorm.runtime.client import Client
from soundstorm.apps.cli.main import main
from soundstorm.data.loader import SpeechCorpus
from soundstorm.apps.evaluation.asr import normalise
from soundstorm.apps.evaluation.harness import (SAMPLE_RATE, EvalConfig, _long_form, espeak, evaluate,
                                           pooled_error_rates, spread_over_sentences)


def _word_edits(reference: str, hypothesis: str) -> int:
    """Substitutions + deletions + insertions (an empty hypothesis: every word deleted)."""
    import jiwer
    if not hypothesis:
        return len(reference.split())
    out = jiwer.process_words(reference, hypothesis)
    return out.substitutions + out.deletions + out.insertions


MEASURES = {"wer_generated", "wer_ceiling", "wer_raw", "cer_generated", "cer_ceiling", "cer_raw",
            "similarity_prompt_generated", "similarity_prompt_ceiling",
            "similarity_prompt_other_speaker", "dnsmos_generated", "dnsmos_ceiling"}


def test_evaluation_writes_the_report_with_every_measure(speech_model, tiny_corpus_dir, tmp_path):
    client = Client.embedded(speech_model)
    metrics = evaluate(client, SpeechCorpus(tiny_corpus_dir), tmp_path,
                       EvalConfig(split="eval_seen_speakers", num_utterances=2,
                                  long_form_seconds=3.0), progress=False)
    assert MEASURES <= set(metrics)
    for key in MEASURES:
        assert metrics[key]["n"] == 2
    # The recogniser tells speech from the tiny model's noise: the raw audio and its
    # resynthesis are heard far better than the generation.
    for real in ("cer_raw", "cer_ceiling"):
        assert metrics[real]["mean"] + 0.2 < metrics["cer_generated"]["mean"]
    pooled = metrics["pooled"]
    assert set(pooled) == {f"{kind}_{name}" for kind in ("wer", "cer")
                           for name in ("generated", "ceiling", "raw")}
    rows = json.loads((tmp_path / "metrics.json").read_text())["utterances"]
    # Pooled = all edits over all reference words, counted afresh by jiwer from the transcripts.
    for name in ("generated", "ceiling", "raw"):
        pairs = [(normalise(row["text"]), normalise(row[f"heard_{name}"])) for row in rows]
        edits = sum(_word_edits(ref, hyp) for ref, hyp in pairs)
        assert pooled[f"wer_{name}"] == pytest.approx(
            edits / sum(len(ref.split()) for ref, _ in pairs))
    for key in ("dnsmos_generated", "dnsmos_ceiling"):
        assert 1.0 <= metrics[key]["mean"] <= 5.0
    # The ceiling is the same speaker as the prompt: it must resemble it more than another
    # speaker does (the check that the similarity measure means something here).
    assert metrics["similarity_prompt_ceiling"]["mean"] > \
        metrics["similarity_prompt_other_speaker"]["mean"]
    long_form = metrics["long_form"]
    assert long_form["windows"] >= 2 and abs(long_form["seconds"] - 3.0) < 0.05
    # (What similarity_first_last compares is checked on known audio below.)
    assert {"similarity_first_last", "similarity_prompt_last"} <= set(long_form)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert len(saved["utterances"]) == 2 and saved["config"]["split"] == "eval_seen_speakers"
    # Two distinct sentences, not one sentence twice; every transcript is in the report.
    assert len({row["text"] for row in saved["utterances"]}) == 2
    report = (tmp_path / "report.md").read_text()
    assert "word error rate" in report and "![metrics](metrics.png)" in report
    for row in saved["utterances"]:
        for name in ("raw", "ceiling", "generated"):
            assert f"| {row[f'heard_{name}']} |" in report
    for figure in ("metrics.png", "spectrograms.png"):
        assert (tmp_path / figure).stat().st_size > 10_000


def test_eval_command_refuses_bad_arguments(speech_model, tiny_corpus_dir, tmp_path, capsys):
    assert main(["eval", "--model", str(speech_model), "--data", str(tmp_path / "none"),
                 "--out", str(tmp_path / "r")]) == 3
    assert "no corpus" in capsys.readouterr().err
    assert main(["eval", "--model", str(speech_model), "--data", str(tiny_corpus_dir),
                 "--out", str(tmp_path / "r"), "--utterances", "0"]) == 3
    assert "--utterances must be >= 1" in capsys.readouterr().err


def test_eval_without_the_recogniser_says_so_in_one_line(speech_model, tiny_corpus_dir, tmp_path,
                                                         capsys, monkeypatch):
    import soundstorm.apps.evaluation.asr as asr
    monkeypatch.setattr(asr, "model_dir", lambda: tmp_path / "no-weights")
    assert main(["eval", "--model", str(speech_model), "--data", str(tiny_corpus_dir),
                 "--out", str(tmp_path / "r"), "--split", "eval_seen_speakers",
                 "--utterances", "1"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("soundstorm eval: error: no Whisper model") and len(err.splitlines()) == 1


def test_utterances_are_spread_over_sentences_with_speakers_rotating():
    examples = [SimpleNamespace(text=text, speaker=speaker)
                for text in ("a", "b", "c") for speaker in ("x", "y")]
    order = spread_over_sentences(examples)
    assert sorted(order) == list(range(len(examples)))
    first = [examples[i] for i in order[:3]]
    assert [e.text for e in first] == ["a", "b", "c"]
    assert [e.speaker for e in first] == ["x", "y", "x"]
    assert [examples[i].text for i in order[3:]] == ["a", "b", "c"]


def test_pooled_error_rates_are_all_edits_over_all_reference_words_and_characters():
    from soundstorm.apps.evaluation.asr import character_error_rate, word_error_rate
    heard = [  # (reference, generated, ceiling, raw)
        ("the cat sat on the mat", "the cat sat mat", "the cat sat on the mat",
         "the cat sat on the mat"),
        ("the cat", "the cat sat on mats", "the cat", "a cat")]
    rows = []
    for text, *hypotheses in heard:
        row = {"text": text}
        for name, hypothesis in zip(("generated", "ceiling", "raw"), hypotheses):
            row[f"heard_{name}"] = hypothesis
            row[f"wer_{name}"] = word_error_rate(text, hypothesis)
            row[f"cer_{name}"] = character_error_rate(text, hypothesis)
        rows.append(row)
    pooled = pooled_error_rates(rows)
    # Words: 2 deletions (of 6) + 3 insertions (of 2) -> 5 / 8, not the mean of 1/3 and 3/2
    # (0.917) nor over the hypotheses' 4 + 5 words (0.556).
    assert pooled["wer_generated"] == pytest.approx(5 / 8)
    assert pooled["wer_ceiling"] == 0.0
    assert pooled["wer_raw"] == pytest.approx(1 / 8)  # "the" -> "a"
    # Characters (spaces included): "on the " deleted (7 of 22) + "sat on mats" and its space
    # inserted (12 of 7) -> 19 / 29; "the" -> "a" is 1 substitution + 2 deletions -> 3 / 29.
    assert pooled["cer_generated"] == pytest.approx(19 / 29)
    assert pooled["cer_ceiling"] == 0.0
    assert pooled["cer_raw"] == pytest.approx(3 / 29)


class _ScriptedStreamClient:
    """Stands in for the client in `_long_form`: its stream yields the given windows."""

    def __init__(self, windows):
        self.windows = windows
        self.contract = SimpleNamespace(semantic=SimpleNamespace(rate_hz=25))

    def text_to_semantic(self, text):
        return np.arange(10, dtype=np.int32)

    def voice_prompt(self, audio, **options):
        return "voice"

    def stream(self, **options):
        return iter(self.windows)


def test_long_form_compares_the_first_and_the_last_window():
    from soundstorm.apps.evaluation.speaker import speaker_similarity
    example = SimpleNamespace(text="Please bring eleven shells.", speaker="us_female_1")
    voice = espeak(example.text, example.speaker)
    other = espeak("A calm morning by the river.", "us_male_2")
    config = EvalConfig(long_form_seconds=1.0)
    # The same audio first and last: identical embeddings, cosine 1 (the middle is ignored).
    same = _long_form(_ScriptedStreamClient([voice, other, voice]), example, config)
    assert same["windows"] == 3
    assert same["seconds"] == pytest.approx((2 * voice.size + other.size) / SAMPLE_RATE)
    assert same["similarity_first_last"] == pytest.approx(1.0, abs=1e-5)
    assert same["similarity_prompt_last"] == pytest.approx(1.0, abs=1e-5)  # prompt == voice
    # Another voice last: the similarity drops to that of the two voices (first window kept
    # whole, the last cut to the same span).
    span = min(voice.size, other.size)
    changed = _long_form(_ScriptedStreamClient([voice, voice, other]), example, config)
    expected = speaker_similarity(voice[:span], other[-span:], SAMPLE_RATE)
    assert changed["similarity_first_last"] == pytest.approx(expected, abs=1e-5)
    assert changed["similarity_first_last"] < 0.9
