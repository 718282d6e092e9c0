"""`soundstorm eval` end to end on the tiny speech model: every measure, report and plots."""

import json
from types import SimpleNamespace

import pytest

from runtime.client import Client
from soundstorm.cli import main
from soundstorm.data.loader import SpeechCorpus
from soundstorm.evaluation.asr import normalise
from soundstorm.evaluation.harness import EvalConfig, evaluate, spread_over_sentences

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
    words = [len(normalise(row["text"]).split()) for row in rows]
    assert pooled["wer_raw"] == pytest.approx(
        sum(row["wer_raw"] * n for row, n in zip(rows, words)) / sum(words))
    for key in ("dnsmos_generated", "dnsmos_ceiling"):
        assert 1.0 <= metrics[key]["mean"] <= 5.0
    # The ceiling is the same speaker as the prompt: it must resemble it more than another
    # speaker does (the check that the similarity measure means something here).
    assert metrics["similarity_prompt_ceiling"]["mean"] > \
        metrics["similarity_prompt_other_speaker"]["mean"]
    long_form = metrics["long_form"]
    assert long_form["windows"] >= 2 and abs(long_form["seconds"] - 3.0) < 0.05
    assert -1 <= long_form["similarity_first_last"] <= 1
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
                 "--out", str(tmp_path / "r")]) == 2
    assert "no corpus" in capsys.readouterr().err
    assert main(["eval", "--model", str(speech_model), "--data", str(tiny_corpus_dir),
                 "--out", str(tmp_path / "r"), "--utterances", "0"]) == 2
    assert "--utterances must be >= 1" in capsys.readouterr().err


def test_eval_without_the_recogniser_says_so_in_one_line(speech_model, tiny_corpus_dir, tmp_path,
                                                         capsys, monkeypatch):
    import soundstorm.evaluation.asr as asr
    monkeypatch.setattr(asr, "model_dir", lambda: tmp_path / "no-weights")
    assert main(["eval", "--model", str(speech_model), "--data", str(tiny_corpus_dir),
                 "--out", str(tmp_path / "r"), "--split", "eval_seen_speakers",
                 "--utterances", "1"]) == 2
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
