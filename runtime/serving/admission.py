"""The memory all requests in flight may hold together, over gRPC and REST (ours).

TF Serving bounds neither: each request's tensors are built as they arrive, so
enough concurrent large requests exhaust the server's memory and take every
other client down with it. Here each request reserves what it will hold
(its message and the arrays built from it, counted from the declared shapes
before anything is built) and is refused, naming the budget, when it does not
fit: UNAVAILABLE (HTTP 503, retry later, as TF Serving answers a full batch
queue) beside the requests in flight now, RESOURCE_EXHAUSTED (HTTP 429) when
it alone passes `--max_inflight_bytes`. The reservation is returned when the
request ends, however it ends. A refusal costs the server nothing; gRPC
clients with a retry policy (ours) retry UNAVAILABLE after a back-off.
"""

from __future__ import annotations

import contextlib
import threading

import grpc

from soundstorm.protos.status import StatusError

# 1 GiB: sixteen requests at the 64 MiB message limit; a 60 s request of the paper's model
# holds ~100 KB, so thousands of ordinary requests fit.
DEFAULT_MAX_INFLIGHT_BYTES = 1 << 30
# What parsing a REST body may hold at its peak, per byte of JSON: the body and Python's
# objects for what it holds. Measured: 3.7-6.9x for token arrays; 24-27x for the worst
# bodies, three bytes per empty object or list (`[{},{},...]`: a 64-byte dict and an 8-byte
# slot per 3 bytes). So a REST body may be at most --max_inflight_bytes / 32 (32 MiB).
JSON_BYTES_FACTOR = 32


class InflightBudget:
    """A byte budget shared by every request in flight; thread-safe.

    `limit_bytes` <= 0 disables it (no request is refused for memory).
    """

    def __init__(self, limit_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES):
        self.limit_bytes = limit_bytes
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held_bytes(self) -> int:
        """Bytes reserved by requests in flight now."""
        with self._lock:
            return self._held

    @contextlib.contextmanager
    def hold(self, nbytes: int, what: str):
        """Reserves `nbytes` for the `with` block, or raises (nothing reserved) StatusError:
        RESOURCE_EXHAUSTED when `nbytes` alone passes the whole budget (it can never fit:
        not retryable); UNAVAILABLE when it does not fit beside the requests in flight now
        (transient, retried by gRPC clients' policies, ours included)."""
        with self._lock:
            if self.limit_bytes > 0 and nbytes > self.limit_bytes:
                raise StatusError(
                    f"{what} needs {nbytes} bytes, more than the server's whole in-flight "
                    f"budget of {self.limit_bytes} (--max_inflight_bytes)",
                    grpc.StatusCode.RESOURCE_EXHAUSTED)
            if self.limit_bytes > 0 and self._held + nbytes > self.limit_bytes:
                held = self._held
                raise StatusError(
                    f"{what} needs {nbytes} bytes but requests in flight hold {held} of the "
                    f"server's {self.limit_bytes} (--max_inflight_bytes); retry later",
                    grpc.StatusCode.UNAVAILABLE)
            self._held += nbytes
        try:
            yield
        finally:
            with self._lock:
                self._held -= nbytes
