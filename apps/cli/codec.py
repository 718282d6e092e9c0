"""`soundstorm codec fetch`: the Lyra codec's pinned model files."""

from __future__ import annotations

from pathlib import Path


def _add_codec(subparsers) -> None:
    parser = subparsers.add_parser("codec", help="the Lyra codec's model files")
    actions = parser.add_subparsers(dest="action", required=True)
    fetch = actions.add_parser("fetch", help="download the pinned, checksummed Lyra v2 models",
                               description="Downloads the three TFLite models of Lyra v2 at a "
                                           "pinned commit and checks their sha256 (docs/codec.md).")
    fetch.add_argument("dest", type=Path, nargs="?", default=None,
                       help="folder to hold the three .tflite files (default: the per-user "
                            "folder where the client looks for them, "
                            "~/.local/share/soundstorm/codecs/lyra_v2 on Linux)")
    fetch.set_defaults(handler=_fetch)


def _fetch(args) -> int:
    from soundstorm.runtime.codec.fetch import fetch
    from soundstorm.runtime.codec.lyra import default_codec_dir, user_codec_dir
    dest = args.dest if args.dest is not None else user_codec_dir()
    fetch(dest)
    if dest.resolve() == default_codec_dir().resolve():
        print(f"done: {dest.resolve()} (found there by default)")
    else:
        print(f"done; use it with: export SOUNDSTORM_CODEC_DIR={dest.resolve()}")
    return 0


def add_commands(subparsers) -> None:
    _add_codec(subparsers)
