"""The training state (parameters, AdamW's moments, step), its optimizer and schedule.

AdamW (Loshchilov & Hutter 2019) after global-norm clipping, with linear warm-up
and cosine decay to `final_learning_rate_ratio` of the peak; weight decay on
matrices and embedding tables only. Shared by the training loop and by
run_dir.py, which restores a checkpoint into this state's shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from soundstorm.config import SoundStormConfig, TrainConfig
from soundstorm.model import init_params


def make_optimizer(train_config: TrainConfig) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=train_config.peak_learning_rate,
        warmup_steps=train_config.warmup_steps, decay_steps=train_config.total_steps,
        end_value=train_config.peak_learning_rate * train_config.final_learning_rate_ratio)
    # Decay matrices and embedding tables, not biases or norm scales.
    decay_mask = lambda params: jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)
    return optax.chain(
        optax.clip_by_global_norm(train_config.grad_clip_norm),
        optax.adamw(schedule, b1=train_config.adam_b1, b2=train_config.adam_b2,
                    weight_decay=train_config.weight_decay, mask=decay_mask))


def learning_rate_at(train_config: TrainConfig, step: int) -> float:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, train_config.peak_learning_rate, train_config.warmup_steps,
        train_config.total_steps,
        train_config.peak_learning_rate * train_config.final_learning_rate_ratio)
    return float(schedule(step))


def init_state(config: SoundStormConfig, train_config: TrainConfig) -> dict:
    params = init_params(config, jax.random.key(train_config.seed))
    return {"step": jnp.zeros((), jnp.int32), "params": params,
            "opt_state": make_optimizer(train_config).init(params)}
