"""The `soundstorm` command line: one module per command group, each a thin shell over library
calls; errors are caught here, once."""

from __future__ import annotations

import argparse
import os
import sys

# TensorFlow's C++ start-up chatter (no CUDA driver, CPU features) is not the user's business:
# warnings and errors only, unless the caller sets TF_CPP_MIN_LOG_LEVEL itself.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
    try:
        return args.handler(args)
    # Every error raised on purpose is a StatusError (protos/status.py); OSError is a file
    # the user named that cannot be read or written.
    except (StatusError, OSError) as error:
        print(f"soundstorm {args.command}: error: {error}", file=sys.stderr)
        return 2
