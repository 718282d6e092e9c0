"""The peer: lucidrains' soundstorm-pytorch, built at one of our configs' shapes.

soundstorm-pytorch imports its text-to-semantic, codec and trainer dependencies
(spear-tts-pytorch, audiolm-pytorch, accelerate) when the package loads, though
the SoundStorm class never touches them; empty stand-ins are registered for
those modules, so only what the class needs is installed:

    .venv/bin/pip install --no-deps soundstorm-pytorch==0.6.1
    .venv/bin/pip install einops beartype hyper-connections
"""

from __future__ import annotations

import sys
import types

from soundstorm.config import SoundStormConfig

PEER_VERSION = "0.6.1"
INSTALL = (f"pip install --no-deps soundstorm-pytorch=={PEER_VERSION} && "
           "pip install einops beartype hyper-connections")
_UNUSED_MODULES = {
    "spear_tts_pytorch": ["TextToSemantic"],
    "audiolm_pytorch": ["SoundStream", "HubertWithKmeans", "FairseqVQWav2Vec"],
    "audiolm_pytorch.data": ["get_dataloader"],
    "audiolm_pytorch.optimizer": ["get_optimizer"],
    "accelerate": ["Accelerator", "DistributedType"],
}


class PeerMissing(RuntimeError):
    """soundstorm-pytorch (or torch) is not installed."""


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
        raise PeerMissing(f"soundstorm-pytorch is not installed ({error}); {INSTALL}") from None
    return soundstorm_pytorch


def build_peer(config: SoundStormConfig, steps: int):
    """The peer's SoundStorm with `config`'s width, depth, heads, feed-forward, levels,
    codebook, kernel and semantic rate, `steps` iterations per level, in eval mode."""
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


def peer_generate(model, semantic_tokens, prompt_tokens, frames: int, device: str = "cpu"):
    """One generation (numpy int inputs [1, S], [1, P, Q]); the peer decodes only level 1
    by sampling (`num_full_sampling_levels=1`), the others greedily, as ours does; the
    inputs are moved to `device`, where the model must be."""
    import contextlib
    import io

    import numpy as np
    import torch
    with contextlib.redirect_stderr(io.StringIO()):  # its per-iteration progress bars
        return model.generate(
            num_latents=frames,
            cond_semantic_token_ids=torch.from_numpy(semantic_tokens.astype(np.int64)).to(device),
            prompt_acoustic_token_ids=torch.from_numpy(prompt_tokens.astype(np.int64)).to(device),
            num_full_sampling_levels=1)


def forward_passes(model, call) -> int:
    """Runs call() once and counts the forward passes of the peer's network in it
    (counted, not derived from its settings: its loop runs one pass per greedy level
    although its progress bar announces `steps`)."""
    calls = []
    hook = model.net.register_forward_hook(lambda module, inputs, output: calls.append(1))
    try:
        call()
    finally:
        hook.remove()
    return len(calls)
