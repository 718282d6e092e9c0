"""The project's one error type: a message and the gRPC status code it is answered with.

Every error raised on purpose (a bad input, a missing model, a codec that cannot
load) derives from `StatusError`, at whatever layer it is raised: the JAX core,
export, the codec and frontend, the server, the client. So the server answers it
with its own code, the client keeps the code it was answered with, and the CLI
catches this one class and prints one line. The codes are gRPC's canonical codes
(google.rpc.Code), the ones TF Serving answers with; they live here, at the
bottom of the imports, because they belong to the wire like the messages beside
them.
"""

from __future__ import annotations

import grpc


class StatusError(Exception):
    """An error with a gRPC status code (class default INVALID_ARGUMENT: the caller's input)."""

    code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, code: grpc.StatusCode | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


def invalid_argument(message: str) -> StatusError:
    return StatusError(message, grpc.StatusCode.INVALID_ARGUMENT)


def not_found(message: str) -> StatusError:
    return StatusError(message, grpc.StatusCode.NOT_FOUND)


def unavailable(message: str) -> StatusError:
    return StatusError(message, grpc.StatusCode.UNAVAILABLE)
