"""Temperatures: the values a request's sampling temperatures may take.

The SavedModel's `temperature` and `choice_temperature` inputs are float32 and its
checks (export/checks.py) want them finite, `temperature` > 0 and
`choice_temperature` >= 0. A Python float passes that test and still fails it
once sent: 1e-300 becomes 0 in float32, 1e39 becomes inf. So a value is checked
as float32 holds it, before anything loads. Nothing here imports TensorFlow (the
CLI checks temperatures at parse time).
"""

from __future__ import annotations

import numbers

import numpy as np


def is_temperature(value, *, zero_allowed: bool = False) -> bool:
    """True for a real number (not a bool) that stays finite in float32 and is > 0 there
    (>= 0 with `zero_allowed`, for choice_temperature)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    with np.errstate(over="ignore", under="ignore"):
        as_sent = np.float32(value)
    if not np.isfinite(as_sent):
        return False
    return bool(as_sent > 0) or (zero_allowed and value == 0)
