import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from soundstorm.config import PRESETS, ConfigError
from soundstorm.decoding import DecodingConfig, generate
from soundstorm.batch import Batch
from soundstorm.config import TrainConfig
from soundstorm.run_dir import RunDirectory
from soundstorm.synthetic import synthetic_batches
from soundstorm.train import Trainer
from soundstorm.train_state import learning_rate_at
from soundstorm.validation import InputError

from conftest import MEMORISE_CONFIG

SHORT = TrainConfig(batch_size=4, total_steps=6, warmup_steps=2, checkpoint_every=3,
                    log_every=1, peak_learning_rate=1e-3)


def short_batches(config):
    return synthetic_batches(config, SHORT.batch_size, 4, seed=7)


def test_tiny_model_memorises_a_small_dataset(trained_tiny, tiny_config):
    workdir, result = trained_tiny
    uniform = math.log(tiny_config.codebook_size)
    assert result.metrics[0]["loss"] > 0.6 * uniform
    assert result.metrics[-1]["loss"] < 0.1 * uniform
    assert (workdir / "loss_curve.png").stat().st_size > 0
    logged = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == list(range(20, 401, 20))
    assert {"loss", "accuracy", "grad_norm", "learning_rate", "frames_per_s"} <= set(logged[0])


def test_decoding_from_a_prompt_reproduces_the_memorised_continuation(
        trained_tiny, tiny_config, memorise_batches):
    _, result = trained_tiny
    data = next(memorise_batches())
    prompt_lengths = data.lengths // 4
    out = generate(result.params, tiny_config, data.semantic_tokens, data.acoustic_tokens,
                   prompt_lengths, data.lengths, np.arange(len(data.lengths)),
                   decoding=DecodingConfig.paper(tiny_config))
    frames = np.arange(out.shape[1])[None, :]
    target = (frames >= prompt_lengths[:, None]) & (frames < data.lengths[:, None])
    agreement = (out == data.acoustic_tokens)[target].mean()
    assert agreement > 0.9, agreement


def test_checkpoint_resume_equals_uninterrupted_training(tmp_path, tiny_config):
    straight = Trainer(tiny_config, SHORT, tmp_path / "straight").run(
        short_batches(tiny_config), progress=False)
    Trainer(tiny_config, SHORT, tmp_path / "resumed").run(
        short_batches(tiny_config), stop_at_step=3, progress=False)
    # A new process would build a new Trainer; the run directory is all it shares.
    resumed = Trainer(tiny_config, SHORT, tmp_path / "resumed").run(
        short_batches(tiny_config), progress=False)
    assert resumed.step == straight.step == 6
    jax.tree_util.tree_map(np.testing.assert_array_equal, resumed.params, straight.params)
    assert [r["step"] for r in resumed.metrics] == [1, 2, 3, 4, 5, 6]
    loaded, step = RunDirectory(tmp_path / "resumed").restore()
    assert step == 6
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, straight.params)


def test_a_run_directory_reads_back_without_a_trainer(tmp_path, tiny_config, monkeypatch):
    result = Trainer(tiny_config, SHORT, tmp_path).run(short_batches(tiny_config), progress=False)
    run = RunDirectory(tmp_path)
    assert run.read_config() == (tiny_config, SHORT)
    assert run.checkpoint_steps() == [3, 6]  # checkpoint_every 3, keep 2
    assert run.read_data_record() is None  # synthetic data: no corpus contract
    assert run.write_data_record({"codec": {"name": "x"}}) == tmp_path / "data.json"
    assert run.read_data_record() == {"codec": {"name": "x"}}
    # Reading must not build a trainer (no mesh, no compiled step).
    monkeypatch.setattr(Trainer, "__init__", lambda *args, **kwargs: pytest.fail("a Trainer"))
    params, step = run.restore(3)
    assert step == 3
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(params),
                                                        jax.tree_util.tree_leaves(result.params)))
    config, latest = run.load()
    assert config == tiny_config
    jax.tree_util.tree_map(np.testing.assert_array_equal, latest, result.params)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint of step 4 .*\[3, 6\]"):
        run.restore(4)
    with pytest.raises(FileNotFoundError, match="config.json missing"):
        RunDirectory(tmp_path / "elsewhere").load()


def test_resuming_with_another_config_is_refused(tmp_path, tiny_config):
    Trainer(tiny_config, SHORT, tmp_path).run(short_batches(tiny_config), stop_at_step=1,
                                              progress=False)
    other = TrainConfig(**{**SHORT.__dict__, "peak_learning_rate": 2e-3})
    with pytest.raises(ConfigError, match="different configuration"):
        Trainer(tiny_config, other, tmp_path).run(short_batches(tiny_config), progress=False)


