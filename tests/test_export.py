"""The jax2tf SavedModel: layout, signatures, parity with JAX, in-graph checks, warm-up, bad exports."""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import tensorflow as tf

from soundstorm.export import ExportConfig, ExportError, export_savedmodel, read_contract
from soundstorm.export.modules import modules_of_saved_model
from soundstorm.export.stablehlo import batch_polymorphic_exported, module_text
from soundstorm.export.tpu import TPU_FUNCTION_ALIAS, converter_options, finish_conversion
from soundstorm.export.warmup import read_warmup
from soundstorm.runtime.savedmodel.layout import TPU_CONVERTER_OPTIONS_FILE, TPU_WARMUP_FILE, WARMUP_FILE
from soundstorm.config import ConfigError
from soundstorm.decoding import DecodingConfig, generate
from soundstorm.model import SoundStorm, frame_mask_from_lengths
from soundstorm.synthetic import synthetic_batches
from tests.conftest import MEMORISE_SEMANTIC_TOKENS
from reference_decoder import DecoderNoise, reference_decode

# Tiny lengths (tiny preset: 50 frames/s, 2 frames per semantic token): at most 32 frames,
# prompts up to 8, buckets 16 and 32 frames.
EXPORT = ExportConfig(max_seconds=0.64, max_prompt_seconds=0.16, bucket_seconds=(0.32, 0.64),
                      extra_schedules=(("generate_fast", (4, 1, 1)),), static_buckets=True,
                      warmup_batch_sizes=(1, 2), tpu_batch_sizes=(1, 4))
GENERATE_SIGNATURES = ("serving_default", "generate_fast", "generate_16", "generate_32")


@pytest.fixture(scope="module")
def exported(trained_tiny, tmp_path_factory):
    """The memorising tiny run, exported once: (run workdir, params, version folder)."""
    workdir, result = trained_tiny
    base = tmp_path_factory.mktemp("exports")
    return workdir, result.params, export_savedmodel(workdir, base, EXPORT, log=None)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported[2]))


def call(loaded, signature, **inputs):
    outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def memorised_example(tiny_config, index=0):
    batch = next(synthetic_batches(tiny_config, 8, MEMORISE_SEMANTIC_TOKENS, dataset_size=8))
    return (np.asarray(batch.semantic_tokens[index], np.int32),
            np.asarray(batch.acoustic_tokens[index], np.int32), int(batch.lengths[index]))


