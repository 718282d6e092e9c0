"""The `soundstorm` command line: one module per command group, each a thin shell over library
calls; errors are caught here, once."""

from __future__ import annotations

import argparse
import os
import sys

# TensorFlow's C++ INFO logs are not the user's business: warnings and errors only, unless
# the caller sets TF_CPP_MIN_LOG_LEVEL itself.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with the process's stderr closed: its library load prints absl
    lines ("Could not find cuda drivers ...") that TF_CPP_MIN_LOG_LEVEL does not silence,
    and that would bury a command's one-line error. SOUNDSTORM_VERBOSE=1 keeps them."""
    if "tensorflow" in sys.modules or os.environ.get("SOUNDSTORM_VERBOSE"):
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        try:
            import tensorflow  # noqa: F401
        except ImportError:  # the command that needs it reports that itself
            pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

from apps.cli import codec, exporting, measuring, serving, speech, training
from protos.status import StatusError

# In the order `soundstorm --help` lists them: train (and its data and samples), export, serve,
# speak, measure, the codec's files.
GROUPS = (training, exporting, serving, speech, measuring, codec)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundstorm", description="SoundStorm: train, export, serve and synthesize.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import_tensorflow_quietly()
    try:
        return args.handler(args)
    # Every error raised on purpose is a StatusError (protos/status.py); OSError is a file
    # the user named that cannot be read or written.
    except (StatusError, OSError) as error:
        print(f"soundstorm {args.command}: error: {error}", file=sys.stderr)
        return 2
