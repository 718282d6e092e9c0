"""Seeds: the range a request's seed must lie in, and the seeds derived from one.

The SavedModel's `seeds` input is int32 and must be >= 0 (export/checks.py), so a
seed is an integer in [0, MAX_SEED]. Long-form windows and the items of a batch
(a dialogue's turns) each get a seed derived from the caller's: seed + k, wrapped
into the same range, so every seed the client accepts works, however many windows
or turns follow it. Nothing here imports TensorFlow (the CLI checks seeds at parse
time).
"""

from __future__ import annotations

import numbers

MAX_SEED = 2**31 - 1


def is_seed(value) -> bool:
    """True for an integer (not a bool) in [0, MAX_SEED]."""
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and 0 <= value <= MAX_SEED)


def derived_seed(seed: int, offset: int) -> int:
    """The seed of window or item `offset` (0, 1, ...): (seed + offset) mod 2^31."""
    return (int(seed) + offset) % (MAX_SEED + 1)
