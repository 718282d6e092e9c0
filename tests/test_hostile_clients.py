"""Clients that mean harm or make mistakes cannot hurt the server or each other: each bad
input gets its code and message; slow, big and concurrent clients are bounded; a soak of
good and bad traffic loses no good request and leaves memory and threads where they were.

Loopback only, bounded in time: one `soundstorm serve` process (small limits, from
apps/bench/soak.py) for the table cases and the soak; in-process servers where a
limit must be reached deterministically.
"""

import shutil
import socket
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from soundstorm.apps.bench import soak
from soundstorm.export.contract import read_contract
from soundstorm.runtime.serving.server import ModelServer, ServerOptions, single_model_config
from tests.conftest import predict_request

MAX_BATCH = 4
FLAGS = (f"--max_message_bytes={soak.SOAK_MAX_MESSAGE_BYTES}",
         f"--max_inflight_bytes={soak.SOAK_MAX_INFLIGHT_BYTES}",
         f"--grpc_max_threads={soak.SOAK_THREADS}", f"--rest_api_num_threads={soak.SOAK_THREADS}",
         f"--max_request_batch_size={MAX_BATCH}", "--xla_cpu_compilation_enabled=true")


@pytest.fixture(scope="module")
def good(served_version):
    """A valid request (batch 1, 0.64 s) for the served tiny model."""
    return soak.good_arrays(read_contract(served_version), seconds=0.64, seed=3)


def base_with(version_dir, root):
    shutil.copytree(version_dir, root / "soundstorm" / "1")
    return root / "soundstorm"


@pytest.fixture
def start_server():
    """An in-process server on loopback over a copy of the tiny model; stopped afterwards."""
    servers = []

    def start(version_dir, root, **options):
        server = ModelServer(single_model_config("soundstorm", base_with(version_dir, root)),
                             ServerOptions(host="127.0.0.1", port=0, rest_api_port=-1, **options),
                             log=lambda message: None).start()
        servers.append(server)
        return server, grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield start
    for server in servers:
        server.stop(1)


@pytest.fixture(scope="module")
def served(served_version, tmp_path_factory):
    server = soak.ServerProcess.start(base_with(served_version, tmp_path_factory.mktemp("h")),
                                      *FLAGS)
    yield server
    assert server.stop() == 0  # a clean exit after everything below


@pytest.fixture(scope="module")
def channel(served):
    channel = grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}",
                                    options=[("grpc.max_send_message_length", 64 << 20)])
    yield channel
    channel.close()


@pytest.mark.parametrize("case", soak.grpc_cases(MAX_BATCH), ids=lambda case: case.name)
def test_each_bad_grpc_call_gets_its_code_and_message(served, channel, good, case):
    with pytest.raises(grpc.RpcError) as caught:
        case.call(channel, good)
    assert caught.value.code() == case.code, caught.value.details()
    details = caught.value.details() or ""
    assert case.words in details and "\n" not in details, details


@pytest.mark.parametrize("name", [case.name for case in soak.rest_cases({})])
def test_each_bad_rest_request_gets_its_status_and_message(served, good, name):
    case = next(case for case in soak.rest_cases(good) if case.name == name)
    status, body = soak.raw_http(served.rest_port, case.request)
    assert status == case.status, body
    assert case.words in body, body
    if status != 413 or body.startswith(b"{"):  # every error body is the API's JSON
        assert body.startswith(b"{\n") and b'"error"' in body, body


def test_a_body_over_the_limit_gets_its_413_while_the_client_is_still_sending(served):
    """RFC 9112 9.6's lingering close: http.client writes its whole body before reading; with
    an immediate close it gets ECONNRESET instead of the reply."""
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", served.rest_port, timeout=60)
    connection.request("POST", "/v1/models/soundstorm:predict",
                       body=b" " * (4 * soak.SOAK_MAX_MESSAGE_BYTES))
    reply = connection.getresponse()
    assert reply.status == 413
    assert b"larger than --max_message_bytes allows" in reply.read()


