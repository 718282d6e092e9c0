"""Decoding speed of a preset on this machine: seconds of audio per second, passes/s, FLOP/s.

    .venv/bin/python benchmarks/decode_speed.py [--preset small] [--seconds 5 10 30 60]

Everything is measured in one run: the machine's float32 matmul peak first (the
best of a few square matmul sizes), then for each audio length the compile time
and the median wall time of `decode` over repeats. FLOPs per forward pass come
from XLA's cost analysis of one forward pass at that length; decoding runs
`sum(schedule)` of them. Parameters are freshly initialised: the cost of
decoding does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

from soundstorm.apps.bench.measure import forward_flops, matmul_peak_flops, median_seconds
from soundstorm.config import get_preset
from soundstorm.decoding import DecodingConfig, check_decode_inputs, decode
from soundstorm.model import init_params


def decode_request(config, num_frames: int, prompt_frames: int, rng):
    num_semantic = -(-num_frames // config.frames_per_semantic_token)
    return check_decode_inputs(
        config,
        rng.integers(0, config.semantic_vocab_size, (1, num_semantic)),
        rng.integers(0, config.codebook_size, (1, prompt_frames, config.num_levels)),
        [prompt_frames], [num_frames], [0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seconds", type=float, nargs="+", default=[5, 10, 30, 60])
    parser.add_argument("--prompt-seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = get_preset(args.preset)
    decoding = DecodingConfig.paper(config)
    params = init_params(config, jax.random.key(0))
    rng = np.random.default_rng(0)

    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"jax {jax.__version__} on {jax.devices()[0].platform} x{len(jax.devices())}")
    peak, peak_size = matmul_peak_flops()
    print(f"measured float32 matmul peak: {peak / 1e9:.1f} GFLOP/s ({peak_size}x{peak_size})")
    print(f"preset {args.preset}: {config.num_layers} layers, width {config.model_dim}, "
          f"{config.num_levels} levels x {config.codebook_size} codes; schedule "
          f"{decoding.level_schedule} = {decoding.num_passes} forward passes; "
          f"prompt {args.prompt_seconds:g} s; batch 1; median of {args.repeats}")
    header = (f"{'audio s':>8} {'frames':>7} {'compile s':>10} {'decode s':>9} "
              f"{'audio s/s':>10} {'passes/s':>9} {'GFLOP/pass':>11} {'GFLOP/s':>8} {'of peak':>8}")
    print(header)
    for seconds in args.seconds:
        num_frames = int(round(seconds * config.frame_rate_hz))
        prompt_frames = int(round(args.prompt_seconds * config.frame_rate_hz))
        inputs = decode_request(config, num_frames, prompt_frames, rng)
        run = lambda: jax.block_until_ready(decode(params, *inputs, config=config,
                                                   decoding=decoding))
        start = time.perf_counter()
        jax.block_until_ready(run())
        compile_seconds = time.perf_counter() - start
        seconds_per_call = median_seconds(run, args.repeats, warm_up=False)
        flops_per_pass = forward_flops(config, params, inputs[0].shape[1] *
                                       config.frames_per_semantic_token)
        achieved = flops_per_pass * decoding.num_passes / seconds_per_call
        print(f"{seconds:>8g} {num_frames:>7d} {compile_seconds - seconds_per_call:>10.2f} "
              f"{seconds_per_call:>9.2f} {seconds / seconds_per_call:>10.2f} "
              f"{decoding.num_passes / seconds_per_call:>9.2f} {flops_per_pass / 1e9:>11.2f} "
              f"{achieved / 1e9:>8.1f} {achieved / peak:>8.1%}")


if __name__ == "__main__":
    main()
