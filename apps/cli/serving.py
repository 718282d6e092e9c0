"""`soundstorm serve`: the TF Serving-compatible model server, with tensorflow_model_server's
flags (runtime/serving/flags.py)."""

from __future__ import annotations

from soundstorm.runtime.serving.flags import ServerFlags, add_arguments


def _add_serve(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve exported models over TF Serving's gRPC and REST APIs",
        # tensorflow_model_server knows no abbreviated flags: neither do we.
        allow_abbrev=False,
        description="A model server that speaks TF Serving's API and reads its config files "
                    "(flags named as tensorflow_model_server's). Serves --model_name from "
                    "--model_base_path, or every model of --model_config_file; new versions are "
                    "loaded and warmed up before they take traffic (docs/serving.md).")
    add_arguments(parser)
    parser.set_defaults(handler=_serve)


def _serve(args) -> int:
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from soundstorm.runtime.serving.cli import serve_from_flags
    return serve_from_flags(ServerFlags.from_namespace(args))


def add_commands(subparsers) -> None:
    _add_serve(subparsers)
