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

from export import ExportConfig, ExportError, export_savedmodel, read_contract
from export.modules import modules_of_saved_model
from export.warmup import read_warmup
from runtime.savedmodel.layout import WARMUP_FILE
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
                      warmup_batch_sizes=(1, 2))
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
    assert [m.alias for m in modules].count("tpu_func") == 1  # serving_default's, for TPU
    for module in modules:
        assert module.platforms == ("cpu", "cuda", "tpu")
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
    request["prompt_tokens"] = np.zeros((1, 8, 3), int).tolist()  # fixed-bucket signatures want 8
    shown = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(exported[2]),
                            json.dumps(request)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    shapes = json.loads(shown.stdout.strip().splitlines()[-1])
    assert shapes["serving_default"] == {"acoustic_tokens": [1, 16, 3], "lengths": [1]}
    assert shapes["generate_fast"] == shapes["generate_16"] == shapes["serving_default"]
    assert shapes["logits"] == {"logits": [1, 16, 16]}
    assert shapes["metadata"] == {"contract": [2], "contract_json": [2]}
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


def test_fixed_bucket_signature_rejects_other_lengths(loaded, tiny_config):
    request = memorised_request(tiny_config, frames=16, prompt=8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="exactly 16 semantic tokens"):
        call(loaded, "generate_32", **request)
    request["prompt_tokens"] = request["prompt_tokens"][:, :6]
    request["prompt_lengths"] = np.array([4], np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="prompt_tokens of exactly 8 frames"):
        call(loaded, "generate_16", **request)


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


def test_warmup_records_parse_and_replay(exported, loaded):
    logs = read_warmup(exported[2] / WARMUP_FILE)
    # (serving_default, generate_fast) x 2 buckets + 2 fixed buckets, x batch sizes 1 and 2.
    assert len(logs) == 12
    seen = set()
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "soundstorm"
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        out = call(loaded, request.model_spec.signature_name, **inputs)
        seen.add((request.model_spec.signature_name,) + out["acoustic_tokens"].shape[:2])
    assert ("serving_default", 2, 32) in seen and ("generate_16", 1, 16) in seen


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
    import export.savedmodel as savedmodel
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
])
def test_export_options_that_cannot_work_are_refused(tiny_config, changes, message):
    options = dict(max_seconds=0.64, max_prompt_seconds=0.16, bucket_seconds=(0.32, 0.64))
    options.update(changes)
    with pytest.raises((ExportError, ConfigError), match=message):
        ExportConfig(**options).resolve(tiny_config)
