"""`soundstorm codec fetch`: the Lyra codec's pinned model files."""

from __future__ import annotations

from pathlib import Path


def _add_codec(subparsers) -> None:
    parser = subparsers.add_parser("codec", help="the Lyra codec's model files")
    actions = parser.add_subparsers(dest="action", required=True)
    fetch = actions.add_parser("fetch", help="download the pinned, checksummed Lyra v2 models",
                               description="Downloads the three TFLite models of Lyra v2 at a "
                                           "pinned commit and checks their sha256 (docs/codec.md).")
    fetch.add_argument("dest", type=Path, help="folder to hold the three .tflite files")
    fetch.set_defaults(handler=_fetch)


def _fetch(args) -> int:
    from runtime.codec.fetch import fetch
    fetch(args.dest)
    print(f"done; use it with: export SOUNDSTORM_CODEC_DIR={args.dest.resolve()}")
    return 0


def add_commands(subparsers) -> None:
    _add_codec(subparsers)
