"""The client's one error type: ClientError, the project's StatusError, keeping the code and
message it was answered with (INVALID_ARGUMENT or NOT_FOUND for input the client refuses
before sending).

Everything the client library raises on purpose is a ClientError: the lower layers' own
errors (the frontend's FrontendError, the codec's CodecError, a missing file's
FileNotFoundError) are turned into one at the library's boundary (`client_errors`), with
the original as `__cause__`. So callers catch one class and read `.code` and `.message`.
"""

from __future__ import annotations

import contextlib

import grpc

from soundstorm.protos.status import StatusError


class ClientError(StatusError):
    """An error of the client library.

    Attributes:
      code: grpc.StatusCode: INVALID_ARGUMENT or NOT_FOUND for the caller's input; for a
        server's answer, its code (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...).
      message: str, one line.
    """

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message, code)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def bad_input(message: str) -> ClientError:
    return ClientError(grpc.StatusCode.INVALID_ARGUMENT, message)


@contextlib.contextmanager
def client_errors():
    """Turns what the lower layers raise into ClientError (as a `with` block or a decorator):
    a StatusError keeps its code and message; a missing file is NOT_FOUND, another OSError
    INVALID_ARGUMENT, each with the file's name."""
    try:
        yield
    except ClientError:
        raise
    except StatusError as error:
        raise ClientError(error.code, error.message) from error
    except FileNotFoundError as error:
        raise ClientError(grpc.StatusCode.NOT_FOUND, str(error)) from error
    except OSError as error:
        raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error
