"""The client's one error type: it keeps the gRPC status code and the server's message."""

from __future__ import annotations

import grpc


class ClientError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def bad_input(message: str) -> ClientError:
    return ClientError(grpc.StatusCode.INVALID_ARGUMENT, message)
