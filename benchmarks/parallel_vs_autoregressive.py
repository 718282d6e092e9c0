"""The parallel-decoding claim: SoundStorm's decoder against an autoregressive one of the same size.

    .venv/bin/python benchmarks/parallel_vs_autoregressive.py [--preset small] [--seconds 5 10 30]

For each total length (3 s prompt included), in one run: SoundStorm's `decode`
(paper schedule: 16 + 1 per further level passes) and `autoregressive.generate`
(one pass per generated token, key-value cache), both jitted, compile time
excluded, medians of `--repeats`; forward passes and wall time as ratios.
Freshly initialised parameters: cost does not depend on their values.
"""

from __future__ import annotations

import argparse
import os
import platform

import jax
import numpy as np

from soundstorm import autoregressive
from soundstorm.apps.bench.measure import median_seconds
from soundstorm.config import get_preset
from soundstorm.decoding import DecodingConfig, check_decode_inputs, decode
from soundstorm.model import init_params

PROMPT_SECONDS = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 10.0, 30.0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = get_preset(args.preset)
    decoding = DecodingConfig.paper(config)
    params = init_params(config, jax.random.key(0))
    ar_params = autoregressive.init_params(config, jax.random.key(0))
    rng = np.random.default_rng(0)
    prompt_frames = round(PROMPT_SECONDS * config.frame_rate_hz)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; preset {args.preset}; "
          f"{PROMPT_SECONDS:g} s prompt; batch 1; medians of {args.repeats}")
    print(f"{'total s':>8} {'SoundStorm passes':>18} {'AR passes':>10} {'SoundStorm s':>13} "
          f"{'AR s':>9} {'AR / SoundStorm':>16}")
    for seconds in args.seconds:
        frames = round(seconds * config.frame_rate_hz)
        semantic = rng.integers(0, config.semantic_vocab_size,
                                (1, frames // config.frames_per_semantic_token))
        prompt = rng.integers(0, config.codebook_size, (1, prompt_frames, config.num_levels))
        inputs = check_decode_inputs(config, semantic, prompt, [prompt_frames], [frames], [0])
        parallel_s = median_seconds(lambda: jax.block_until_ready(
            decode(params, *inputs, config=config, decoding=decoding)), args.repeats)
        ar_s = median_seconds(lambda: jax.block_until_ready(autoregressive.generate(
            ar_params, inputs[0], inputs[1], 0, 1.0, config=config, prompt_frames=prompt_frames)),
            args.repeats)
        ar_passes = (frames - prompt_frames) * config.num_levels
        print(f"{seconds:8.1f} {decoding.num_passes:18d} {ar_passes:10d} {parallel_s:13.2f} "
              f"{ar_s:9.2f} {ar_s / parallel_s:16.1f}")


if __name__ == "__main__":
    main()
