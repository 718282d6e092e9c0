"""The training loop: AdamW with warm-up and cosine decay, orbax checkpoints, data parallelism.

Data parallel over every local device with `jax.sharding`: the batch is split
along its first axis over a one-axis mesh ("data"), parameters and optimizer
state are replicated, and XLA inserts the gradient all-reduce. The same code
runs on one CPU and on a multi-device host. For several hosts, call
`jax.distributed.initialize()` before `train` on every host and give each host
its own slice of the global batch; see docs/training.md.

A run is a pure function of (config, train config, data order): the masking key
of step n is fold_in(seed, n), so a run stopped at a checkpoint and resumed ends
with the same parameters as one that never stopped.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from soundstorm.batch import Batch
from soundstorm.config import ConfigError, SoundStormConfig, TrainConfig
from soundstorm.masking import mask_for_training, masked_cross_entropy
from soundstorm.metrics import MetricsLog, plot_loss_curve
from soundstorm.model import SoundStorm
from soundstorm.run_dir import RunDirectory
from soundstorm.train_state import init_state, learning_rate_at, make_optimizer
from soundstorm.validation import InputError, check_batch, check_range, int_array


def make_train_step(config: SoundStormConfig, train_config: TrainConfig):
    """(state, batch) -> (state, metrics); pure, so jit and sharding do the rest."""
    model = SoundStorm(config)
    optimizer = make_optimizer(train_config)
    masking_key = jax.random.fold_in(jax.random.key(train_config.seed), 1)

    def train_step(state, batch: Batch):
        masked = mask_for_training(jax.random.fold_in(masking_key, state["step"]), config,
                                   batch.semantic_tokens, batch.acoustic_tokens, batch.lengths,
                                   train_config.unknown_semantic_prob, train_config.level_weights)

        def loss_fn(params):
            logits = model.apply({"params": params}, masked.semantic_tokens,
                                 masked.acoustic_inputs, masked.frame_mask, masked.levels)
            loss, count = masked_cross_entropy(logits, masked.targets, masked.loss_mask)
            correct = ((logits.argmax(-1) == masked.targets) & masked.loss_mask).sum()
            return loss, (count, correct)

        (loss, (count, correct)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state["params"])
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        new_state = {"step": state["step"] + 1,
                     "params": optax.apply_updates(state["params"], updates),
                     "opt_state": opt_state}
        metrics = {"loss": loss, "masked_tokens": count,
                   "accuracy": correct / jnp.maximum(count, 1),
                   "grad_norm": optax.tree.norm(grads)}
        return new_state, metrics

    return train_step


def check_batch_inputs(config: SoundStormConfig, batch: Batch) -> Batch:
    semantic = int_array("semantic_tokens", batch.semantic_tokens, 2)
    acoustic = int_array("acoustic_tokens", batch.acoustic_tokens, 3)
    lengths = int_array("lengths", batch.lengths, 1)
    check_batch(semantic_tokens=semantic, acoustic_tokens=acoustic, lengths=lengths)
    num_frames = acoustic.shape[1]
    if acoustic.shape[2] != config.num_levels:
        raise InputError(f"acoustic_tokens must have {config.num_levels} levels, "
                         f"got shape {acoustic.shape}")
    if semantic.shape[1] * config.frames_per_semantic_token < num_frames:
        raise InputError(f"{semantic.shape[1]} semantic tokens cannot cover {num_frames} frames "
                         f"at {config.frames_per_semantic_token} frames per token")
    check_range("lengths", lengths, 1, num_frames)
    valid = np.arange(num_frames)[None, :] < lengths[:, None]
    check_range("acoustic_tokens (valid frames)", acoustic, 0, config.codebook_size - 1,
                where=np.broadcast_to(valid[..., None], acoustic.shape))
    check_range("semantic_tokens", semantic, 0, config.semantic_unknown_id)
    return Batch(semantic.astype(np.int32), acoustic.astype(np.int32), lengths.astype(np.int32))


@dataclasses.dataclass
class TrainResult:
    params: dict
    step: int
    metrics: list[dict]


class Trainer:
    """Owns the mesh, the compiled step and the checkpoints of one run directory."""

    def __init__(self, config: SoundStormConfig, train_config: TrainConfig, workdir: Path,
                 loss_baselines: dict[str, float] | None = None):
        self.config = config
        self.train_config = train_config
        self.workdir = Path(workdir)
        self.run_dir = RunDirectory(self.workdir)
        self.loss_baselines = loss_baselines
        self.mesh = Mesh(np.asarray(jax.devices()), ("data",))
        self.num_devices = self.mesh.size
        weights = train_config.level_weights
        if weights is not None and len(weights) != config.num_levels:
            raise ConfigError(f"level_weights has {len(weights)} entries; the model has "
                              f"{config.num_levels} levels")
        if train_config.batch_size % self.num_devices:
            raise ConfigError(f"batch_size {train_config.batch_size} must be divisible by the "
                              f"{self.num_devices} devices of the data-parallel mesh")
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.data_sharding = NamedSharding(self.mesh, PartitionSpec("data"))
        self.step_fn = jax.jit(make_train_step(config, train_config), donate_argnums=0)
        self.checkpoints = self.run_dir.checkpoint_manager(keep=train_config.keep_checkpoints)
        self.log = MetricsLog(self.run_dir.metrics_file)

    def restore_or_init(self) -> dict:
        state = jax.device_put(init_state(self.config, self.train_config), self.replicated)
        latest = self.checkpoints.latest_step()
        if latest is None:
            return state
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)
        return self.checkpoints.restore(latest, args=ocp.args.StandardRestore(abstract))

    def _shard(self, batch: Batch) -> Batch:
        return Batch(*(jax.make_array_from_process_local_data(self.data_sharding, field)
                       for field in batch))

    def run(self, batches: Iterator[Batch], stop_at_step: int | None = None,
            progress: bool = True) -> TrainResult:
        """Trains until total_steps (or stop_at_step), resuming from the latest checkpoint.

        `batches` must yield the run's batches from its first step: on resume the
        ones already consumed are skipped, so the data order is the same.
        """
        # A run directory belongs to one config: resuming with another is an error.
        self.run_dir.write_config(self.config, self.train_config)
        tc = self.train_config
        end = tc.total_steps if stop_at_step is None else min(stop_at_step, tc.total_steps)
        state = self.restore_or_init()
        start = int(state["step"])
        self.log.truncate_after(start)
        batches = itertools.islice(iter(batches), start, None)

        window: list[dict] = []
        frames_in_window, window_start = 0, time.perf_counter()
        bar = tqdm(total=end, initial=start, desc="train", unit="step", disable=not progress,
                   dynamic_ncols=True)
        for step in range(start, end):
            try:
                batch = check_batch_inputs(self.config, next(batches))
            except StopIteration:
                raise InputError(f"the data ran out at step {step} of {end}") from None
            if batch.acoustic_tokens.shape[0] != tc.batch_size:
                raise InputError(f"batch has {batch.acoustic_tokens.shape[0]} examples, "
                                 f"train config says batch_size={tc.batch_size}")
            state, metrics = self.step_fn(state, self._shard(batch))
            window.append(metrics)
            frames_in_window += int(batch.lengths.sum())
            done = step + 1
            if done % tc.log_every == 0 or done == end:
                # Reading the metrics waits for the window's steps (dispatch is
                # asynchronous); only then does the clock say what they cost.
                means = {name: float(np.mean([float(m[name]) for m in window]))
                         for name in ("loss", "accuracy", "grad_norm")}
                elapsed = time.perf_counter() - window_start
                record = {"step": done, **means, "learning_rate": learning_rate_at(tc, done),
                          "frames_per_s": frames_in_window / elapsed}
                self.log.write(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}",
                                frames_per_s=f"{record['frames_per_s']:.0f}")
                window, frames_in_window, window_start = [], 0, time.perf_counter()
            if done % tc.checkpoint_every == 0 or done == end:
                self.checkpoints.save(done, args=ocp.args.StandardSave(state))
            bar.update(1)
        bar.close()
        self.checkpoints.wait_until_finished()
        records = self.log.read()
        if records:
            plot_loss_curve(records, self.run_dir.loss_curve_file, self.config.codebook_size,
                            self.loss_baselines)
        return TrainResult(params=state["params"], step=int(state["step"]), metrics=records)
