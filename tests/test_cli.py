"""The `soundstorm` command line: data -> train -> sample on a tiny corpus, and its errors."""

import json

import numpy as np
import pytest

from soundstorm.apps.cli.main import main


def test_train_on_a_corpus_then_sample_from_it(tiny_corpus_dir, tmp_path, capsys):
    workdir = tmp_path / "run"
    code = main(["train", "--preset", "tiny", "--data", str(tiny_corpus_dir), "--workdir",
                 str(workdir), "--steps", "2", "--batch-size", "2", "--checkpoint-every", "2"])
    assert code == 0
    record = json.loads((workdir / "data.json").read_text())
    assert record["codec"]["num_levels"] == 8 and record["semantic"]["rate_hz"] == 50
    assert json.loads((workdir / "config.json").read_text())["model"]["codebook_size"] == 256
    assert (workdir / "loss_curve.png").exists()

    out = tmp_path / "sample"
    code = main(["sample", "--workdir", str(workdir), "--data", str(tiny_corpus_dir),
                 "--split", "eval_seen_speakers", "--index", "1", "--out", str(out)])
    assert code == 0
    assert {"prompt.wav", "generated.wav", "reference.wav", "spectrograms.png"} <= {
        path.name for path in out.iterdir()}
    assert "token_agreement_per_level" in capsys.readouterr().out


def test_errors_are_one_line_and_exit_3_bad_input(tiny_corpus_dir, tmp_path, capsys):
    assert main(["sample", "--workdir", str(tmp_path / "none"), "--data",
                 str(tiny_corpus_dir)]) == 3
    assert "no training run" in capsys.readouterr().err
    assert main(["data", "build", "--out", str(tmp_path / "c"), "--sentences", "0"]) == 3
    assert "num_sentences must be >= 1" in capsys.readouterr().err
    assert main(["train", "--preset", "tiny", "--data", str(tmp_path / "missing"),
                 "--workdir", str(tmp_path / "w"), "--steps", "2"]) == 3
    assert "soundstorm data build" in capsys.readouterr().err


