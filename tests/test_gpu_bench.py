"""benchmarks/gpu.sh's measurements (apps/bench/gpu.py), run here on the CPU with the tiny
preset, as they were prepared before the GPU run: every section completes and its figures
hold together."""

import json
import math

import numpy as np
import pytest

from soundstorm.apps.bench.gpu import GpuBench, GpuBenchConfig, decode_inputs, frames_of, main
from soundstorm.config import PRESETS
from soundstorm.export.extract import extract_modules


@pytest.fixture(scope="module")
def modules(served_version, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_modules")
    extract_modules(served_version, out, ("serving_default",))
    return out


@pytest.fixture(scope="module")
def results(modules):
    config = GpuBenchConfig(preset="tiny", seconds=1.0, prompt_seconds=0.2, batches=(1, 2),
                            repeats=1, modules=modules, matmul_sizes=(64,),
                            deadline_seconds=600)
    lines = []
    return GpuBench(config, log=lines.append).run(), lines


def test_every_section_runs_and_none_fails(results):
    figures, lines = results
    for name in ("matmul", "decode", "savedmodel_modules", "bf16_agreement", "autoregressive",
                 "peer"):
        assert "error" not in figures[name], (name, figures[name])
    assert lines[0].startswith("machine: ") and "preset tiny" in lines[0]


def test_decode_covers_every_batch_and_dtype_with_consistent_rates(results):
    figures, _ = results
    rows = figures["decode"]
    assert [(r["batch"], r["dtype"]) for r in rows] == [
        (1, "float32"), (1, "bfloat16"), (2, "float32"), (2, "bfloat16")]
    bf16_rate = figures["matmul"]["bfloat16"]["flops"]
    for row in rows:
        assert row["audio_s_per_s"] == pytest.approx(row["batch"] * 1.0 / row["decode_s"])
        assert row["share_of_bf16_matmul"] == pytest.approx(
            row["flops"] / row["decode_s"] / bf16_rate)
    # FLOPs per call grow with the batch exactly (one forward count x batch x passes).
    assert rows[2]["flops"] == pytest.approx(2 * rows[0]["flops"])


def test_the_extracted_module_gives_jaxs_tokens(results):
    section = results[0]["savedmodel_modules"]
    assert section["tokens_equal"] is True and section["generated_token_agreement"] == 1.0
    assert section["module_platforms"] == ["cpu"] and section["platform"] == "cpu"


def test_bf16_agreement_is_a_fraction_with_nonzero_logit_differences(results):
    section = results[0]["bf16_agreement"]
    assert 0.0 < section["generated_token_agreement"] <= 1.0
    # bfloat16 really computed: the logits differ, but little against their size.
    assert 0.0 < section["logit_rms_difference"] < 0.1 * section["logit_rms"]


def test_autoregressive_counts_one_pass_per_generated_token(results):
    section = results[0]["autoregressive"]
    config = PRESETS["tiny"]
    assert section["ar_passes"] == (frames_of(config, 1.0) - frames_of(config, 0.2)) * 3
    assert section["ar_over_soundstorm"] == pytest.approx(section["ar_s"] / section["soundstorm_s"])


def test_a_late_section_is_skipped_and_says_so(modules):
    config = GpuBenchConfig(preset="tiny", seconds=1.0, prompt_seconds=0.2, batches=(1,),
                            repeats=1, modules=modules, matmul_sizes=(64,), deadline_seconds=0)
    lines = []
    figures = GpuBench(config, log=lines.append).run()
    assert figures["matmul"] == {"skipped": "deadline"}
    assert any("skipped" in line and "deadline" in line for line in lines)


def test_requests_are_valid_for_the_model():
    config = PRESETS["tiny"]
    request = decode_inputs(config, 3, 1.0, 0.2)
    frames = frames_of(config, 1.0)
    assert frames % config.frames_per_semantic_token == 0
    assert request["semantic_tokens"].shape == (3, frames // config.frames_per_semantic_token)
    assert request["prompt_tokens"].shape == (3, frames_of(config, 0.2), config.num_levels)
    assert request["semantic_tokens"].max() < config.semantic_vocab_size
    assert np.all(request["lengths"] == frames)


def test_the_command_writes_its_figures(tmp_path, modules, capsys):
    out = tmp_path / "gpu.json"
    main(["--preset", "tiny", "--seconds", "0.6", "--prompt-seconds", "0.2", "--batches", "1",
          "--repeats", "1",
          "--matmul-sizes", "32", "--modules", str(modules), "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["decode"][0]["batch"] == 1 and math.isfinite(saved["decode"][0]["decode_s"])
    assert "figures: " in capsys.readouterr().out


def test_a_prompt_as_long_as_the_request_is_refused_at_parse_time(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--preset", "tiny", "--seconds", "3"])
    assert exited.value.code == 2
    assert "the prompt (3 s) must be shorter than the request (3 s)" in capsys.readouterr().err
