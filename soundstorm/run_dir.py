"""A training run's directory: what it holds, and reading it back without a trainer.

    <run>/config.json     {"model": SoundStormConfig, "train": TrainConfig}, written at the
                          first step; a run resumed with another config is refused
    <run>/data.json       the corpus's token contract (codec, semantic vocabulary), when the
                          run trains on a corpus; export copies it into the model contract
    <run>/checkpoints/    orbax checkpoints of the training state, one folder per saved step
    <run>/metrics.jsonl   one record per logged step (soundstorm/metrics.py)
    <run>/loss_curve.png  the loss curve, redrawn at the end of each `train`
    <run>/samples/        what `soundstorm sample` writes (audio, spectrograms)

The training loop (train.py) writes config.json, checkpoints and metrics; the
corpus loader writes data.json (SpeechCorpus.record_token_contract); export,
sampling and the benchmarks read them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from soundstorm.config import ConfigError, SoundStormConfig, TrainConfig
from soundstorm.train_state import init_state


@dataclasses.dataclass(frozen=True)
class RunDirectory:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def data_file(self) -> Path:
        return self.path / "data.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def loss_curve_file(self) -> Path:
        return self.path / "loss_curve.png"

    # config.json

    def read_config(self) -> tuple[SoundStormConfig, TrainConfig]:
        """The model and training configs. Raises FileNotFoundError when there is no run."""
        if not self.config_file.is_file():
            raise FileNotFoundError(f"no training run at {self.path} (config.json missing)")
        record = json.loads(self.config_file.read_text())
        return SoundStormConfig(**record["model"]), TrainConfig(**record["train"])

    def write_config(self, config: SoundStormConfig, train_config: TrainConfig) -> None:
        """Records the configs of a new run; for an existing run, checks they are the same.

        Raises ConfigError when the run was started with other configs.
        """
        record = {"model": dataclasses.asdict(config), "train": dataclasses.asdict(train_config)}
        if self.config_file.exists():
            if json.loads(self.config_file.read_text()) != json.loads(json.dumps(record)):
                raise ConfigError(f"{self.config_file} records a different configuration than "
                                  "this run; use a new run directory or the same configuration")
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(record, indent=2) + "\n")

    # data.json

    def read_data_record(self) -> dict | None:
        """The corpus's token contract, or None for a run on synthetic data."""
        return json.loads(self.data_file.read_text()) if self.data_file.is_file() else None

    def write_data_record(self, record: dict) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        self.data_file.write_text(json.dumps(record, indent=1) + "\n")
        return self.data_file

    # checkpoints/

    def checkpoint_manager(self, keep: int | None = None) -> ocp.CheckpointManager:
        """The run's orbax manager (the trainer saves through it, keeping `keep` steps)."""
        return ocp.CheckpointManager(
            self.checkpoint_dir.absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=keep is not None))

    def checkpoint_steps(self) -> list[int]:
        """The saved steps, ascending ([] when none)."""
        if not self.checkpoint_dir.is_dir():
            return []
        with self.checkpoint_manager() as manager:
            return sorted(manager.all_steps())

    def restore(self, step: int | None = None) -> tuple[dict, int]:
        """(parameters, step) of the latest or the given checkpoint, on the default device.

        Raises FileNotFoundError for a missing run or step, ConfigError when the
        checkpoint's arrays do not fit config.json.
        """
        config, train_config = self.read_config()
        steps = self.checkpoint_steps()
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {self.checkpoint_dir}")
        step = steps[-1] if step is None else step
        if step not in steps:
            raise FileNotFoundError(f"no checkpoint of step {step} in {self.checkpoint_dir} "
                                    f"(it has {steps})")
        # The state's shapes without computing it (no initialisation, no trainer).
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        abstract = jax.tree_util.tree_map(
            lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
            jax.eval_shape(lambda: init_state(config, train_config)))
        try:
            with self.checkpoint_manager() as manager:
                state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except ValueError as error:
            # orbax names the first array whose stored shape differs from the config's.
            raise ConfigError(f"config mismatch: the checkpoint of step {step} in {self.path} "
                              f"does not fit its config.json ({error})") from None
        return state["params"], step

    def load(self, step: int | None = None) -> tuple[SoundStormConfig, dict]:
        """(model config, parameters): what decoding and export need."""
        config, _ = self.read_config()
        return config, self.restore(step)[0]
