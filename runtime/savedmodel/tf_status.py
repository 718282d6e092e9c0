"""TensorFlow's errors as the status codes and one-line messages TF Serving answers with."""

from __future__ import annotations

import grpc

from soundstorm.protos.status import StatusError


def status_code_of(error: Exception) -> grpc.StatusCode:
    """The gRPC code for an error: ours, or a TF error's (TF's codes are gRPC's)."""
    import tensorflow as tf
    if isinstance(error, StatusError):
        return error.code
    if isinstance(error, tf.errors.OpError):
        return next((code for code in grpc.StatusCode if code.value[0] == error.error_code),
                    grpc.StatusCode.INTERNAL)
    return grpc.StatusCode.INTERNAL


def message_of(error: Exception) -> str:
    """A one-line message; for the SavedModel's checks, their "assertion failed: [...]" line
    without TF's "Graph execution error / Detected at node" preamble and node trailers."""
    import tensorflow as tf
    if isinstance(error, tf.errors.OpError):
        message = error.message
        start = message.find("assertion failed:")
        if start >= 0:
            return message[start:].split("\n")[0].strip()
        # Any other op's error (e.g. CheckNumerics): its own first line, without TF's preamble
        # ("Graph execution error:", "Detected at node ...", stack notes, "[[{{node ...}}]]").
        for line in message.splitlines():
            line = line.strip()
            if line and not line.startswith(_TF_PREAMBLE):
                return line
        return message.strip()
    return str(error)


_TF_PREAMBLE = ("Graph execution error:", "Detected at node", "<stack traces unavailable>",
                "[[{{node", "Node:", "Stack trace for op definition")


def status_of(error: Exception, default: grpc.StatusCode = grpc.StatusCode.INTERNAL
              ) -> tuple[grpc.StatusCode, str]:
    """(code, one-line message) of an error: ours or TensorFlow's keep their code and words;
    any other exception gets `default` and its type named in the message."""
    import tensorflow as tf
    if isinstance(error, (StatusError, tf.errors.OpError)):
        return status_code_of(error), message_of(error)
    return default, f"{type(error).__name__}: {error}"
