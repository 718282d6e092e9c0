"""The SavedModel's own jax2tf modules, extracted (export/extract.py) and run by JAX alone
(export/module_runner.py): what lets the CUDA lowering a fleet deploys run on a GPU machine
without TensorFlow (benchmarks/gpu.sh). Here the CPU lowering stands in for it: the tokens
must be the SavedModel's."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import tensorflow as tf

from soundstorm.export.extract import extract_modules, signature_modules
from soundstorm.export.module_runner import ExtractedModel, flat_parameters, nested_parameters
from soundstorm.export.reload import load_jax_model
from soundstorm.export.stablehlo import polymorphic_exported

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "models" / "soundstorm" / "4"


@pytest.fixture(scope="module")
def committed_modules(tmp_path_factory):
    """The committed reference model's serving_default, one TPU bucket signature and logits."""
    out = tmp_path_factory.mktemp("modules")
    extract_modules(COMMITTED, out, ("serving_default", "generate_250", "logits"))
    return ExtractedModel.load(out)


def _request(config, batch, semantic, prompt, frames_per_example, prompt_lengths, seed=0):
    rng = np.random.default_rng(seed)
    return {"semantic_tokens": rng.integers(0, config.semantic_vocab_size, (batch, semantic),
                                            dtype=np.int32),
            "prompt_tokens": rng.integers(0, config.codebook_size, (batch, prompt,
                                                                    config.num_levels),
                                          dtype=np.int32),
            "prompt_lengths": np.asarray(prompt_lengths, np.int32),
            "lengths": np.asarray(frames_per_example, np.int32),
            "seeds": np.arange(7, 7 + batch, dtype=np.int32),
            "temperature": np.ones(batch, np.float32),
            "choice_temperature": np.full(batch, 2.0, np.float32)}


def _savedmodel(version_dir, signature, request):
    function = tf.saved_model.load(str(version_dir)).signatures[signature]
    return {k: v.numpy() for k, v in function(**{k: tf.constant(v)
                                                 for k, v in request.items()}).items()}


def test_the_manifest_names_every_parameter_in_the_modules_argument_order(committed_modules):
    manifest = committed_modules.manifest
    config, params = load_jax_model(COMMITTED)
    assert manifest["parameters"] == list(flat_parameters(params))
    assert len(manifest["parameters"]) == len(jax.tree_util.tree_leaves(params)) == 156
    stored = committed_modules.params
    for name, array in flat_parameters(params).items():
        np.testing.assert_array_equal(stored[name], array)
    assert manifest["modules"]["serving_default"]["platforms"] == ["cpu", "cuda", "tpu"]
    assert manifest["modules"]["serving_default"]["level_schedule"] == [16, 1, 1, 1, 1, 1, 1, 1]
    assert manifest["modules"]["generate_250"]["input_shapes"][0] == "(b, _)"
    assert committed_modules.config == config
    # The nested tree decode takes, back from the names.
    assert jax.tree_util.tree_structure(nested_parameters(stored)) == \
        jax.tree_util.tree_structure(params)


def test_serving_default_gives_the_savedmodels_tokens_at_several_shapes(committed_modules):
    config = committed_modules.config
    for batch, semantic, prompt, lengths, prompt_lengths in [
            (1, 60, 20, [60], [20]),
            (2, 90, 40, [90, 70], [40, 10])]:  # padding and a shorter prompt in a batch
        request = _request(config, batch, semantic, prompt, lengths, prompt_lengths)
        tokens, = committed_modules.call("serving_default", committed_modules.params, request)
        expected = _savedmodel(COMMITTED, "serving_default", request)["acoustic_tokens"]
        assert tokens.shape == (batch, semantic, config.num_levels)
        np.testing.assert_array_equal(np.asarray(tokens), expected)


def test_a_tpu_bucket_module_gives_the_savedmodels_tokens_for_padded_inputs(committed_modules):
    config = committed_modules.config
    # The signature pads to the bucket in TF before its module; the module takes them padded.
    request = _request(config, 2, 250, 150, [250, 120], [150, 30], seed=1)
    tokens, = committed_modules.call("generate_250", committed_modules.params, request)
    expected = _savedmodel(COMMITTED, "generate_250", request)["acoustic_tokens"]
    np.testing.assert_array_equal(np.asarray(tokens), expected)


