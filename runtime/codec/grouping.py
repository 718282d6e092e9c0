"""Level grouping: g consecutive codec levels of `base` codes form one token of base**g codes.

SoundStorm decodes every level with at least one forward pass, so 30 Lyra
levels of 16 codes would cost 30+ passes; grouping them in threes gives 10
levels of 4096 codes and 10+ passes for the same bits. Within a group the
coarser level is the more significant digit, so token order follows the RVQ's
coarse-to-fine order.
"""

from __future__ import annotations

import numpy as np

from soundstorm.runtime.codec.base import CodecError


def group_levels(codes: np.ndarray, group_size: int, base: int) -> np.ndarray:
    """[frames, levels] codes in [0, base) -> [frames, levels / group_size] in [0, base**group_size)."""
    codes = np.asarray(codes)
    frames, levels = codes.shape
    if levels % group_size:
        raise CodecError(f"{levels} levels cannot be grouped by {group_size}")
    digits = codes.reshape(frames, levels // group_size, group_size).astype(np.int64)
    weights = base ** np.arange(group_size - 1, -1, -1, dtype=np.int64)
    return (digits * weights).sum(axis=-1).astype(np.int32)


def ungroup_levels(tokens: np.ndarray, group_size: int, base: int) -> np.ndarray:
    """Inverse of `group_levels`: [frames, groups] -> [frames, groups * group_size]."""
    tokens = np.asarray(tokens, dtype=np.int64)
    frames, groups = tokens.shape
    weights = base ** np.arange(group_size - 1, -1, -1, dtype=np.int64)
    digits = (tokens[..., None] // weights) % base
    return digits.reshape(frames, groups * group_size).astype(np.int32)
