"""The client's error: the project's StatusError, keeping the code and message it was answered
with (or INVALID_ARGUMENT for input the client refuses before sending)."""

from __future__ import annotations

import grpc

from protos.status import StatusError


class ClientError(StatusError):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message, code)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def bad_input(message: str) -> ClientError:
    return ClientError(grpc.StatusCode.INVALID_ARGUMENT, message)