def test_bfloat16_training_lowers_the_loss(tmp_path, tiny_config):
    config = tiny_config.replace(compute_dtype="bfloat16")
    train_config = TrainConfig(**{**MEMORISE_CONFIG.__dict__, "total_steps": 100})
    batches = synthetic_batches(config, 8, 8, dataset_size=8)
    result = Trainer(config, train_config, tmp_path).run(batches, progress=False)
    assert result.metrics[-1]["loss"] < 0.6 * result.metrics[0]["loss"]
    assert all(leaf.dtype == np.float32 for leaf in jax.tree_util.tree_leaves(result.params))


_TWO_DEVICE_SCRIPT = textwrap.dedent("""
    import sys, jax, numpy as np
    from soundstorm.config import PRESETS, TrainConfig
    from soundstorm.synthetic import synthetic_batches
    from soundstorm.train import Trainer
    assert len(jax.devices()) == 2, jax.devices()
    config = PRESETS["tiny"]
    train_config = TrainConfig(batch_size=4, total_steps=6, warmup_steps=2, checkpoint_every=3,
                               log_every=1, peak_learning_rate=1e-3)
    result = Trainer(config, train_config, sys.argv[1]).run(
        synthetic_batches(config, 4, 4, seed=7), progress=False)
    leaves = jax.tree_util.tree_leaves(result.params)
    np.savez(sys.argv[2], *[np.asarray(leaf) for leaf in leaves])
""")


def test_two_device_data_parallel_matches_one_device(tmp_path, tiny_config):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, "-c", _TWO_DEVICE_SCRIPT, str(tmp_path / "two"),
                    str(tmp_path / "two.npz")], check=True, env=env, cwd=os.getcwd())
    one = Trainer(tiny_config, SHORT, tmp_path / "one").run(short_batches(tiny_config),
                                                            progress=False)
    two = np.load(tmp_path / "two.npz")
    for index, leaf in enumerate(jax.tree_util.tree_leaves(one.params)):
        # Same math; the all-reduce sums in another order, and Adam scales tiny
        # gradient differences up to ~1e-6 in parameters that barely move.
        np.testing.assert_allclose(two[f"arr_{index}"], leaf, rtol=1e-3, atol=1e-5)


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(total_steps=100, warmup_steps=10, peak_learning_rate=1e-3)
    assert learning_rate_at(config, 0) == 0
    assert learning_rate_at(config, 10) == pytest.approx(1e-3)
    assert learning_rate_at(config, 100) == pytest.approx(1e-3 * config.final_learning_rate_ratio)
    assert learning_rate_at(config, 5) < learning_rate_at(config, 10) > learning_rate_at(config, 50)


def bad_batch(tiny_config, **changes):
    batch = next(short_batches(tiny_config))._asdict()
    for name, change in changes.items():
        batch[name] = change(batch[name].copy())
    return iter([Batch(**batch)] * 10)


@pytest.mark.parametrize("changes, message", [
    ({"acoustic_tokens": lambda a: np.where(a == a, 16, a)}, "acoustic_tokens .valid frames."),
    ({"acoustic_tokens": lambda a: a[..., :2]}, "3 levels"),
    ({"lengths": lambda a: a * 0}, "lengths must lie"),
    ({"semantic_tokens": lambda a: a[:, :2]}, "cannot cover"),
    ({"semantic_tokens": lambda a: a.astype(np.float64)}, "integers"),
    ({"lengths": lambda a: a[:3]}, "batch sizes differ"),
])
def test_bad_batches_raise_clear_errors(tmp_path, tiny_config, changes, message):
    with pytest.raises(InputError, match=message):
        Trainer(tiny_config, SHORT, tmp_path).run(bad_batch(tiny_config, **changes),
                                                  progress=False)


def test_level_weights_must_give_one_weight_per_level(tmp_path, tiny_config):
    weights = (1.0,) * (tiny_config.num_levels + 1)
    with pytest.raises(ConfigError, match=f"{tiny_config.num_levels} levels"):
        Trainer(tiny_config, dataclasses.replace(SHORT, level_weights=weights), tmp_path)


def test_running_out_of_data_names_the_step(tmp_path, tiny_config):
    batches = iter([next(short_batches(tiny_config))] * 2)
    with pytest.raises(InputError, match="ran out at step 2"):
        Trainer(tiny_config, SHORT, tmp_path).run(batches, progress=False)


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 0}, "batch_size"),
    ({"warmup_steps": 10, "total_steps": 10}, "warmup_steps"),
    ({"unknown_semantic_prob": 1.5}, "unknown_semantic_prob"),
    ({"peak_learning_rate": 0.0}, "peak_learning_rate"),
    ({"level_weights": (1.0, -1.0, 1.0)}, "level_weights"),
    ({"level_weights": (0.0, 0.0)}, "level_weights"),
])
def test_bad_train_configs_raise(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)
