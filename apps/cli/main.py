"""The `soundstorm` command line: one module per command group, each a thin shell over library
calls; errors are caught here, once."""

from __future__ import annotations

import argparse
import os
import sys

# TensorFlow's C++ INFO logs are not the user's business: warnings and errors only, unless
# the caller sets TF_CPP_MIN_LOG_LEVEL itself.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from soundstorm.apps.cli import codec, exporting, measuring, serving, speech, training
from soundstorm.apps.heap import retain_freed_memory
from soundstorm.apps.cli.exit_codes import BAD_INPUT, EPILOG, INTERRUPTED, exit_code_of
from soundstorm.apps.cli.quiet import import_tensorflow_quietly, native_stderr_silenced
from soundstorm.protos.status import StatusError

# The `train` extra (pyproject.toml): a base install (client and server) has none of them.
TRAINING_STACK = ("jax", "jaxlib", "flax", "optax", "orbax")

# In the order `soundstorm --help` lists them: train (and its data and samples), export, serve,
# speak, measure, the codec's files.
GROUPS = (training, exporting, serving, speech, measuring, codec)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line naming the command and where help is (not
    the whole usage block first); exit code 2 as argparse's. Subcommands inherit it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="soundstorm", description="SoundStorm: train, export, serve and synthesize.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"soundstorm {_version()}")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's, LiteRT's and other libraries' own log lines "
                             "(hidden by default; SOUNDSTORM_VERBOSE=1 does the same)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(subparsers)
    for name, command in _commands(subparsers):
        command.epilog = command.epilog or EPILOG
        if name != "serve":  # serve takes tensorflow_model_server's flags only
            # Also after the command (SUPPRESS: an absent one keeps the top-level value).
            command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                                 help="show the libraries' own log lines")
        _show_defaults(command)
        command.set_defaults(command_parser=command)  # the innermost command's wins
    return parser


def _commands(subparsers):
    """(name, parser) of every command, and of every action of a command that has them
    (`data build`, `codec fetch`)."""
    for name, command in subparsers.choices.items():
        yield name, command
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                yield from _commands(action)


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Every option's help ends with its default (argparse's %(default)s), where it has one
    and the help does not already say it."""
    for action in parser._actions:
        if (action.help and action.help is not argparse.SUPPRESS and "default" not in action.help
                and action.default is not None and action.default is not False
                and action.default not in ("", argparse.SUPPRESS)  # 0 is a default to show
                and action.option_strings
                and not isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            action.help += " (default %(default)s)"


def _version() -> str:
    from importlib import metadata
    try:
        return metadata.version("soundstorm")
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit code (apps/cli/exit_codes.py)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the command they were given to, with its --help
        getattr(args, "command_parser", parser).error(
            f"unrecognized arguments: {' '.join(unknown)}")
    verbose = args.verbose or bool(os.environ.get("SOUNDSTORM_VERBOSE"))
    if verbose:
        os.environ["SOUNDSTORM_VERBOSE"] = "1"
    if args.command == "serve":  # its stderr is not silenced: TF's import lines would show
        import_tensorflow_quietly()
    else:
        # JAX's CPU runtime would otherwise map and unmap its large buffers on every
        # decoding pass (apps/heap.py, `soundstorm bench --sections heap`). A server,
        # long-running and on TensorFlow's own allocator, gives its memory back instead.
        retain_freed_memory()
    try:
        # A server's operators want its libraries' lines; every other command prints its own.
        with native_stderr_silenced(enabled=not verbose and args.command != "serve"):
            return args.handler(args)
    # Every error raised on purpose is a StatusError (protos/status.py); OSError is a file
    # the user named that cannot be read or written.
    except StatusError as error:
        print(f"soundstorm {args.command}: error: {error}", file=sys.stderr)
        return exit_code_of(error.code)
    except OSError as error:
        print(f"soundstorm {args.command}: error: {error}", file=sys.stderr)
        return BAD_INPUT
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in TRAINING_STACK:
            print(f"soundstorm {args.command}: error: this command needs the training stack "
                  f"({error.name} is not installed): pip install 'soundstorm[train]'",
                  file=sys.stderr)
            return BAD_INPUT
        raise
    except KeyboardInterrupt:
        print(f"soundstorm {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
