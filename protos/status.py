"""The project's one error type: a message and the gRPC status code it is answered with.

Every error raised on purpose (a bad input, a missing model, a codec that cannot
load) derives from `StatusError`, at whatever layer it is raised: the JAX core,
export, the codec and frontend, the server, the client. So the server answers it
with its own code, the client keeps the code it was answered with, and the CLI
catches this one class and prints one line. The codes are gRPC's canonical codes
(google.rpc.Code), the ones TF Serving answers with; they live here, at the
bottom of the imports, because they belong to the wire like the messages beside
them.

Which code a given bad input gets, with its message, is tabled in
docs/serving.md ("Errors"); `HTTP_STATUS` below is how REST answers each code.
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


# ToHTTPStatusCode, model_servers/http_server.cc: every canonical code.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500, grpc.StatusCode.UNAUTHENTICATED: 401,
}
