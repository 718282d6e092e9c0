"""Errors that carry the gRPC status code TF Serving would answer with."""

from __future__ import annotations

import grpc


class ServingError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def invalid_argument(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def unavailable(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.UNAVAILABLE, message)


def status_code_of(error: Exception) -> grpc.StatusCode:
    """The gRPC code for an error: ours, or a TF error's (TF's codes are gRPC's)."""
    import tensorflow as tf
    if isinstance(error, ServingError):
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
        return message
    return str(error)
