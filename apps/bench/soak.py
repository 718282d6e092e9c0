"""Hostile clients against a running `soundstorm serve`: each bad input with the answer it
must get, and a soak of good and bad traffic that counts what good clients lost.

Used by tests/test_hostile_clients.py (a short soak on the tiny model) and
benchmarks/serving_soak.py (a longer one, printing the figures in docs/serving.md).
The server runs as its own process, so its resident memory and thread count are
its own (read from /proc/PID/status).
"""

from __future__ import annotations

import dataclasses
import json
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import grpc
import numpy as np

# The server's limits for a soak: small, so that limits are reached with little traffic.
SOAK_MAX_MESSAGE_BYTES = 4 << 20
SOAK_MAX_INFLIGHT_BYTES = 16 << 20
SOAK_THREADS = 4


@dataclasses.dataclass
class ServerProcess:
    """`python -m soundstorm.apps.cli serve` on loopback, started and waited for."""

    base_path: Path
    grpc_port: int
    rest_port: int
    process: subprocess.Popen

    @classmethod
    def start(cls, base_path: Path, *flags: str, timeout_s: float = 300,
              allocator: str | None = None) -> "ServerProcess":
        """`allocator`: "jemalloc" or "tcmalloc" preloaded into the server (None: glibc's,
        or whatever LD_PRELOAD already says); runtime/serving/allocator.py says why."""
        from soundstorm.runtime.serving.allocator import preload_environment
        grpc_port, rest_port = free_port(), free_port()
        environment = preload_environment(allocator) if allocator else None
        process = subprocess.Popen(
            [sys.executable, "-m", "soundstorm.apps.cli", "serve", f"--model_base_path={base_path}",
             "--model_name=soundstorm", f"--port={grpc_port}", f"--rest_api_port={rest_port}",
             "--host=127.0.0.1", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
        deadline = time.monotonic() + timeout_s
        for line in process.stdout:
            if "gRPC on" in line:
                break
            if time.monotonic() > deadline:
                break
        else:
            raise RuntimeError(f"soundstorm serve exited with {process.wait()} before serving")
        # Keep draining its log so that it never blocks on a full pipe.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        return cls(Path(base_path), grpc_port, rest_port, process)

    def status(self) -> dict[str, int]:
        """VmRSS (KiB) and Threads of the server process, from /proc."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                fields[key] = int(value.split()[0])
        return fields

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Requests, built with nothing but tensorflow_serving.apis and TensorFlow's protos.

def predict_request(arrays: dict[str, np.ndarray], name: str = "soundstorm"):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in arrays.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def _with_input(arrays, key, proto_edit: Callable):
    request = predict_request(arrays)
    proto_edit(request.inputs[key])
    return request


def _declare(shape):
    def edit(proto):
        del proto.tensor_shape.dim[:]
        for size in shape:
            proto.tensor_shape.dim.add(size=size)
        proto.ClearField("tensor_content")
        proto.int_val[:] = [1]
    return edit


def _content(nbytes):
    def edit(proto):
        proto.ClearField("int_val")
        proto.tensor_content = b"\x01" * nbytes
    return edit


def _string_declaring(count):
    def edit(proto):
        proto.Clear()
        proto.dtype = 7  # DT_STRING
        proto.tensor_shape.dim.add(size=1)
        proto.tensor_shape.dim.add(size=count)
        proto.string_val.append(b"x")
    return edit


def _dtype(value):
    def edit(proto):
        proto.dtype = value
    return edit


def _replaced(arrays, **changes):
    return {**arrays, **changes}


@dataclasses.dataclass(frozen=True)
class GrpcCase:
    """A bad gRPC call and the status it must get (the message contains `words`)."""
    name: str
    call: Callable  # (channel, good arrays) -> response; raises grpc.RpcError
    code: grpc.StatusCode
    words: str
    # Big requests may also meet the in-flight budget when others hold it (retryable).
    may_be_refused_for_memory: bool = False


def _predict(build: Callable) -> Callable:
    def call(channel, arrays):
        from tensorflow_serving.apis import prediction_service_pb2_grpc
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(build(arrays), timeout=120)
    return call


def _reload(channel, arrays):
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc
    request = model_management_pb2.ReloadConfigRequest()
    model = request.config.model_config_list.config.add()
    model.name, model.base_path, model.model_platform = "soundstorm", "/proc", "tensorflow"
    return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request)


def _garbage_bytes(channel, arrays):
    # Bytes that are no PredictRequest: gRPC itself fails to parse them (INTERNAL, as gRPC
    # answers a request it cannot deserialize, in C++ as in Python).
    call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict",
                               request_serializer=lambda raw: raw,
                               response_deserializer=lambda raw: raw)
    return call(b"\x0a\xff\xff\xff\xff\x0f garbage", timeout=30)


INT32_OVERFLOW = 2**31
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
# A good client retries what the server refuses for memory now (UNAVAILABLE, 503), as
# runtime.client's retry policy does: this many tries, the back-off doubling from
# RETRY_BACKOFF_S.
GOOD_CLIENT_TRIES, RETRY_BACKOFF_S = 6, 0.1


def grpc_cases(max_batch: int) -> list[GrpcCase]:
    """Every kind of bad gRPC call, with its code and the words its message must hold."""
    batch = max_batch + 1
    return [
        GrpcCase("15 bytes declaring [1, 100000000]", _predict(lambda a: _with_input(
            a, "semantic_tokens", _declare([1, 100_000_000]))),
            grpc.StatusCode.RESOURCE_EXHAUSTED, "input semantic_tokens declares shape"),
        GrpcCase("declared [1, 2^40]", _predict(lambda a: _with_input(
            a, "semantic_tokens", _declare([1, 2**40]))),
            grpc.StatusCode.RESOURCE_EXHAUSTED, "(--max_message_bytes)"),
        GrpcCase("negative dimension", _predict(lambda a: _with_input(
            a, "semantic_tokens", _declare([1, -5]))),
            grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error: semantic_tokens"),
        GrpcCase("content shorter than its shape", _predict(lambda a: _with_input(
            a, "prompt_tokens", _content(10))),
            grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error: prompt_tokens"),
        GrpcCase("unknown dtype", _predict(lambda a: _with_input(a, "seeds", _dtype(999))),
                 grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error: seeds"),
        GrpcCase("a resource dtype", _predict(lambda a: _with_input(a, "seeds", _dtype(20))),
                 grpc.StatusCode.INVALID_ARGUMENT, "Expects input 'seeds' to be int32"),
        GrpcCase("751 bytes: a string tensor declaring 66M elements", _predict(
            lambda a: _with_input(a, "semantic_tokens", _string_declaring(66_000_000))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects input 'semantic_tokens' to be int32 but string is provided"),
        GrpcCase("float where int32 is declared", _predict(lambda a: predict_request(
            _replaced(a, seeds=a["seeds"].astype(np.float32)))),
            grpc.StatusCode.INVALID_ARGUMENT, "Expects input 'seeds' to be int32"),
        GrpcCase("an input missing", _predict(lambda a: predict_request(
            {k: v for k, v in a.items() if k != "lengths"})),
            grpc.StatusCode.INVALID_ARGUMENT, "Missing but required: {lengths}"),
        GrpcCase("NaN temperature", _predict(lambda a: predict_request(
            _replaced(a, temperature=np.full(1, np.nan, np.float32)))),
            grpc.StatusCode.INVALID_ARGUMENT, "temperature must be finite"),
        GrpcCase("seed past int32", _predict(lambda a: predict_request(
            _replaced(a, seeds=np.array([INT32_OVERFLOW], np.int64)))),
            grpc.StatusCode.INVALID_ARGUMENT, "Expects input 'seeds' to be int32"),
        GrpcCase("a batch past --max_request_batch_size", _predict(lambda a: predict_request(
            {k: np.concatenate([v] * batch) for k, v in a.items()})),
            grpc.StatusCode.RESOURCE_EXHAUSTED, "--max_request_batch_size"),
        GrpcCase("3 MB of semantic tokens (far past the model's frames)", _predict(
            lambda a: predict_request(_replaced(a, semantic_tokens=np.ones(
                (1, 750_000), np.int32)))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "too long: semantic_tokens cover more than max_frames",
            may_be_refused_for_memory=True),
        GrpcCase("a message past --max_message_bytes", _predict(lambda a: predict_request(
            _replaced(a, semantic_tokens=np.ones((1, SOAK_MAX_MESSAGE_BYTES // 4 + 1),
                                                 np.int32)))),
            grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
        GrpcCase("no such model", _predict(lambda a: predict_request(a, name="nope")),
                 grpc.StatusCode.NOT_FOUND, "nope"),
        GrpcCase("bytes that are no PredictRequest", _garbage_bytes,
                 grpc.StatusCode.INTERNAL, ""),
        GrpcCase("reload pointing at /proc", _reload, grpc.StatusCode.PERMISSION_DENIED,
                 "HandleReloadConfigRequest is disabled"),
    ]


# REST, written byte for byte (what urllib cannot send).

PREDICT = b"POST /v1/models/soundstorm:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def raw_http(port: int, request: bytes, timeout_s: float = 60) -> tuple[int, bytes]:
    """One request on its own connection; (status, body); (0, b"") when closed unanswered."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    if not reply:
        return 0, b""
    return int(reply.split(b" ", 2)[1]), reply.split(b"\r\n\r\n", 1)[-1]


def post(body: bytes, *headers: bytes) -> bytes:
    return (PREDICT + b"".join(header + b"\r\n" for header in headers)
            + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
            + body)


@dataclasses.dataclass(frozen=True)
class RestCase:
    """A bad REST request and the HTTP status it must get (the body contains `words`)."""
    name: str
    request: bytes
    status: int
    words: bytes


def rest_cases(good_arrays: dict[str, np.ndarray]) -> list[RestCase]:
    good = {key: value.tolist() for key, value in good_arrays.items()}
    overflow = json.dumps({"inputs": {**good, "seeds": [INT32_OVERFLOW]}}).encode()
    return [
        RestCase("a body of []", post(b"[]"), 400, b""),
        RestCase('a body of "x"', post(b'"x"'), 400, b""),
        RestCase("JSON that does not parse", post(b'{"inputs": [1,'), 400, b""),
        # TF Serving's words (json_tensor.cc) name the value and the type, not the input.
        RestCase("a seed past int32", post(overflow), 400,
                 b"JSON Value: 2147483648 Type: Number is not of expected type: int32"),
        RestCase("Content-Length: x", PREDICT + b"Content-Length: x\r\nConnection: close\r\n\r\n",
                 400, b""),
        RestCase("Content-Length: -1",
                 PREDICT + b"Content-Length: -1\r\nConnection: close\r\n\r\n{}", 400, b""),
        RestCase("a text/plain body", post(b"{}", b"Content-Type: text/plain"), 400,
                 b"Content-Type text/plain refused"),
        RestCase("a cross-origin POST", post(b"{}", b"Origin: https://evil.example"), 403,
                 b"cross-origin request"),
        RestCase("a rebound Host", post(b"{}").replace(b"Host: 127.0.0.1", b"Host: evil.example"),
                 403, b"listens on loopback only"),
        RestCase("a body past --max_message_bytes", post(b" " * (SOAK_MAX_MESSAGE_BYTES + 1)),
                 413, b"--max_message_bytes"),
        RestCase("1 MiB of empty objects (a 32x JSON parse)",
                 post(b'{"inputs": [' + b"{}," * (SOAK_MAX_MESSAGE_BYTES // 12) + b"0]}"),
                 429, b"more than the server's whole in-flight budget"),
        RestCase("NaN temperature", post(json.dumps({"inputs": {
            **good, "temperature": [float("nan")]}}).encode()), 400, b"temperature"),
    ]


def check_grpc_case(case: GrpcCase, channel, arrays) -> str | None:
    """None when the call got its code and words; else what it got."""
    try:
        case.call(channel, arrays)
    except grpc.RpcError as error:
        if error.code() == case.code and case.words in (error.details() or ""):
            return None
        if (case.may_be_refused_for_memory and error.code() == grpc.StatusCode.UNAVAILABLE
                and "--max_inflight_bytes" in (error.details() or "")):
            return None
        return f"{error.code().name}: {error.details()}"
    return "OK"


def check_rest_case(case: RestCase, port: int) -> str | None:
    status, body = raw_http(port, case.request)
    if status == case.status and case.words in body:
        return None
    return f"{status}: {body[:200]!r}"


# The soak.

@dataclasses.dataclass
class SoakFigures:
    seconds: float
    good_requests: int = 0
    good_lost: int = 0          # failed, or tokens different from the first good answer
    good_retried: int = 0       # tries refused for memory now (UNAVAILABLE), then retried
    bad_requests: int = 0
    bad_misanswered: int = 0    # a bad request that did not get its code
    slow_connections: int = 0   # slow-loris sockets held open during the soak
    failures: list[str] = dataclasses.field(default_factory=list)


def soak(server: ServerProcess, good_arrays: dict[str, np.ndarray], seconds: float,
         clients: int = 4, slow_connections: int = 20, seed: int = 0,
         max_batch: int = 64) -> SoakFigures:
    """`clients` threads send, for `seconds`, a random mix of good gRPC and REST requests and
    every bad case above (and big valid requests at once), while `slow_connections` sockets
    trickle a request head byte by byte. Every good answer must equal the first one."""
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    import tensorflow as tf
    figures = SoakFigures(seconds, slow_connections=slow_connections)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}",
                                    options=[("grpc.max_send_message_length", 64 << 20)])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    expected = tf.make_ndarray(stub.Predict(predict_request(good_arrays), timeout=300)
                               .outputs["acoustic_tokens"])
    good_json = json.dumps({"inputs": {k: v.tolist() for k, v in good_arrays.items()}}).encode()
    bad_grpc, bad_rest = grpc_cases(max_batch), rest_cases(good_arrays)
    lock, stop = threading.Lock(), time.monotonic() + seconds

    class Refused(Exception):
        """The server refused for memory: retryable."""

    def good_grpc():
        try:
            response = stub.Predict(predict_request(good_arrays), timeout=300)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                raise Refused(error.details()) from None
            raise
        return tf.make_ndarray(response.outputs["acoustic_tokens"])

    def good_rest():
        status, body = raw_http(server.rest_port, post(good_json), timeout_s=300)
        if status == 503:
            raise Refused(body[:200])
        if status != 200:
            raise RuntimeError(f"REST {status}: {body[:200]!r}")
        return np.asarray(json.loads(body)["outputs"]["acoustic_tokens"], np.int32)

    def with_retries(fetch):
        for attempt in range(GOOD_CLIENT_TRIES):
            try:
                return fetch()
            except Refused:
                with lock:
                    figures.good_retried += 1
                if attempt == GOOD_CLIENT_TRIES - 1:
                    raise
                time.sleep(RETRY_BACKOFF_S * 2**attempt)

    def record(good: bool, failure: str | None):
        with lock:
            if good:
                figures.good_requests += 1
                figures.good_lost += failure is not None
            else:
                figures.bad_requests += 1
                figures.bad_misanswered += failure is not None
            if failure is not None and len(figures.failures) < 20:
                figures.failures.append(failure)

    def client(index: int):
        chooser = random.Random(seed + index)
        while time.monotonic() < stop:
            kind = chooser.random()
            if kind < 0.4:
                fetch = good_grpc if chooser.random() < 0.5 else good_rest
                try:
                    tokens = with_retries(fetch)
                    record(True, None if np.array_equal(tokens, expected)
                           else f"{fetch.__name__}: tokens differ")
                except Exception as error:  # a lost good request, whatever the cause
                    record(True, f"{fetch.__name__}: {error!r}"[:300])
            elif kind < 0.7:
                case = chooser.choice(bad_grpc)
                failure = check_grpc_case(case, channel, good_arrays)
                record(False, None if failure is None else f"{case.name}: {failure}")
            else:
                case = chooser.choice(bad_rest)
                try:
                    failure = check_rest_case(case, server.rest_port)
                except OSError as error:
                    failure = repr(error)
                record(False, None if failure is None else f"{case.name}: {failure}")

    sockets = []
    for _ in range(slow_connections):  # slow-loris: a head that never ends
        connection = socket.create_connection(("127.0.0.1", server.rest_port))
        connection.sendall(PREDICT[:20])
        sockets.append(connection)
    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    while time.monotonic() < stop:
        for connection in sockets:
            try:
                connection.sendall(b"X")
            except OSError:
                pass  # the server closed it: what its read deadline is for
        time.sleep(1.0)
    for thread in threads:
        thread.join()
    for connection in sockets:
        connection.close()
    channel.close()
    return figures


def good_arrays(contract, seconds: float, seed: int = 0) -> dict[str, np.ndarray]:
    """A valid request (batch 1) for a model's contract: `seconds` of audio, a third of it
    prompt, random tokens."""
    rng = np.random.default_rng(seed)
    acoustic, semantic = contract.acoustic, contract.semantic
    frames = min(round(seconds * acoustic.frame_rate_hz), contract.max_frames)
    frames -= frames % semantic.frames_per_token
    prompt = min(frames // 3, contract.max_prompt_frames)
    return {
        "semantic_tokens": rng.integers(0, semantic.vocabulary_size,
                                        (1, frames // semantic.frames_per_token), np.int32),
        "prompt_tokens": rng.integers(0, acoustic.codebook_size,
                                      (1, prompt, acoustic.num_levels), np.int32),
        "prompt_lengths": np.array([prompt], np.int32), "lengths": np.array([frames], np.int32),
        "seeds": np.array([seed], np.int32), "temperature": np.ones(1, np.float32),
        "choice_temperature": np.full(1, 4.5, np.float32)}
