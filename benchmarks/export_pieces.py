"""Where the SavedModel's time goes against JAX: each Conformer piece and a whole forward pass.

    .venv/bin/python benchmarks/export_pieces.py [--preset small] [--frames 1500]

Each piece (self-attention, convolution module, feed-forward module, and the
whole network for one level) is jitted in JAX and converted with jax2tf into a
jit_compile tf.function (what the SavedModel runs), then both are timed
alternately in this one process; medians of `--repeats`. Freshly initialised
parameters: cost does not depend on their values.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import numpy as np
import tensorflow as tf
from jax.experimental import jax2tf

from soundstorm.config import get_preset
from soundstorm.model import (ConvModule, FeedForward, SelfAttention, SoundStorm,
                              frame_mask_from_lengths, init_params)


def _times(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def compare(fn, params, inputs, repeats: int) -> tuple[float, float]:
    """Median seconds of fn(params, *inputs) in JAX and through jax2tf, run alternately."""
    jitted = jax.jit(fn)
    variables = tf.nest.map_structure(lambda a: tf.Variable(a, trainable=False),
                                      jax.tree_util.tree_map(np.asarray, params))
    converted = jax2tf.convert(fn, with_gradient=False, native_serialization_platforms=("cpu",))
    compiled = tf.function(lambda *args: converted(variables, *args), jit_compile=True,
                           autograph=False)
    tf_inputs = [tf.constant(x) for x in inputs]
    run_jax = lambda: jax.block_until_ready(jitted(params, *inputs))
    run_tf = lambda: compiled(*tf_inputs).numpy()
    run_jax(), run_tf()
    jax_times, tf_times = [], []
    for _ in range(repeats):
        jax_times += _times(run_jax, 1)
        tf_times += _times(run_tf, 1)
    return statistics.median(jax_times), statistics.median(tf_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    config = get_preset(args.preset)
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(1, args.frames, config.model_dim)).astype(np.float32)
    mask = np.ones((1, args.frames), bool)

    rows = []
    for name, module, takes_mask in (("self-attention", SelfAttention(config), True),
                                     ("convolution module", ConvModule(config), True),
                                     ("feed-forward module", FeedForward(config), False)):
        inputs = (hidden, mask) if takes_mask else (hidden,)
        params = module.init(jax.random.key(0), *inputs)
        rows.append((name, *compare(lambda p, *x, m=module: m.apply(p, *x), params, inputs,
                                    args.repeats)))

    model = SoundStorm(config)
    semantic = rng.integers(0, config.semantic_vocab_size,
                            (1, args.frames // config.frames_per_semantic_token)).astype(np.int32)
    acoustic = np.full((1, args.frames, config.num_levels), config.mask_id, np.int32)
    lengths, levels = np.array([args.frames], np.int32), np.zeros(1, np.int32)

    def forward(p, s, a, n, q):
        return model.apply({"params": p}, s, a, frame_mask_from_lengths(n, a.shape[1]), q)
    rows.append(("whole forward pass", *compare(forward, init_params(config, jax.random.key(0)),
                                                (semantic, acoustic, lengths, levels),
                                                args.repeats)))

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; preset {args.preset}, "
          f"{args.frames} frames, batch 1; JAX {jax.__version__}, TF {tf.__version__}; "
          f"medians of {args.repeats}, alternating")
    print(f"{'piece':22} {'JAX ms':>9} {'jax2tf+TF ms':>13} {'ratio':>7}")
    for name, jax_s, tf_s in rows:
        print(f"{name:22} {1e3 * jax_s:9.2f} {1e3 * tf_s:13.2f} {tf_s / jax_s:7.3f}")


if __name__ == "__main__":
    main()
