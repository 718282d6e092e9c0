"""The exit codes of `soundstorm`, one per kind of failure, so that scripts can tell them apart.

    0  success
    1  a bug: an unexpected exception, printed with its traceback (please report it)
    2  usage: the command line itself (an unknown option, a value of the wrong type or out
       of its range), refused by argparse before anything runs
    3  bad input: what the command was given (a file, text, voice, model folder, a flag
       value the command checks) cannot be used; the message names it
    4  server or model: a server that cannot be reached or answers too late, refuses for
       load (RESOURCE_EXHAUSTED) or fails (INTERNAL, DATA_LOSS, ...), or a model that fails
       to load or run
  130  interrupted (Ctrl-C)

Which status code is which kind: BAD_INPUT_CODES below; every other code is SERVER.
"""

from __future__ import annotations

import grpc

OK, BUG, USAGE, BAD_INPUT, SERVER, INTERRUPTED = 0, 1, 2, 3, 4, 130

# The caller's mistakes (google.rpc.Code's "client errors" that retrying cannot fix).
BAD_INPUT_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                             grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE,
                             grpc.StatusCode.ALREADY_EXISTS})

EPILOG = ("exit codes: 0 success, 2 usage (the command line), 3 bad input (a file, text or "
          "value the command cannot use), 4 server or model (unreachable, too slow, "
          "refusing, failing), 1 a bug (traceback), 130 interrupted")


def exit_code_of(code: grpc.StatusCode) -> int:
    """The exit code for an error answered with status `code`."""
    return BAD_INPUT if code in BAD_INPUT_CODES else SERVER
