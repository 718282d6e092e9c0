"""Checks on concrete (numpy) inputs at the public entry points, with errors that name the problem.

The jitted functions behind those entry points assume valid inputs: an
out-of-range token id would otherwise be clamped by XLA's gather and decode into
silent garbage.
"""

from __future__ import annotations

import numpy as np

from soundstorm.protos.status import StatusError


class InputError(StatusError, ValueError):
    """An input array or argument that the model cannot take."""


def int_array(name: str, value, ndim: int) -> np.ndarray:
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array


def check_range(name: str, array: np.ndarray, low: int, high: int, where=None) -> None:
    """All entries (those selected by `where`, if given) lie in [low, high]."""
    selected = array if where is None else array[where]
    if selected.size == 0:
        return
    bad = (selected < low) | (selected > high)
    if bad.any():
        raise InputError(
            f"{name} must lie in [{low}, {high}]; found {selected[bad].flat[0]} "
            f"({int(bad.sum())} entries out of range)")


def check_batch(**arrays: np.ndarray) -> int:
    """All arrays share the leading (batch) dimension; returns it."""
    sizes = {name: array.shape[0] for name, array in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise InputError(f"batch sizes differ: {sizes}")
    batch = next(iter(sizes.values()))
    if batch == 0:
        raise InputError("batch is empty")
    return batch


def per_example(name: str, value, batch: int, dtype) -> np.ndarray:
    """A scalar or [batch] value as a [batch] array."""
    array = np.asarray(value, dtype=dtype)
    if array.ndim == 0:
        return np.full((batch,), array, dtype=dtype)
    if array.shape != (batch,):
        raise InputError(f"{name} must be a scalar or have shape ({batch},), got {array.shape}")
    return array
