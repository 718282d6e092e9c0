"""Quiet by default: a command prints its own lines; TensorFlow, absl, oneDNN, CUDA probes and
LiteRT print theirs only with --verbose (or SOUNDSTORM_VERBOSE=1).

Their lines come from C++ (absl logging, TensorFlow's and LiteRT's own) straight to file
descriptor 2, so TF_CPP_MIN_LOG_LEVEL does not silence all of them ("failed call to
cuInit" on a machine without a GPU, "Created TensorFlow Lite XNNPACK delegate"). So
while a command runs, descriptor 2 goes to /dev/null and Python's `sys.stderr` (our
one-line errors, progress bars, warnings we print) writes to a copy of the original.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings


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


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True):
    """Within the block, libraries' native stderr goes to /dev/null and Python's sys.stderr
    to the real stderr; Python warnings from libraries are ignored. Restored afterwards."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    python_stderr = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0),
                                  encoding=python_stderr.encoding or "utf-8",
                                  errors="backslashreplace", write_through=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
