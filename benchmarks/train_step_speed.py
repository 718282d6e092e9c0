"""Training step time of model shapes at the reference corpus's token layout, in one run.

    .venv/bin/python benchmarks/train_step_speed.py [--batch-size 8] [--frames 200] [--repeats 5]

What chose the `compact` preset: on a CPU-hour budget the model is starved of
steps, so the step time decides how far it gets. Every shape is compiled first,
then the shapes are timed in turns (round robin, so load on the machine hits
all alike); the median step time and its ratio to `small` are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from soundstorm.config import get_preset
from soundstorm.batch import Batch
from soundstorm.config import TrainConfig
from soundstorm.train import make_train_step
from soundstorm.train_state import init_state

SHAPES = {
    "small (6 x 256)": ("small", {}),
    "compact (4 x 192)": ("compact", {}),
    "6 x 192": ("compact", dict(num_layers=6)),
    "8 x 256": ("small", dict(num_layers=8)),
    "small, bfloat16 compute": ("small", dict(compute_dtype="bfloat16")),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--frames", type=int, default=200, help="4 s at 50 Hz")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    batch_size, frames = args.batch_size, args.frames
    train_config = TrainConfig(batch_size=batch_size, total_steps=100, warmup_steps=5)
    compiled = {}
    for name, (preset, changes) in SHAPES.items():
        config = get_preset(preset).replace(**changes)
        batch = Batch(jnp.asarray(rng.integers(0, config.semantic_vocab_size, (batch_size, frames)),
                                  jnp.int32),
                      jnp.asarray(rng.integers(0, config.codebook_size,
                                               (batch_size, frames, config.num_levels)), jnp.int32),
                      jnp.full((batch_size,), frames, jnp.int32))
        state = init_state(config, train_config)
        step = jax.jit(make_train_step(config, train_config))
        jax.block_until_ready(step(state, batch))
        size = sum(leaf.size for leaf in jax.tree_util.tree_leaves(state["params"]))
        compiled[name] = (step, state, batch, size)
    times = {name: [] for name in SHAPES}
    for _ in range(args.repeats):
        for name, (step, state, batch, _) in compiled.items():
            start = time.perf_counter()
            jax.block_until_ready(step(state, batch))
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["small (6 x 256)"])
    print(f"{platform.machine()}, {os.cpu_count()} cores, JAX {jax.__version__}; batch "
          f"{batch_size} x {frames} frames; median of {args.repeats}")
    print("shape                      parameters   step s   vs small")
    for name, (_, _, _, size) in compiled.items():
        median = statistics.median(times[name])
        print(f"{name:26s} {size / 1e6:8.2f}M  {median:7.3f}   {median / base:6.2f}x")


if __name__ == "__main__":
    main()
