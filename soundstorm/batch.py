"""The training loop's input: a batch of examples, padded to one length."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """What the training loop consumes: semantic [B, S], acoustic [B, T, Q], lengths [B]."""
    semantic_tokens: np.ndarray
    acoustic_tokens: np.ndarray
    lengths: np.ndarray
