"""An independent NumPy forward pass of the SoundStorm network, for tests only.

Written from the papers, sharing no code with soundstorm/model.py, one example
and one head at a time:
- SoundStorm (Borsos et al. 2023, section 3.2): a frame's input is the sum of the
  embeddings of its RVQ tokens (one table per level, a mask row each) plus the
  embedding of the semantic token covering it; one output head per level.
- Conformer block, Macaron form (Gulati et al. 2020, eq. 1): x + 1/2 FFN(x), then
  x + MHSA(x), x + Conv(x), x + 1/2 FFN(x), then LayerNorm; each module pre-normed.
  Here every residual branch is also multiplied by a learnt per-channel scale
  (LayerScale, Touvron et al. 2021), and the convolution module's BatchNorm is a
  LayerNorm (docs/model.md says why).
- FFN: Linear, Swish, Linear. Conv module: pointwise to 2x channels, GLU,
  depthwise convolution ("same" padding, zeros outside the sequence; padding
  frames zeroed first), norm, Swish, pointwise.
- Attention: softmax(q k^T / sqrt(d_head)) v over the valid frames only, with rotary
  positions (Su et al. 2021, RoFormer eq. 34): the channel pairs (i, i + d/2) of
  the query and key at position m turn by angle m * base^(-i / (d/2)).

`params` is the Flax parameter tree (nested dicts of arrays): only its values are
read, by the names the network gives them.
"""

from __future__ import annotations

import numpy as np


def _layer_norm(x, p, epsilon):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * p["scale"] + p["bias"]


def _swish(x):
    return x / (1.0 + np.exp(-x))


def _linear(x, p):
    return x @ p["kernel"] + p["bias"]


def _feed_forward(x, p, epsilon):
    return _linear(_swish(_linear(_layer_norm(x, p["LayerNorm_0"], epsilon), p["Dense_0"])),
                   p["Dense_1"])


def _rotate(x, base):
    """x: [T, d] of one head; channel i pairs with i + d/2 and turns by t * base^(-i/(d/2))."""
    length, dim = x.shape
    half = dim // 2
    out = np.empty_like(x)
    for t in range(length):
        for i in range(half):
            angle = t * base ** (-i / half)
            a, b = x[t, i], x[t, i + half]
            out[t, i] = a * np.cos(angle) - b * np.sin(angle)
            out[t, i + half] = a * np.sin(angle) + b * np.cos(angle)
    return out


def _attention(x, valid, p, config):
    y = _layer_norm(x, p["LayerNorm_0"], config.layer_norm_epsilon)
    out = np.zeros((x.shape[0], config.model_dim))
    for h in range(config.num_heads):
        project = lambda name: y @ p[name]["kernel"][:, h, :] + p[name]["bias"][h]
        q = _rotate(project("query"), config.rotary_base)
        k = _rotate(project("key"), config.rotary_base)
        v = project("value")
        scores = q @ k.T / np.sqrt(q.shape[-1])
        scores[:, ~valid] = -np.inf                       # padding frames are never attended
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        out += (weights @ v) @ p["out"]["kernel"][h]
    return out + p["out"]["bias"]


def _convolution(x, valid, p, config):
    epsilon = config.layer_norm_epsilon
    y = _linear(_layer_norm(x, p["LayerNorm_0"], epsilon), p["Dense_0"])
    channels = y.shape[-1] // 2
    y = y[:, :channels] * (1.0 / (1.0 + np.exp(-y[:, channels:])))   # GLU
    y = np.where(valid[:, None], y, 0.0)
    kernel = p["depthwise"]["kernel"][:, 0, :]                         # [K, C]
    reach = kernel.shape[0] // 2
    padded = np.concatenate([np.zeros((reach, channels)), y, np.zeros((reach, channels))])
    y = np.stack([(padded[t:t + kernel.shape[0]] * kernel).sum(0) for t in range(len(x))])
    y = y + p["depthwise"]["bias"]
    y = _swish(_layer_norm(y, p["LayerNorm_1"], epsilon))
    return _linear(y, p["Dense_1"])


def _block(x, valid, p, config):
    epsilon = config.layer_norm_epsilon
    x = x + 0.5 * p["ff_in_scale"]["scale"] * _feed_forward(x, p["ff_in"], epsilon)
    x = x + p["attention_scale"]["scale"] * _attention(x, valid, p["attention"], config)
    x = x + p["conv_scale"]["scale"] * _convolution(x, valid, p["conv"], config)
    x = x + 0.5 * p["ff_out_scale"]["scale"] * _feed_forward(x, p["ff_out"], epsilon)
    return _layer_norm(x, p["final_norm"], epsilon)


def reference_logits(params, config, semantic_tokens, acoustic_tokens, length):
    """Logits [T, Q, K] of every level for one example.

    semantic_tokens [S] and acoustic_tokens [T, Q] (codes, or mask id = codebook_size)
    as int arrays; frames at or past `length` are padding.
    """
    params = _as_numpy(params)
    num_frames = acoustic_tokens.shape[0]
    valid = np.arange(num_frames) < length
    x = np.zeros((num_frames, config.model_dim))
    for t in range(num_frames):
        for level in range(config.num_levels):
            x[t] += params["acoustic_embedding"][level, acoustic_tokens[t, level]]
        x[t] += params["semantic_embedding"][semantic_tokens[t // config.frames_per_semantic_token]]
    for i in range(config.num_layers):
        x = _block(x, valid, params[f"block_{i}"], config)
    return np.einsum("td,qdk->tqk", x, params["head_kernel"]) + params["head_bias"]


def _as_numpy(tree):
    if isinstance(tree, dict) or hasattr(tree, "items"):
        return {key: _as_numpy(value) for key, value in tree.items()}
    return np.asarray(tree, np.float64)