def memorised_request(tiny_config, frames=16, prompt=6, seed=0, prompt_length=None):
    """A memorised synthetic example (16 frames at most) as a generate request (batch 1)."""
    semantic, acoustic, length = memorised_example(tiny_config)
    return {"semantic_tokens": semantic[None, :frames // 2],
            "prompt_tokens": acoustic[None, :prompt],
            "prompt_lengths": np.array([prompt if prompt_length is None else prompt_length],
                                       np.int32),
            "lengths": np.array([min(frames, length)], np.int32),
            "seeds": np.array([seed], np.int32),
            "temperature": np.ones(1, np.float32), "choice_temperature": np.full(1, 4.5, np.float32)}


def jax_tokens(params, config, request, schedule=None):
    decoding = DecodingConfig(level_schedule=schedule or (16, 1, 1))
    return generate(params, config, request["semantic_tokens"], request["prompt_tokens"],
                    request["prompt_lengths"], request["lengths"], request["seeds"],
                    temperature=request["temperature"],
                    choice_temperature=request["choice_temperature"], decoding=decoding)


def reference_tokens(loaded, config, request, schedule):
    """Example 0 of a request, decoded by tests/reference_decoder.py on the `logits` signature."""
    semantic = request["semantic_tokens"][:1]
    num_frames = semantic.shape[1] * config.frames_per_semantic_token
    length = int(request["lengths"][0])

    def logits_fn(tokens, level):
        return call(loaded, "logits", semantic_tokens=semantic,
                    acoustic_tokens=tokens[None].astype(np.int32),
                    lengths=np.array([length], np.int32),
                    levels=np.array([level], np.int32))["logits"][0]

    return reference_decode(
        logits_fn, request["prompt_tokens"][0], int(request["prompt_lengths"][0]), length,
        num_frames, schedule, mask_id=config.mask_id,
        noise=DecoderNoise(request["seeds"][0], config.codebook_size, num_frames),
        temperature=float(request["temperature"][0]),
        choice_temperature=float(request["choice_temperature"][0]))


# Layout

def test_version_folder_in_tf_serving_layout_with_variables(exported, loaded, tiny_config):
    workdir, params, version_dir = exported
    assert version_dir.name == "1" and version_dir.parent.name == "soundstorm"
    assert sorted(p.name for p in version_dir.parent.iterdir()) == ["1"]  # no staging left
    assert {"saved_model.pb", "variables", "assets.extra"} <= {p.name for p in version_dir.iterdir()}
    # Parameters are variables (in variables/), not constants baked into the graph.
    leaves = jax.tree_util.tree_leaves(params)
    variables = tf.nest.flatten(loaded.params)
    assert len(variables) == len(leaves)
    assert all(isinstance(v, tf.Variable) and not v.trainable for v in variables)
    stored = {v.numpy().tobytes() for v in variables}
    assert stored == {np.asarray(leaf).tobytes() for leaf in leaves}
    assert (version_dir / "variables" / "variables.index").is_file()


def test_every_module_is_lowered_for_cpu_cuda_and_tpu(exported):
    modules = modules_of_saved_model(exported[2])
    # serving_default, generate_fast, two fixed buckets and logits.
    assert len(modules) == 5
    contract = read_contract(exported[2])
    # The TPU converter's alias marks the two bucket signatures' functions, and only them.
    assert [m.alias for m in modules].count("tpu_func") == 2
    for module in modules:
        assert module.platforms == ("cpu", "cuda", "tpu")
        assert module.must_compile  # jit_compile, as jax2tf asks (shared notes)
        assert module.version == contract.export_info.calling_convention_version >= 9
        assert module.module_bytes > 1000


def test_saved_model_cli_lists_the_signatures(exported):
    cli = Path(sys.executable).parent / "saved_model_cli"
    shown = subprocess.run([str(cli), "show", "--dir", str(exported[2]), "--all"],
                           capture_output=True, text=True, check=True).stdout
    for signature in (*GENERATE_SIGNATURES, "logits", "metadata"):
        assert f"signature_def['{signature}']" in shown
    for name in ("semantic_tokens", "prompt_tokens", "prompt_lengths", "lengths", "seeds",
                 "temperature", "choice_temperature", "acoustic_tokens", "contract", "probe"):
        assert f"['{name}']" in shown


FRESH_PROCESS = """
import json, sys
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
request = {k: tf.constant(np.asarray(v, dtype=np.float32 if "temperature" in k else np.int32))
           for k, v in json.loads(sys.argv[2]).items()}
shapes = {}
for name, signature in loaded.signatures.items():
    if name == "metadata":
        out = signature(probe=tf.constant([0, 0]))
    elif name == "logits":
        out = signature(semantic_tokens=request["semantic_tokens"],
                        acoustic_tokens=tf.zeros([1, 16, 3], tf.int32),
                        lengths=request["lengths"], levels=tf.constant([1]))
    else:
        frames = int(name.split("_")[1]) if name[-1].isdigit() else 16
        semantic = tf.zeros([1, frames // 2], tf.int32)
        out = signature(**dict(request, semantic_tokens=semantic))
    shapes[name] = {k: list(v.shape) for k, v in out.items()}
print(json.dumps(shapes))
"""


def test_fresh_process_loads_and_calls_every_signature(exported, tiny_config):
    request = {k: v.tolist() for k, v in memorised_request(tiny_config).items()}
    shown = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(exported[2]),
                            json.dumps(request)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    shapes = json.loads(shown.stdout.strip().splitlines()[-1])
    assert shapes["serving_default"] == {"acoustic_tokens": [1, 16, 3], "lengths": [1]}
    assert shapes["generate_fast"] == shapes["generate_16"] == shapes["serving_default"]
    assert shapes["logits"] == {"logits": [1, 16, 16]}
    assert shapes["metadata"] == {"contract": [2], "contract_json": [2]}
    # Each signature was sent its bucket's length (16 for the polymorphic ones).
    assert shapes["generate_32"] == {"acoustic_tokens": [1, 32, 3], "lengths": [1]}


# Parity with JAX

def test_forward_pass_matches_jax_logits(exported, loaded, tiny_config, rng):
    _, params, _ = exported
    semantic = rng.integers(0, tiny_config.semantic_vocab_size + 1, (2, 10)).astype(np.int32)
    acoustic = rng.integers(0, tiny_config.codebook_size + 1, (2, 20, 3)).astype(np.int32)
    lengths, levels = np.array([20, 13], np.int32), np.array([0, 2], np.int32)
    saved = call(loaded, "logits", semantic_tokens=semantic, acoustic_tokens=acoustic,
                 lengths=lengths, levels=levels)["logits"]
    expected = np.asarray(SoundStorm(tiny_config).apply(
        {"params": params}, semantic, acoustic, frame_mask_from_lengths(lengths, 20), levels))
    np.testing.assert_allclose(saved, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("signature,schedule", [("serving_default", (16, 1, 1)),
                                                ("generate_fast", (4, 1, 1)),
                                                ("generate_16", (16, 1, 1))])
def test_decoding_matches_jax_token_for_token(exported, loaded, tiny_config, signature, schedule):
    _, params, _ = exported
    _, acoustic, length = memorised_example(tiny_config)
    # Fixed-bucket signatures take 8-frame prompts; a quarter of the example is real prompt.
    request = memorised_request(tiny_config, frames=16, prompt=8, seed=5,
                                prompt_length=length // 4)
    saved = call(loaded, signature, **request)
    expected = jax_tokens(params, tiny_config, request, schedule)
    np.testing.assert_array_equal(saved["acoustic_tokens"], expected)
    # And with the independent NumPy decoder over the SavedModel's own `logits`
    # signature, so that a bug of the decoding algorithm cannot hide on both sides.
    np.testing.assert_array_equal(saved["acoustic_tokens"][0],
                                  reference_tokens(loaded, tiny_config, request, schedule))
    np.testing.assert_array_equal(saved["lengths"], request["lengths"])
    # The memorised continuation comes out (the export carries the trained weights).
    generated = slice(length // 4, length)
    assert (saved["acoustic_tokens"][0, generated] == acoustic[generated]).mean() > 0.9


def test_padded_and_batched_requests_give_the_tokens_of_a_lone_request(loaded, tiny_config, rng):
    alone = memorised_request(tiny_config, frames=12, prompt=5, seed=3)
    alone["semantic_tokens"] = rng.integers(0, 12, (1, 6)).astype(np.int32)
    lone = call(loaded, "serving_default", **alone)["acoustic_tokens"]
    other = memorised_request(tiny_config, frames=30, prompt=8, seed=9)
    other["semantic_tokens"] = rng.integers(0, 12, (1, 15)).astype(np.int32)
    batch = {}
    for key in alone:
        a, b = alone[key], other[key]
        if key == "semantic_tokens":  # pad with junk ids that are in range
            a = np.concatenate([a, rng.integers(0, 12, (1, 9)).astype(np.int32)], 1)
        if key == "prompt_tokens":
            a = np.concatenate([a, rng.integers(0, 16, (1, 3, 3)).astype(np.int32)], 1)
        batch[key] = np.concatenate([b, a])
    together = call(loaded, "serving_default", **batch)["acoustic_tokens"]
    np.testing.assert_array_equal(together[1, :12], lone[0])
    assert (together[1, 12:] == 0).all()


# In-graph validation

def _bad(tiny_config, **changes):
    request = memorised_request(tiny_config, frames=16, prompt=6)
    for key, change in changes.items():
        request[key] = change(request[key].copy())
    return request


def _set(index, value):
    def change(array):
        array[index] = value
        return array
    return change


BAD_REQUESTS = {
    "semantic_tokens must be <= 12": dict(semantic_tokens=_set((0, 2), 13)),
    "semantic_tokens must be >= 0": dict(semantic_tokens=_set((0, 2), -1)),
    "prompt_tokens (within prompt_lengths) must be <= 15": dict(prompt_tokens=_set((0, 1, 2), 16)),
    "lengths must be <= the frames the semantic tokens cover": dict(lengths=lambda a: a * 0 + 17),
    "prompt_lengths must be <= the frames of prompt_tokens": dict(prompt_lengths=lambda a: a + 1),
    "each prompt must be shorter than its total length": dict(lengths=lambda a: a * 0 + 6),
    "too long": dict(semantic_tokens=lambda a: np.zeros((1, 17), np.int32),
                     lengths=lambda a: a * 0 + 34),
    "more frames than max_prompt_frames = 8": dict(prompt_tokens=lambda a: np.zeros((1, 9, 3),
                                                                                    np.int32)),
    "batch sizes differ": dict(seeds=lambda a: np.zeros(2, np.int32)),
    "seeds must be >= 0": dict(seeds=lambda a: a - 1),
    "temperature must be > 0": dict(temperature=lambda a: a * 0),
    "choice_temperature must be finite": dict(choice_temperature=lambda a: a * np.nan),
}


@pytest.mark.parametrize("message", sorted(BAD_REQUESTS))
def test_bad_requests_fail_with_invalid_argument_naming_the_problem(loaded, tiny_config, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("(", r"\(")
                       .replace(")", r"\)")):
        call(loaded, "serving_default", **_bad(tiny_config, **BAD_REQUESTS[message]))


def test_junk_past_the_prompt_length_is_not_an_error(loaded, tiny_config):
    request = memorised_request(tiny_config, frames=16, prompt=6)
    request["prompt_lengths"] = np.array([3], np.int32)
    request["prompt_tokens"][0, 3:] = 999  # padding: ignored, like any padding
    assert call(loaded, "serving_default", **request)["acoustic_tokens"].shape == (1, 16, 3)


def test_bucket_signature_refuses_more_than_its_bucket(loaded, tiny_config):
    request = memorised_request(tiny_config, frames=16, prompt=8)
    request["semantic_tokens"] = np.zeros((1, 9), np.int32)  # 18 frames
    request["lengths"] = np.array([18], np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"at most 8 semantic tokens \(16 frames\); use a larger bucket"):
        call(loaded, "generate_16", **request)


@pytest.mark.parametrize("frames,prompt", [(16, 8), (10, 3), (4, 1), (32, 8)])
def test_bucket_signature_pads_in_the_graph_and_answers_as_serving_default_does(
        loaded, tiny_config, frames, prompt):
    """Any length up to the bucket: the tokens serving_default gives for the same request
    padded to the bucket (the padding a client does for it), cut back to the frames asked."""
    request = memorised_request(tiny_config, frames=16, prompt=prompt, seed=11,
                                prompt_length=max(prompt - 1, 0))
    # The example's tokens repeated to the length asked (the memorised example has 16 frames).
    request["semantic_tokens"] = np.resize(request["semantic_tokens"], (1, frames // 2))
    request["lengths"] = np.array([frames], np.int32)
    bucket = 16 if frames <= 16 else 32
    bucketed = call(loaded, f"generate_{bucket}", **request)
    assert bucketed["acoustic_tokens"].shape == (1, frames, 3)
    padded = dict(request)
    padded["semantic_tokens"] = np.pad(request["semantic_tokens"],
                                       [(0, 0), (0, bucket // 2 - frames // 2)])
    padded["prompt_tokens"] = np.pad(request["prompt_tokens"], [(0, 0), (0, 8 - prompt), (0, 0)])
    expected = call(loaded, "serving_default", **padded)["acoustic_tokens"][:, :frames]
    np.testing.assert_array_equal(bucketed["acoustic_tokens"], expected)


# Metadata and warm-up

def test_metadata_signature_returns_the_contract_written_to_assets_extra(exported, loaded):
    contract = read_contract(exported[2])
    served = call(loaded, "metadata", probe=np.zeros(3, np.int32))
    assert len(served["contract"]) == 3
    assert served["contract"][0] == contract.SerializeToString()
    assert json.loads(served["contract_json"][0])["max_frames"] == 32
    assert contract.model_name == "soundstorm" and contract.version == 1
    assert (contract.max_frames, contract.max_prompt_frames) == (32, 8)
    assert list(contract.frame_buckets) == [16, 32]
    assert contract.acoustic.num_levels == 3 and contract.acoustic.codebook_size == 16
    assert contract.semantic.unknown_id == 12 and contract.semantic.frames_per_token == 2
    assert contract.codec.name == "none"  # trained on synthetic tokens
    schedules = {s.name: (tuple(s.level_schedule), s.fixed_frames) for s in contract.signatures}
    assert schedules == {"serving_default": ((16, 1, 1), 0), "generate_fast": ((4, 1, 1), 0),
                         "generate_16": ((16, 1, 1), 16), "generate_32": ((16, 1, 1), 32)}
    assert contract.export_info.checkpoint_step == 400
    assert list(contract.export_info.platforms) == ["cpu", "cuda", "tpu"]
    assert list(contract.export_info.tpu_batch_sizes) == [1, 4]
    assert contract.export_info.tpu_matmul_precision == "highest"


def test_warmup_records_parse_and_replay(exported, loaded):
    logs = read_warmup(exported[2] / WARMUP_FILE)
    # (serving_default, generate_fast) x 2 buckets x batch sizes 1 and 2; the TPU bucket
    # signatures' records are the TPU version's (test_tpu_warmup_covers_every_tpu_program...).
    assert len(logs) == 8
    seen = set()
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "soundstorm"
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        out = call(loaded, request.model_spec.signature_name, **inputs)
        seen.add((request.model_spec.signature_name,) + out["acoustic_tokens"].shape[:2])
    assert seen == {(name, batch, frames) for name in ("serving_default", "generate_fast")
                    for batch in (1, 2) for frames in (16, 32)}


def test_contract_carries_the_codec_of_a_corpus_run(trained_tiny, tmp_path, tiny_config):
    workdir = tmp_path / "run"
    shutil.copytree(trained_tiny[0], workdir)
    (workdir / "data.json").write_text(json.dumps({
        "codec": {"name": "lyra_v2", "lyra_levels": 6, "group_size": 2, "num_levels": 3,
                  "codebook_size": 16, "frame_rate_hz": 50, "sample_rate": 16000},
        "semantic": {"vocabulary_version": "v1", "vocabulary_size": 12, "rate_hz": 25}}))
    version_dir = export_savedmodel(workdir, tmp_path / "exports",
                                    ExportConfig(max_seconds=0.64, max_prompt_seconds=0.16,
                                                 bucket_seconds=(0.64,), platforms=("cpu",)),
                                    log=None)
    contract = read_contract(version_dir)
    assert (contract.codec.name, contract.codec.native_levels, contract.codec.group_size,
            contract.codec.sample_rate) == ("lyra_v2", 6, 2, 16000)
    assert contract.semantic.vocabulary == "espeak-phonemes-v1"
    assert [m.platforms for m in modules_of_saved_model(version_dir)] == [("cpu",)] * 2


def test_calling_convention_9_for_older_tf_serving(exported, trained_tiny, tmp_path, tiny_config):
    older = dataclasses.replace(QUICK, calling_convention_version=9)
    version_dir = export_savedmodel(trained_tiny[0], tmp_path, older, log=None)
    assert {m.version for m in modules_of_saved_model(version_dir)} == {9}
    assert read_contract(version_dir).export_info.calling_convention_version == 9
    request = memorised_request(tiny_config, frames=16, prompt=6, seed=2)
    tokens = call(tf.saved_model.load(str(version_dir)), "serving_default", **request)
    np.testing.assert_array_equal(tokens["acoustic_tokens"],
                                  jax_tokens(exported[1], tiny_config, request))


def test_bfloat16_variables_halve_the_size_and_keep_the_logits_close(trained_tiny, tmp_path,
                                                                     tiny_config, rng):
    half = export_savedmodel(trained_tiny[0], tmp_path / "half",
                             dataclasses.replace(QUICK, variables_dtype="bfloat16"), log=None)
    full = export_savedmodel(trained_tiny[0], tmp_path / "full", QUICK, log=None)
    size = lambda version_dir: sum(f.stat().st_size for f in (version_dir / "variables").iterdir())
    assert size(half) < 0.6 * size(full)
    loaded = tf.saved_model.load(str(half))
    assert {v.dtype for v in tf.nest.flatten(loaded.params)} == {tf.bfloat16}
    assert read_contract(half).export_info.variables_dtype == "bfloat16"
    semantic = rng.integers(0, 13, (1, 8)).astype(np.int32)
    acoustic = rng.integers(0, 17, (1, 16, 3)).astype(np.int32)
    inputs = dict(semantic_tokens=semantic, acoustic_tokens=acoustic,
                  lengths=np.array([16], np.int32), levels=np.array([1], np.int32))
    halved = call(loaded, "logits", **inputs)["logits"]
    exact = call(tf.saved_model.load(str(full)), "logits", **inputs)["logits"]
    # bfloat16 keeps 8 bits of mantissa: logits move by a small fraction of their range.
    assert 0 < np.abs(halved - exact).max() < 0.05 * np.abs(exact).max()


# Bad exports leave nothing behind

QUICK = ExportConfig(max_seconds=0.64, max_prompt_seconds=0.16, bucket_seconds=(0.64,),
                     platforms=("cpu",))


def _listing(base: Path):
    return sorted(str(p.relative_to(base)) for p in base.rglob("*")) if base.exists() else None


def test_versions_are_numbered_and_never_overwritten(trained_tiny, tmp_path):
    base = tmp_path / "exports"
    first = export_savedmodel(trained_tiny[0], base, QUICK, log=None)
    second = export_savedmodel(trained_tiny[0], base, QUICK, log=None)
    assert (first.name, second.name) == ("1", "2")
    before = _listing(base)
    with pytest.raises(ExportError, match="version 2 already exists"):
        export_savedmodel(trained_tiny[0], base, QUICK, version=2, log=None)
    assert _listing(base) == before


def test_missing_run_or_checkpoint_is_a_clear_error_without_output(trained_tiny, tmp_path):
    base = tmp_path / "exports"
    with pytest.raises(FileNotFoundError, match="config.json missing"):
        export_savedmodel(tmp_path / "nowhere", base, QUICK, log=None)
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copy(trained_tiny[0] / "config.json", workdir)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        export_savedmodel(workdir, base, QUICK, log=None)
    assert not base.exists()
    assert sorted(p.name for p in workdir.iterdir()) == ["config.json"]


def test_config_mismatch_is_a_clear_error_without_output(trained_tiny, tmp_path):
    workdir, base = tmp_path / "run", tmp_path / "exports"
    shutil.copytree(trained_tiny[0], workdir)
    record = json.loads((workdir / "config.json").read_text())
    record["model"]["model_dim"] = 64
    (workdir / "config.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="config mismatch.*does not fit its config.json"):
        export_savedmodel(workdir, base, QUICK, log=None)
    shutil.copy(trained_tiny[0] / "config.json", workdir / "config.json")
    (workdir / "data.json").write_text(json.dumps({
        "codec": {"name": "lyra_v2", "lyra_levels": 16, "group_size": 2, "num_levels": 8,
                  "codebook_size": 256, "frame_rate_hz": 50, "sample_rate": 16000},
        "semantic": {"vocabulary_version": "v1", "vocabulary_size": 74, "rate_hz": 50}}))
    with pytest.raises(ConfigError, match="data.json says codec num_levels = 8"):
        export_savedmodel(workdir, base, QUICK, log=None)
    assert not base.exists()


def test_a_failure_while_writing_leaves_no_partial_version(trained_tiny, tmp_path, monkeypatch):
    import soundstorm.export.savedmodel as savedmodel
    base = tmp_path / "exports"
    export_savedmodel(trained_tiny[0], base, QUICK, log=None)
    before = _listing(base)

    def disk_full(*args):
        raise OSError("No space left on device")
    monkeypatch.setattr(savedmodel, "write_warmup", disk_full)
    with pytest.raises(OSError, match="No space"):
        export_savedmodel(trained_tiny[0], base, QUICK, log=None)
    assert _listing(base) == before
    with pytest.raises(OSError, match="No space"):
        export_savedmodel(trained_tiny[0], tmp_path / "fresh", QUICK, log=None)
    assert not (tmp_path / "fresh" / "soundstorm").exists()


@pytest.mark.parametrize("changes,message", [
    (dict(level_schedule=(16, 1)), "schedule serving_default has 2 levels; the model has 3"),
    (dict(max_prompt_seconds=0.4, bucket_seconds=(0.32, 0.64)), "smallest bucket"),
    (dict(extra_schedules=(("metadata", (1, 1, 1)),)), "extra schedule name"),
    (dict(platforms=("cpu", "rocm5")), "platforms"),
    (dict(warmup_batch_sizes=tuple(range(1, 600))), "TF Serving reads at most 1000"),
    (dict(calling_convention_version=8), "calling_convention_version must be one of"),
    (dict(variables_dtype="float16"), "variables_dtype must be one of"),
    (dict(tpu_batch_sizes=(4, 2)), "tpu_batch_sizes must increase strictly"),
    (dict(tpu_batch_sizes=(0, 1)), "tpu_batch_sizes must increase strictly from >= 1"),
    (dict(tpu_matmul_precision="bfloat16"), "tpu_matmul_precision must be one of"),
    (dict(compute_dtype="float16"), "compute_dtype must be float32 or bfloat16"),
    # 2 bucket signatures x 501 TPU batch sizes: more TPU warm-up records than TF Serving reads.
    (dict(static_buckets=True, tpu_batch_sizes=tuple(range(1, 502))), "reads at most 1000"),
])
def test_export_options_that_cannot_work_are_refused(tiny_config, changes, message):
    options = dict(max_seconds=0.64, max_prompt_seconds=0.16, bucket_seconds=(0.32, 0.64))
    options.update(changes)
    with pytest.raises((ExportError, ConfigError), match=message):
        ExportConfig(**options).resolve(tiny_config)


def test_compute_dtype_overrides_the_runs_for_every_signature(tiny_config):
    assert tiny_config.compute_dtype == "float32"
    resolved = ExportConfig(max_seconds=0.64, max_prompt_seconds=0.16, bucket_seconds=(0.64,),
                            compute_dtype="bfloat16").resolve(tiny_config)
    assert resolved.model.compute_dtype == "bfloat16"
    assert resolved.model == dataclasses.replace(tiny_config, compute_dtype="bfloat16")


# TPU: the bucket signatures are the TPU contract (docs/tpu.md)

def _aliased_and_not(version_dir):
    from soundstorm.export.modules import serialized_modules_of_saved_model
    modules = serialized_modules_of_saved_model(version_dir)
    return ([pair for pair in modules if pair[0].alias == TPU_FUNCTION_ALIAS],
            [pair for pair in modules if pair[0].alias != TPU_FUNCTION_ALIAS])


def test_every_tpu_function_is_static_but_for_the_batch_at_the_chosen_precision(exported):
    aliased, others = _aliased_and_not(exported[2])
    buckets = []
    for module, data in aliased:
        program = batch_polymorphic_exported(data, module.platforms, module.version)
        *params, semantic, prompt = [a.shape for a in program.in_avals[:-5]]
        assert all(isinstance(d, int) for shape in params for d in shape)
        for aval in program.in_avals[-7:] + program.out_avals:  # inputs and tokens: [b, ...]
            assert not isinstance(aval.shape[0], int)
            assert all(isinstance(d, int) for d in aval.shape[1:])
        assert prompt[1:] == (8, 3)  # the longest prompt, padded to in the graph
        buckets.append(semantic[1] * 2)
        # The export's TPU numerics: every matmul of the module at HIGHEST precision.
        text = module_text(data)
        assert text.count("dot_general") > 0
        assert text.count("dot_general") == text.count("precision = [HIGHEST, HIGHEST]")
    assert sorted(buckets) == [16, 32]
    # The shape-polymorphic functions (CPU and GPU) are neither aliased nor batch-only.
    assert len(others) == 3
    for module, data in others:
        with pytest.raises(ValueError, match="dynamic dimension other than the batch"):
            batch_polymorphic_exported(data, module.platforms, module.version)
        assert "HIGHEST" not in module_text(data)


def test_tpu_warmup_covers_every_tpu_program_and_replays(exported, loaded):
    aliased, _ = _aliased_and_not(exported[2])
    logs = read_warmup(exported[2] / TPU_WARMUP_FILE)
    assert len(logs) == len(aliased) * 2  # every TPU function at each allowed batch size
    programs = set()
    for log in logs:
        request = log.predict_log.request
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        out = call(loaded, request.model_spec.signature_name, **inputs)
        programs.add((request.model_spec.signature_name, out["acoustic_tokens"].shape[0],
                      out["acoustic_tokens"].shape[1]))
    assert programs == {(f"generate_{frames}", batch, frames) for frames in (16, 32)
                        for batch in (1, 4)}


def test_finishing_a_conversion_gives_it_the_contract_and_the_tpu_warmup(exported, tmp_path):
    converted = tmp_path / "converted"
    converted.mkdir()  # what a converter wrote (its saved_model.pb is not ours to fake)
    finish_conversion(exported[2], converted)
    assert read_contract(converted) == read_contract(exported[2])
    assert ((converted / WARMUP_FILE).read_bytes()
            == (exported[2] / TPU_WARMUP_FILE).read_bytes())
    assert not (converted / TPU_WARMUP_FILE).exists()
    with pytest.raises(FileNotFoundError, match="export with --static-buckets"):
        finish_conversion(tmp_path, tmp_path / "other")


TPU_CHECK = Path(__file__).resolve().parent.parent / ".tpu-check"  # tools/setup.sh


def _converter_schema(tmp_path):
    """orbax-export's copy of the converter's ConverterOptionsV2, compiled here."""
    protos = list(TPU_CHECK.glob("orbax/export/bfloat16_toolkit/converter_options_v2.proto"))
    if not protos:
        pytest.skip("orbax-export's converter schema is not in .tpu-check/ (tools/setup.sh)")
    out = tmp_path / "schema"
    out.mkdir()
    # A child process: protoc crashes inside a process with TensorFlow's protobuf loaded.
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{TPU_CHECK}",
                    f"--python_out={out}", str(protos[0])], check=True)
    return out


PARSE_OPTIONS = """
import sys
from google.protobuf import text_format
sys.path.insert(0, sys.argv[1])
from orbax.export.bfloat16_toolkit import converter_options_v2_pb2 as schema
options = text_format.Parse(sys.stdin.read(), schema.ConverterOptionsV2())
batch, = options.batch_options
print(options.tpu_functions[0].function_alias, list(batch.allowed_batch_sizes),
      batch.max_batch_size, batch.num_batch_threads,
      schema.ConverterOptionsV2.State.Name(options.bfloat16_optimization))
"""


def test_converter_options_parse_with_the_converters_published_schema(exported, tmp_path):
    schema = _converter_schema(tmp_path)
    text = converter_options(read_contract(exported[2]))
    assert (exported[2] / TPU_CONVERTER_OPTIONS_FILE).read_text() == text  # what the export wrote
    parsed = subprocess.run([sys.executable, "-c", PARSE_OPTIONS, str(schema)], input=text,
                            capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    assert parsed.stdout.split() == ["tpu_func", "[1,", "4]", "4", "4", "DISABLED"]
    # A misspelt field is refused by the same schema (the parse is not vacuous).
    bad = subprocess.run([sys.executable, "-c", PARSE_OPTIONS, str(schema)],
                         input=text.replace("allowed_batch_sizes", "allowed_batch_size"),
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "allowed_batch_size" in bad.stderr


def test_converter_options_need_bucket_signatures(trained_tiny, tmp_path):
    version = export_savedmodel(trained_tiny[0], tmp_path, ExportConfig(
        max_seconds=0.64, max_prompt_seconds=0.16, bucket_seconds=(0.64,)), log=None)
    contract = read_contract(version)
    assert list(contract.export_info.tpu_batch_sizes) == []
    with pytest.raises(ValueError, match="no TPU bucket signatures: export with --static-buckets"):
        converter_options(contract)
    assert [m.alias for m in modules_of_saved_model(version)] == ["", ""]
    assert not (version / TPU_WARMUP_FILE).exists()


def test_every_tpu_program_compiles_for_a_tpu_v4_without_one(exported):
    if not list(TPU_CHECK.glob("libtpu/*.so")):
        pytest.skip("libtpu is not in .tpu-check/ (tools/setup.sh)")
    tool = Path(__file__).resolve().parent.parent / "tools" / "tpu_compile_check.py"
    shown = subprocess.run([sys.executable, str(tool), str(exported[2]), "--batch-sizes", "1"],
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    rows = [line.split() for line in shown.stdout.splitlines() if line.startswith("generate_")]
    assert [(row[0], row[1]) for row in rows] == [("generate_16", "1"), ("generate_32", "1")]
    assert "2 of 2 programs compile and fit" in shown.stdout