def test_the_logits_module_gives_the_savedmodels_logits(committed_modules):
    config = committed_modules.config
    rng = np.random.default_rng(2)
    request = {"semantic_tokens": rng.integers(0, config.semantic_vocab_size, (2, 40),
                                               dtype=np.int32),
               "acoustic_tokens": rng.integers(0, config.codebook_size + 1,
                                               (2, 40, config.num_levels), dtype=np.int32),
               "lengths": np.array([40, 25], np.int32), "levels": np.array([0, 5], np.int32)}
    logits, = committed_modules.call("logits", committed_modules.params, request)
    expected = _savedmodel(COMMITTED, "logits", request)["logits"]
    assert logits.shape == (2, 40, config.codebook_size)
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-5, atol=1e-5)


def test_a_single_platform_export_runs_too(served_version, tmp_path):
    extract_modules(served_version, tmp_path, ("serving_default",))
    model = ExtractedModel.load(tmp_path)
    assert model.manifest["modules"]["serving_default"]["platforms"] == ["cpu"]
    config = model.config
    frames = model.manifest["max_frames"]
    request = _request(config, 2, frames // config.frames_per_semantic_token,
                       model.manifest["max_prompt_frames"], [frames, frames - 5], [4, 8])
    tokens, = model.call("serving_default", model.params, request)
    np.testing.assert_array_equal(
        np.asarray(tokens), _savedmodel(served_version, "serving_default", request)["acoustic_tokens"])


def test_the_runner_needs_no_tensorflow(committed_modules, tmp_path):
    """What the GPU machine has: JAX and this package, no TensorFlow importable."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'tensorflow_serving'):\n"
        "            raise ImportError('no TensorFlow here: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n")
    config = committed_modules.config
    request = _request(config, 1, 50, 20, [50], [20], seed=4)
    np.savez(tmp_path / "request.npz", **request)
    script = (
        "import sys, numpy as np\n"
        "from soundstorm.export.module_runner import ExtractedModel\n"
        f"model = ExtractedModel.load({str(committed_modules.folder)!r})\n"
        f"request = dict(np.load({str(tmp_path / 'request.npz')!r}))\n"
        "tokens, = model.call('serving_default', model.params, request)\n"
        f"np.save({str(tmp_path / 'tokens.npy')!r}, np.asarray(tokens))\n"
        "assert 'tensorflow' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, env={"PYTHONPATH": f"{tmp_path}:{REPO}",
                                            "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(
        np.load(tmp_path / "tokens.npy"),
        _savedmodel(COMMITTED, "serving_default", request)["acoustic_tokens"])


def test_mistakes_are_named(committed_modules, tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json in .*soundstorm.export.extract"):
        ExtractedModel.load(tmp_path)
    params = dict(committed_modules.params)
    config = committed_modules.config
    request = _request(config, 1, 20, 10, [20], [10])
    missing = next(iter(params))
    del params[missing]
    with pytest.raises(KeyError, match=missing):
        committed_modules.call("serving_default", params, request)
    with pytest.raises(ValueError, match="unknown parameters or inputs .*'speed'"):
        committed_modules.call("serving_default", committed_modules.params,
                               {**request, "speed": np.ones(1)})
    entry = committed_modules.manifest["modules"]["serving_default"]
    module = (committed_modules.folder / entry["file"]).read_bytes()
    with pytest.raises(ValueError, match="takes 163 arguments and gives 1 results, not 155 "
                                         "parameters"):
        polymorphic_exported(module, ("cpu", "cuda", "tpu"), 10, num_parameters=155,
                             input_shapes=tuple(entry["input_shapes"]),
                             output_shapes=tuple(entry["output_shapes"]))
    with pytest.raises(ValueError, match=r"no jax2tf module in signature\(s\) \['metadata'\].*"
                                         "these have one: .*serving_default"):
        extract_modules(COMMITTED, tmp_path / "out", ("metadata",))


def test_every_generating_signature_reaches_exactly_its_own_module():
    from soundstorm.export.modules import _saved_model
    meta_graph, = _saved_model(COMMITTED).meta_graphs
    found = signature_modules(meta_graph)
    contract = json.loads((COMMITTED / "assets.extra" / "model_contract.json").read_text())
    generating = {s["name"] for s in contract["signatures"]}
    assert set(found) == generating | {"logits"}  # metadata computes through none
    assert len({function for function, *_ in found.values()}) == len(found)
