"""Argument types shared by the subcommands."""

from __future__ import annotations

import argparse


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
