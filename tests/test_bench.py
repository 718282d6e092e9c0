"""`soundstorm bench` on the tiny speech model: every section runs, checks itself and reports."""

import importlib.util
import json

import jax
import pytest
import soundfile

from soundstorm.apps.bench.config import SECTIONS, BenchConfig
from soundstorm.apps.bench.measure import decode_flops, forward_flops
from soundstorm.apps.bench.peer import INSTALL, forward_passes
from soundstorm.apps.bench.suite import run_bench
from soundstorm.apps.cli.main import main
from soundstorm.config import PRESETS
from soundstorm.decoding import DecodingConfig
from soundstorm.apps.evaluation.harness import SAMPLE_RATE, espeak
from soundstorm.model import init_params
from soundstorm.validation import InputError

# The tiny export holds 1.28 s with prompts of up to 0.4 s: end to end, 0.8 s after the
# prompt fits one window, 2 s takes several.
TINY_BENCH = BenchConfig(seconds=(0.8, 2.0), compare_seconds=(1.2,), autoregressive_seconds=(1.2,),
                         peer_seconds=(1.2,), clients=(1, 2), request_seconds=1.2,
                         prompt_seconds=0.4, repeats=1)


@pytest.fixture(scope="module")
def bench(speech_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    lines = []
    tables = {table.name: table for table in run_bench(speech_model, TINY_BENCH, out_dir=out,
                                                       log=lines.append)}
    return tables, out, lines


def test_every_section_reports_a_table_to_stdout_and_the_report(bench):
    tables, out, lines = bench
    assert list(tables) == list(SECTIONS)
    assert lines[0].startswith("Machine: ") and "cores" in lines[0]
    report = (out / "report.md").read_text()
    saved = json.loads((out / "bench.json").read_text())
    for name, table in tables.items():
        assert table.markdown() in report and table.markdown() in lines
        assert saved["tables"][name] == json.loads(json.dumps(table.values, default=str))


def test_end_to_end_covers_every_length_with_windows_past_the_model_maximum(bench):
    rows = bench[0]["end_to_end"].values
    assert [round(row["audio_s"], 1) for row in rows] == [0.8, 2.0]
    assert rows[0]["windows"] == 1 and rows[1]["windows"] >= 2
    for row in rows:
        assert row["total_s"] >= row["model_s"] > 0
        assert row["audio_s_per_s"] == pytest.approx(row["audio_s"] / row["total_s"])


def test_savedmodel_and_jax_decode_the_same_tokens(bench):
    (row,) = bench[0]["savedmodel_vs_jax"].values
    assert row["tokens_equal"] is True
    assert row["flops"] > 0 and row["matmul_peak_flops"] > 0
    assert row["jax_s"] > 0 and row["savedmodel_s"] > 0


def test_the_heap_settings_decode_the_same_tokens_each_in_a_process_of_its_own(bench):
    (row,) = bench[0]["heap"].values
    assert row["tokens_equal"] is True
    assert row["default_s"] > 0 and row["retained_s"] > 0
    assert row["default_faults"] >= 0 and row["retained_faults"] >= 0


def test_autoregressive_makes_one_pass_per_generated_token(bench, speech_model):
    (row,) = bench[0]["autoregressive"].values
    # 1.2 s total, 0.4 s prompt, at 50 frames/s: 40 generated frames x every level.
    from soundstorm.runtime.client import Client
    levels = Client.embedded(speech_model).contract.acoustic.num_levels
    assert row["ar_passes"] == 40 * levels
    assert row["passes"] == sum(DecodingConfig.paper(
        PRESETS["tiny"].replace(num_levels=levels)).level_schedule)


def _peer_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None
               for name in ("torch", "soundstorm_pytorch"))


def test_peer_says_why_it_is_skipped_when_it_is_not_installed(bench):
    table = bench[0]["peer"]
    if _peer_installed():
        assert not table.note.startswith("skipped")
    else:
        assert table.values == [] and table.rows == []
        assert table.note.startswith("skipped: soundstorm-pytorch is not installed")
        assert INSTALL in table.note  # how to get it


def test_peer_makes_as_many_passes_as_ours(bench):
    if not _peer_installed():
        pytest.skip(f"soundstorm-pytorch is not installed, so the peer was not run: {INSTALL}")
    (row,) = bench[0]["peer"].values
    # Counted by a hook: 16 iterations of level 1, one greedy pass per finer level.
    assert row["peer_s"] > 0 and row["peer_passes"] == row["passes"]


def test_peer_passes_are_counted_by_a_forward_hook_that_is_removed_after():
    torch = pytest.importorskip("torch")
    model = torch.nn.Module()
    model.net = torch.nn.Linear(2, 2)
    x = torch.zeros(1, 2)
    assert forward_passes(model, lambda: [model.net(x) for _ in range(5)]) == 5
    assert forward_passes(model, lambda: None) == 0
    assert not model.net._forward_hooks
    with pytest.raises(RuntimeError):
        forward_passes(model, lambda: (model.net(x), model.net(torch.zeros(1, 3))))
    assert not model.net._forward_hooks


def test_grpc_and_embedded_give_the_same_audio(bench):
    (row,) = bench[0]["grpc"].values
    assert row["same_audio"] is True and row["grpc_s"] > 0


def test_batching_throughput_is_measured_for_every_client_count(bench):
    rows = bench[0]["batching"].values
    assert [row["clients"] for row in rows] == [1, 2]
    assert all(row["no_batching_rps"] > 0 and row["batching_rps"] > 0 for row in rows)


def test_flops_grow_with_length_and_count_every_pass():
    config = PRESETS["tiny"]
    params = init_params(config, jax.random.key(0))
    short, long = forward_flops(config, params, 32), forward_flops(config, params, 64)
    # Dense layers are linear in length, attention quadratic but small at this size.
    assert 1.9 < long / short < 2.6
    # At least the matmuls of the feed-forward modules (two per block, two layers each).
    assert short > config.num_layers * 2 * 2 * (2 * 32 * config.model_dim * config.ff_dim)
    decoding = DecodingConfig.paper(config)
    assert decode_flops(config, params, 32, decoding) == decoding.num_passes * short


def test_bad_bench_settings_are_refused(speech_model, capsys):
    with pytest.raises(InputError, match="exceed the 3.0 s prompt"):
        BenchConfig(seconds=(2.0,))
    with pytest.raises(InputError, match="unknown bench sections"):
        BenchConfig(sections=("speed",))
    assert main(["bench", "--model", str(speech_model), "--seconds", "1"]) == 3
    assert "exceed the 3.0 s prompt" in capsys.readouterr().err


def test_the_bench_command_takes_a_voice_file_and_names_a_missing_one(speech_model, tmp_path,
                                                                      capsys):
    voice = tmp_path / "voice.wav"
    soundfile.write(voice, espeak("Please bring eleven shells.", "gb_female_1"), SAMPLE_RATE)
    common = ["bench", "--model", str(speech_model), "--sections", "end_to_end", "--seconds",
              "0.8", "--repeats", "1", "--prompt-seconds", "0.4"]
    assert main([*common, "--voice", str(voice), "--out", str(tmp_path / "r")]) == 0
    assert "| 0.8 | 1 |" in (tmp_path / "r" / "report.md").read_text()
    assert main([*common, "--voice", str(tmp_path / "none.wav")]) == 3
    assert "none.wav" in capsys.readouterr().err
