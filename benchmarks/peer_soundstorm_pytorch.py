"""Our decoder against the peer: lucidrains' soundstorm-pytorch at the same shape, same lengths.

    .venv/bin/pip install --no-deps soundstorm-pytorch==0.6.1
    .venv/bin/pip install einops beartype hyper-connections      # what its SoundStorm class needs
    .venv/bin/python benchmarks/peer_soundstorm_pytorch.py [--preset small] [--seconds 5 10]

Both models get the preset's width, depth, heads, feed-forward size, levels,
codebook and convolution kernel, and the paper's schedule of 16 iterations for
level 1 (the peer's `steps`; its `num_full_sampling_levels=1` makes the other
levels greedy, though its loop still runs `steps` passes for every level: we
count them). Same 3 s prompt, same semantic conditioning rate (50 Hz for the
speech presets), batch 1, CPU, medians of `--repeats`, compile/warm-up calls
excluded. Parameters are freshly initialised: cost does not depend on them.

soundstorm-pytorch imports its text-to-semantic, codec and trainer dependencies
(spear-tts-pytorch, audiolm-pytorch, accelerate) when the package loads, though
the SoundStorm class never touches them; the script registers empty stand-ins
for those modules, so only what the class needs is installed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import types

import jax
import numpy as np

from soundstorm.config import get_preset
from soundstorm.decoding import DecodingConfig, check_decode_inputs, decode
from soundstorm.model import init_params

PROMPT_SECONDS = 3.0
_UNUSED_MODULES = {
    "spear_tts_pytorch": ["TextToSemantic"],
    "audiolm_pytorch": ["SoundStream", "HubertWithKmeans", "FairseqVQWav2Vec"],
    "audiolm_pytorch.data": ["get_dataloader"],
    "audiolm_pytorch.optimizer": ["get_optimizer"],
    "accelerate": ["Accelerator", "DistributedType"],
}


def import_peer():
    for name, attributes in _UNUSED_MODULES.items():
        if name not in sys.modules:
            module = types.ModuleType(name)
            for attribute in attributes:
                setattr(module, attribute, type(attribute, (), {}))
            sys.modules[name] = module
    try:
        import soundstorm_pytorch
    except ImportError as error:
        raise SystemExit(f"soundstorm-pytorch is not installed ({error}); see this script's "
                         "docstring for the two pip commands") from None
    return soundstorm_pytorch


def build_peer(config, steps: int):
    import torch
    peer = import_peer()
    net = peer.ConformerWrapper(
        codebook_size=config.codebook_size, num_quantizers=config.num_levels,
        conformer=dict(dim=config.model_dim, depth=config.num_layers, heads=config.num_heads,
                       dim_head=config.head_dim, ff_mult=config.ff_dim // config.model_dim,
                       conv_kernel_size=config.conv_kernel_size, attn_flash=False))
    samples_per_frame = 16_000 // config.frame_rate_hz
    model = peer.SoundStorm(
        net, steps=steps, num_semantic_token_ids=config.semantic_vocab_size + 1,
        codec_target_sample_hz=16_000, codec_downsample_factor=samples_per_frame,
        wav2vec_target_sample_hz=16_000,
        wav2vec_downsample_factor=16_000 // config.semantic_rate_hz).eval()
    torch.set_grad_enabled(False)
    return model


def _median(fn, repeats: int) -> float:
    fn()  # compile / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    peer = build_peer(config, steps)
    peer_params = sum(p.numel() for p in peer.parameters())
    rng = np.random.default_rng(0)
    prompt_frames = round(PROMPT_SECONDS * config.frame_rate_hz)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; preset {args.preset}; "
          f"ours: JAX {jax.__version__}; peer: soundstorm-pytorch 0.6.1 on torch "
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
        ours = _median(lambda: jax.block_until_ready(
            decode(params, *inputs, config=config, decoding=decoding)), args.repeats)
        semantic_t = torch.from_numpy(semantic.astype(np.int64))
        prompt_t = torch.from_numpy(prompt.astype(np.int64))
        theirs = _median(lambda: peer.generate(
            num_latents=frames, cond_semantic_token_ids=semantic_t,
            prompt_acoustic_token_ids=prompt_t, num_full_sampling_levels=1), args.repeats)
        print(f"{seconds:8.1f} {decoding.num_passes:11d} {steps * config.num_levels:12d} "
              f"{ours:8.2f} {theirs:8.2f} {theirs / ours:12.2f}")


if __name__ == "__main__":
    main()