def test_slow_and_stalled_rest_clients_are_cut_off_while_others_are_served(
        served_version, tmp_path, start_server, monkeypatch):
    from soundstorm.runtime.serving import rest_connections
    monkeypatch.setattr(rest_connections, "REQUEST_READ_TIMEOUT_S", 1.0)
    server, _ = start_server(served_version, tmp_path)
    stalled = []
    for head in (soak.PREDICT[:20],  # a head that never ends (slow-loris)
                 soak.PREDICT + b"Content-Length: 100\r\n\r\n0123456789"):  # a short body
        connection = socket.create_connection(("127.0.0.1", server.rest_port), timeout=10)
        connection.sendall(head)
        stalled.append(connection)
    status, _ = soak.raw_http(server.rest_port, b"GET /v1/models/soundstorm HTTP/1.1\r\n"
                              b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status == 200  # served while the stalled ones wait
    started = time.monotonic()
    for connection in stalled:
        connection.sendall(b"1")  # still trickling: activity does not extend the deadline
    for connection in stalled:
        assert connection.recv(100) == b""  # closed by the server, unanswered
        connection.close()
    assert time.monotonic() - started < 8


def test_concurrent_requests_past_the_inflight_budget_are_refused_and_the_budget_returns(
        served_version, tmp_path, start_server, good):
    limit = 1 << 20
    server, channel = start_server(served_version, tmp_path, max_message_bytes=limit,
                                   max_inflight_bytes=limit)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_request(good)
    with server.inflight.hold(limit - 100, "another request"):  # others hold nearly all of it
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, timeout=60)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # retryable: not now
        assert "(--max_inflight_bytes); retry later" in caught.value.details()
        status, body = soak.raw_http(server.rest_port, soak.post(b'{"inputs": {}}'))
        assert status == 503 and b"--max_inflight_bytes" in body, body
    assert server.inflight.held_bytes == 0
    assert stub.Predict(request, timeout=60).outputs["acoustic_tokens"].tensor_shape.dim
    # A bad request returns what it reserved too.
    with pytest.raises(grpc.RpcError):
        stub.Predict(predict_request({**good, "temperature": np.full(1, np.nan, np.float32)}))
    assert server.inflight.held_bytes == 0


def test_the_inflight_budget_counts_and_refuses_exactly():
    from soundstorm.protos.status import StatusError
    from soundstorm.runtime.serving.admission import InflightBudget
    budget = InflightBudget(100)
    with budget.hold(60, "a"):
        with budget.hold(40, "b"):  # exactly full is allowed
            assert budget.held_bytes == 100
            with pytest.raises(StatusError, match="c needs 1 bytes but requests in flight hold "
                                                  "100 of the server's 100") as refused:
                with budget.hold(1, "c"):
                    pass
            assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(StatusError, match="e needs 101 bytes, more than the server's "
                                              "whole in-flight budget of 100") as refused:
            with budget.hold(101, "e"):  # can never fit, whatever is in flight
                pass
        assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert budget.held_bytes == 60
    with pytest.raises(RuntimeError):
        with budget.hold(30, "d"):
            raise RuntimeError("the request failed")
    assert budget.held_bytes == 0
    with InflightBudget(0).hold(10**12, "anything"):  # 0: no bound
        pass


def test_a_soak_of_good_and_bad_traffic_loses_no_good_request(served, good):
    """Good and bad requests from four clients while 20 sockets trickle a head: every good
    request answered with the same tokens, every bad one with its code; the server's memory
    and threads where they were after a warm-up with the same traffic."""
    arrays = good
    # Twice the threads of each pool at once: every pool is full before the baseline.
    warm = soak.soak(served, arrays, seconds=4, clients=2 * soak.SOAK_THREADS,
                     slow_connections=0, max_batch=MAX_BATCH)
    assert warm.good_lost == 0 and warm.bad_misanswered == 0, warm.failures
    before = served.status()
    figures = soak.soak(served, arrays, seconds=20, clients=4, slow_connections=20, seed=1,
                        max_batch=MAX_BATCH)
    # The slow sockets' threads end once their close reaches the server: wait for that (a
    # loaded CI machine can take seconds), but a thread that never ends still fails.
    deadline = time.monotonic() + 20
    while (after := served.status())["Threads"] > before["Threads"] and time.monotonic() < deadline:
        time.sleep(0.5)
    print(f"\nsoak: {figures}\nbefore {before}, after {after}")
    assert figures.good_requests >= 10 and figures.bad_requests >= 10, figures
    assert figures.good_lost == 0 and figures.bad_misanswered == 0, figures.failures
    assert after["Threads"] <= before["Threads"], (before, after)
    # Freed memory may stay with the allocator, but never more than the budget's worth.
    growth_mib = (after["VmRSS"] - before["VmRSS"]) / 1024
    assert growth_mib < soak.SOAK_MAX_INFLIGHT_BYTES / 2**20 + 64, (before, after)
