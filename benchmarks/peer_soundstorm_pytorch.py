"""Our decoder against the peer: lucidrains' soundstorm-pytorch at the same shape, same lengths.

    .venv/bin/pip install --no-deps soundstorm-pytorch==0.6.1
    .venv/bin/pip install einops beartype hyper-connections      # what its SoundStorm class needs
    .venv/bin/python benchmarks/peer_soundstorm_pytorch.py [--preset small] [--seconds 5 10]

Both models get the preset's width, depth, heads, feed-forward size, levels,
codebook and convolution kernel, and the paper's schedule of 16 iterations for
level 1 (the peer's `steps`; its `num_full_sampling_levels=1` makes every other
level one greedy pass, as ours; its passes are counted with a forward hook). Same 3 s prompt, same semantic conditioning rate (50 Hz for the
speech presets), batch 1, CPU, medians of `--repeats`, compile/warm-up calls
excluded. Parameters are freshly initialised: cost does not depend on them.

The peer is built by soundstorm/bench/peer.py (which registers stand-ins for the
modules its package imports but the SoundStorm class never uses); `soundstorm
bench` runs the same comparison as one of its sections.
"""

from __future__ import annotations

import argparse
import os
import platform

import jax
import numpy as np

from soundstorm.bench.measure import median_seconds
from soundstorm.bench.peer import (PEER_VERSION, PeerMissing, build_peer, forward_passes,
                                   peer_generate)
from soundstorm.config import get_preset
from soundstorm.decoding import DecodingConfig, check_decode_inputs, decode
from soundstorm.model import init_params

PROMPT_SECONDS = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 10.0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    config = get_preset(args.preset)
    decoding = DecodingConfig.paper(config)
    steps = decoding.level_schedule[0]
    params = init_params(config, jax.random.key(0))
    try:
        peer = build_peer(config, steps)
    except PeerMissing as error:
        raise SystemExit(str(error)) from None
    peer_params = sum(p.numel() for p in peer.parameters())
    rng = np.random.default_rng(0)
    prompt_frames = round(PROMPT_SECONDS * config.frame_rate_hz)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; preset {args.preset}; "
          f"ours: JAX {jax.__version__}; peer: soundstorm-pytorch {PEER_VERSION} on torch "
          f"{torch.__version__} ({peer_params / 1e6:.1f}M parameters), "
          f"{torch.get_num_threads()} threads; {PROMPT_SECONDS:g} s prompt; batch 1; "
          f"medians of {args.repeats}")
    print(f"{'total s':>8} {'our passes':>11} {'peer passes':>12} {'ours s':>8} {'peer s':>8} "
          f"{'peer / ours':>12}")
    for seconds in args.seconds:
        frames = round(seconds * config.frame_rate_hz)
        semantic = rng.integers(0, config.semantic_vocab_size,
                                (1, frames // config.frames_per_semantic_token))
        prompt = rng.integers(0, config.codebook_size, (1, prompt_frames, config.num_levels))
        inputs = check_decode_inputs(config, semantic, prompt, [prompt_frames], [frames], [0])
        ours = median_seconds(lambda: jax.block_until_ready(
            decode(params, *inputs, config=config, decoding=decoding)), args.repeats)
        run = lambda: peer_generate(peer, semantic, prompt, frames)
        peer_passes = forward_passes(peer, run)  # also the untimed first call
        theirs = median_seconds(run, args.repeats, warm_up=False)
        print(f"{seconds:8.1f} {decoding.num_passes:11d} {peer_passes:12d} "
              f"{ours:8.2f} {theirs:8.2f} {theirs / ours:12.2f}")


if __name__ == "__main__":
    main()