def test_export_writes_a_version_and_refuses_to_overwrite_it(trained_tiny, tmp_path, capsys):
    args = ["export", "--workdir", str(trained_tiny[0]), "--base-path", str(tmp_path),
            "--max-seconds", "0.64", "--prompt-seconds", "0.16", "--buckets", "0.64",
            "--platforms", "cpu", "--extra-schedule", "generate_fast=4,1,1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == str(tmp_path / "soundstorm" / "1")
    assert "converting generate_fast: schedule (4, 1, 1)" in out
    assert main(args + ["--version", "1"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("soundstorm export: error: version 1 already exists")
    assert len(err.splitlines()) == 1
    assert main(args[:-2] + ["--schedule", "16,1"]) == 3
    assert "schedule serving_default has 2 levels" in capsys.readouterr().err


def test_export_records_the_sampling_defaults_it_is_given(trained_tiny, tmp_path, capsys):
    from soundstorm.export.contract import read_contract
    args = ["export", "--workdir", str(trained_tiny[0]), "--base-path", str(tmp_path),
            "--max-seconds", "0.64", "--prompt-seconds", "0.16", "--buckets", "0.64",
            "--platforms", "cpu", "--default-temperature", "0.7",
            "--default-choice-temperature", "2"]
    assert main(args) == 0
    contract = read_contract(tmp_path / "soundstorm" / "1")
    assert (contract.default_temperature, contract.default_choice_temperature) == \
        pytest.approx((0.7, 2.0))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # refused as it is read, before anything loads
        main(args[:-4] + ["--default-temperature", "0", "--version", "2"])
    assert exited.value.code == 2
    assert "argument --default-temperature: must be a finite number > 0" in \
        capsys.readouterr().err


@pytest.mark.parametrize("content,message", [
    (b"hello\n", "is not a .npy array of token ids"),                    # a text file
    ("pickled", "is not a .npy array of token ids"),                      # object array
    (np.zeros((2, 3), np.int32), "must hold a 1-D integer array"),
    (np.zeros(4, np.float32), "must hold a 1-D integer array"),
])
def test_a_bad_semantic_file_is_one_line_and_exit_3_before_the_model_loads(tmp_path, capsys,
                                                                           content, message):
    path = tmp_path / "tokens.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        np.save(path, content)
    code = main(["synthesize", "--semantic-file", str(path), "--voice", str(tmp_path / "v.wav"),
                 "--out", str(tmp_path / "out.wav"), "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize("out,message", [
    (".", "is a folder; name the audio file to write"),
    ("out.mp4", "cannot write .mp4 audio; use .wav, .flac, .ogg or .mp3"),
    ("out.opus", "cannot write .opus audio; use .wav, .flac, .ogg or .mp3"),
    ("tokens.npy/x.wav", "tokens.npy is a file, not a folder"),
    ("/proc/x.wav", "/proc/x.wav: cannot create a file in /proc"),  # only writing shows it
])
def test_a_bad_out_is_refused_before_synthesis_and_leaves_nothing(tmp_path, capsys, out, message):
    (tmp_path / "tokens.npy").write_bytes(b"")
    target = tmp_path / out
    before = sorted(tmp_path.iterdir())
    code = main(["synthesize", "--text", "hello", "--voice", str(tmp_path / "v.wav"),
                 "--out", str(target), "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1 and message in err, err
    assert sorted(tmp_path.iterdir()) == before  # no .partial, no output


@pytest.mark.parametrize("option,value,message", [
    ("--deadline", "nan", "must be a finite number > 0, got 'nan'"),
    ("--deadline", "0", "must be a finite number > 0"),
    ("--deadline", "-5", "must be a finite number > 0"),
    ("--temperature", "0", "must be a finite number > 0"),
    ("--temperature", "nan", "must be a finite number > 0"),
    # As float32, the model's input type, holds them: 0 and inf once sent.
    ("--temperature", "1e-300", "must be a finite number > 0 that float32 holds"),
    ("--temperature", "1e39", "must be a finite number > 0 that float32 holds"),
    ("--prompt-seconds", "-1", "must be a finite number > 0"),
    ("--server", "nohost", "must be HOST:PORT (or dns:///NAME:PORT), got 'nohost'"),
    ("--server", "host:99999", "must be HOST:PORT"),
])
def test_values_that_can_never_work_are_usage_errors(tmp_path, capsys, option, value, message):
    """Refused while the command line is read (exit 2), before anything loads: a NaN deadline
    would otherwise wait for ever."""
    with pytest.raises(SystemExit) as exited:
        main(["synthesize", "--text", "Hi.", "--voice", str(tmp_path / "v.wav"),
              "--out", str(tmp_path / "o.wav"), option, value])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_dialogue_voices_are_speaker_equals_audio(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["dialogue", "--transcript", str(tmp_path / "t.txt"), "--voice", "ALICE",
              "--out", str(tmp_path / "o.wav")])
    assert exited.value.code == 2
    assert "takes SPEAKER=AUDIO, got 'ALICE'" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--text", "..."], "nothing to say"),
    (["--text", "  "], "the text is empty"),
    (["--text", "Hi \U0001F642"], "unsupported character"),
    (["--text-file", "missing.txt"], "no text file at"),
    (["--text-file", "folder"], "is a folder, not a file"),
    (["--text-file", "utf16-without-bom.txt"], "holds NUL bytes (UTF-16 without a byte-order"),
    (["--text-file", "huge.txt"], "bytes; the limit is 400000 (100000 characters)"),
    (["--text", "x" * 100_001], "text is 100001 characters long; the limit is 100000"),
])
def test_synthesize_checks_the_text_and_voice_before_the_model_loads(tmp_path, capsys, args,
                                                                     message):
    """The model named does not even exist: the text's error comes first, in well under the
    seconds a model takes to load."""
    voice = tmp_path / "v.wav"
    voice.write_bytes(b"")
    (tmp_path / "folder").mkdir()
    (tmp_path / "utf16-without-bom.txt").write_bytes("Hello.\n".encode("utf-16-le"))
    (tmp_path / "huge.txt").write_bytes(b"a" * 400_001)
    files = {"missing.txt", "folder", "utf16-without-bom.txt", "huge.txt"}
    code = main(["synthesize", *[str(tmp_path / a) if a in files else a for a in args],
                 "--voice", str(voice), "--out", str(tmp_path / "o.wav"),
                 "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err
    assert code == 3 and message in err and "no model" not in err, err
    code = main(["synthesize", "--text", "Hi.", "--voice", str(tmp_path / "none.wav"),
                 "--out", str(tmp_path / "o.wav"), "--model", str(tmp_path / "no-model")])
    assert code == 3 and "no audio file at" in capsys.readouterr().err


@pytest.mark.parametrize("voices,transcript,message", [
    (["A=v.wav", "A=v.wav", "B=v.wav"], "A: Hi.\nB: Hello.",
     "--voice names speaker 'A' twice"),
    (["A=v.wav", "B=v.wav", "C=v.wav"], "A: Hi.\nB: Hello.",
     "--voice for speaker(s) C with no turn in the transcript (its speakers: A, B)"),
    (["A=v.wav", "B=none.wav"], "A: Hi.\nB: Hello.", "no audio file at"),
    (["A=v.wav", "B=v.wav"], "A: Hi.\n\nB: Hello \U0001F600.",
     "transcript line 3 (B): unsupported character '\U0001F600' (GRINNING FACE) at position 6"),
    (["A=v.wav", "B=v.wav"], "A: Hi.\nB: ...", "transcript line 2 (B): nothing to say"),
])
def test_dialogue_checks_speakers_voices_and_every_turn_before_the_model_loads(
        tmp_path, capsys, voices, transcript, message):
    (tmp_path / "v.wav").write_bytes(b"")
    (tmp_path / "t.txt").write_text(transcript)
    named = [(speaker, tmp_path / file) for speaker, file in (v.split("=") for v in voices)]
    code = main(["dialogue", "--transcript", str(tmp_path / "t.txt"),
                 *[part for speaker, path in named for part in ("--voice", f"{speaker}={path}")],
                 "--out", str(tmp_path / "o.wav"), "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1 and message in err, err


def test_a_usage_error_is_one_line_naming_where_help_is(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["synthesize", "--text", "Hi.", "--voice", "v.wav", "--out", "o.wav", "--seed", "-1"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err == ("soundstorm synthesize: error: argument --seed: must be an integer in "
                   "[0, 2147483647], got '-1' (see soundstorm synthesize --help)\n")


def _options(parser, command="soundstorm"):
    """(command, action) for every option of every command and subcommand."""
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from _options(subparser, f"{command} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield command, action


def test_every_option_has_help_and_shows_its_default():
    import argparse

    from soundstorm.apps.cli.main import build_parser
    missing_help, hidden_defaults = [], []
    options = list(_options(build_parser()))
    for command, action in options:
        name = f"{command} {'/'.join(action.option_strings) or action.dest}"
        if not action.help:
            missing_help.append(name)
        # An unset value (None, "", False, an empty list) needs no "default"; any other does.
        elif (action.default not in (None, "", [], argparse.SUPPRESS)
              and action.default is not False and "default" not in action.help):
            hidden_defaults.append(f"{name} ({action.default!r})")
    assert len(options) > 100  # every command's options were walked, serve's 50-odd flags too
    assert missing_help == [] and hidden_defaults == []
