"""Argument types shared by the subcommands: a value they refuse is a usage error (exit 2)."""

from __future__ import annotations

import argparse

from soundstorm.runtime.client.seeds import MAX_SEED, is_seed
from soundstorm.runtime.client.temperatures import is_temperature


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


def positive_number(text: str) -> float:
    """A finite number > 0 (seconds, a temperature); refused at parse time otherwise
    (`nan`, `inf`, 0 and negatives included)."""
    import math
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def temperature_argument(text: str) -> float:
    """A first-level sampling temperature: a number > 0 that float32, the model's input type,
    holds as one (1e-300 would arrive as 0, 1e39 as inf); refused at parse time otherwise."""
    return _temperature(text, zero_allowed=False)


def choice_temperature_argument(text: str) -> float:
    """A choice temperature (the confidence noise's scale): as temperature_argument, 0 allowed."""
    return _temperature(text, zero_allowed=True)


def _temperature(text: str, zero_allowed: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not is_temperature(value, zero_allowed=zero_allowed):
        raise argparse.ArgumentTypeError(
            f"must be a finite number {'>=' if zero_allowed else '>'} 0 that float32 holds "
            f"(up to 3.4e38; none below 1.2e-38), got {text!r}")
    return value


def server_address(text: str) -> str:
    """A gRPC target: HOST:PORT, [IPv6]:PORT, or a URI such as dns:///NAME:PORT or
    unix:PATH; refused at parse time without a port."""
    from soundstorm.runtime.client.backends import is_target
    if not is_target(text):
        raise argparse.ArgumentTypeError(f"must be HOST:PORT (or dns:///NAME:PORT), got {text!r}")
    return text


def speaker_audio(text: str) -> tuple[str, str]:
    """--voice SPEAKER=AUDIO, refused at parse time without both parts."""
    speaker, _, path = text.partition("=")
    if not speaker.strip() or not path:
        raise argparse.ArgumentTypeError(f"takes SPEAKER=AUDIO, got {text!r}")
    return speaker.strip(), path
