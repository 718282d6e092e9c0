"""Argument types shared by the subcommands: a value they refuse is a usage error (exit 2)."""

from __future__ import annotations

import argparse

from soundstorm.runtime.client.seeds import MAX_SEED, is_seed


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def named_schedule(text: str) -> tuple[str, tuple[int, ...]]:
    name, _, schedule = text.partition("=")
    if not name or not schedule:
        raise argparse.ArgumentTypeError(f"expected NAME=ITERATIONS,..., got {text!r}")
    return name, int_list(schedule)


def seed_argument(text: str) -> int:
    """--seed's type: an integer in [0, MAX_SEED] (runtime/client/seeds.py), refused at parse
    time otherwise, with the range."""
    try:
        seed = int(text)
    except ValueError:
        seed = None
    if seed is None or not is_seed(seed):
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {MAX_SEED}], got {text!r}")
    return seed
