"""The model server against TF Serving's own stubs: tokens, versions, errors, batching, REST, TLS."""

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_management_pb2, model_service_pb2_grpc,
                                     prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2

from soundstorm.runtime.serving.batching import BatchingOptions
from soundstorm.protos.status import StatusError
from soundstorm.runtime.serving.server import ModelServer, ServerOptions, single_model_config
from tests.conftest import predict_request

AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.State.END


def free_port() -> int:
    """A port nobody listens on now (TF Serving refuses --port=0: it must be set)."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request_arrays(seed=0, frames=32, prompt=8, length=None):
    rng = np.random.default_rng(seed)
    return {"semantic_tokens": rng.integers(0, 12, (1, frames // 2)).astype(np.int32),
            "prompt_tokens": rng.integers(0, 16, (1, prompt, 3)).astype(np.int32),
            "prompt_lengths": np.array([prompt // 2], np.int32),
            "lengths": np.array([length or frames], np.int32),
            "seeds": np.array([seed], np.int32), "temperature": np.ones(1, np.float32),
            "choice_temperature": np.full(1, 4.5, np.float32)}


def tokens_of(response):
    return tf.make_ndarray(response.outputs["acoustic_tokens"])


def base_with(version_dir: Path, root: Path, versions=(1,)) -> Path:
    base = root / "soundstorm"
    for version in versions:
        shutil.copytree(version_dir, base / str(version))
    return base


@pytest.fixture
def start_server():
    servers = []

    def start(config, **options):
        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
        options.setdefault("poll_seconds", 0.2)
        options.setdefault("load_retry_interval_s", 0.05)
        server = ModelServer(config, ServerOptions(**options), log=lambda message: None).start()
        servers.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        return server, channel
    yield start
    for server in servers:
        server.stop(1)


@pytest.fixture(scope="module")
def direct(served_version):
    """The same SavedModel called in-process, for comparison."""
    return tf.saved_model.load(str(served_version)).signatures["serving_default"]


def direct_tokens(direct, arrays):
    return direct(**{k: tf.constant(v) for k, v in arrays.items()})["acoustic_tokens"].numpy()


def test_an_independent_client_gets_the_tokens_of_a_direct_call(served_version, tmp_path,
                                                               start_server, direct):
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for seed in range(3):
        arrays = request_arrays(seed, length=28)
        response = stub.Predict(predict_request(arrays), timeout=60)
        np.testing.assert_array_equal(tokens_of(response), direct_tokens(direct, arrays))
        assert response.model_spec.version.value == 1
        assert response.model_spec.signature_name == "serving_default"
    # Metadata: TF Serving's GetModelMetadata shape (signature defs packed in an Any).
    metadata = stub.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": "soundstorm"}, metadata_field=["signature_def"]))
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    # Every SignatureDef, TF's init-op entry included (get_model_metadata_impl.cc).
    assert set(signatures.signature_def) == {"serving_default", "logits", "metadata",
                                             "__saved_model_init_op"}
    assert "prompt_tokens" in signatures.signature_def["serving_default"].inputs


def test_errors_carry_tf_serving_codes_and_the_server_survives(served_version, tmp_path,
                                                               start_server, direct):
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)),
                                   max_message_bytes=64 * 1024)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    good = request_arrays(1)

    def code_of(request, match):
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, timeout=60)
        assert match in caught.value.details()
        return caught.value.code()

    assert code_of(predict_request(good, name="nope"), "Latest(nope)") == \
        grpc.StatusCode.NOT_FOUND
    assert code_of(predict_request(good, version=7), "Specific(soundstorm, 7)") == \
        grpc.StatusCode.NOT_FOUND
    assert code_of(predict_request(good, label="stable"),
                   "Unrecognized servable version label: stable") == \
        grpc.StatusCode.INVALID_ARGUMENT
    bad = dict(good, semantic_tokens=good["semantic_tokens"] + 100)
    assert code_of(predict_request(bad), "semantic_tokens must be <= 12") == \
        grpc.StatusCode.INVALID_ARGUMENT
    wrong_dtype = dict(good, seeds=good["seeds"].astype(np.int64))
    assert code_of(predict_request(wrong_dtype), "'seeds' to be int32 but int64") == \
        grpc.StatusCode.INVALID_ARGUMENT
    missing = {k: v for k, v in good.items() if k != "seeds"}
    assert code_of(predict_request(missing), "Missing but required: {seeds}") == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(predict_request(good, signature="nope"),
                   'Serving signature key "nope" not found.') == \
        grpc.StatusCode.FAILED_PRECONDITION
    huge = dict(good, semantic_tokens=np.zeros((1, 40_000), np.int32))
    assert code_of(predict_request(huge), "larger than max") == \
        grpc.StatusCode.RESOURCE_EXHAUSTED
    # Still serving, and still right.
    np.testing.assert_array_equal(tokens_of(stub.Predict(predict_request(good))),
                                  direct_tokens(direct, good))


def _write_version(version_dir: Path, base: Path, version: int) -> None:
    """As an export does: write hidden, then rename into place."""
    staging = base / f".export-{version}"
    shutil.copytree(version_dir, staging)
    os.rename(staging, base / str(version))


def _wait(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_new_versions_hot_load_under_traffic_and_a_corrupt_one_never_serves(
        served_version, tmp_path, start_server):
    base = base_with(served_version, tmp_path)
    server, channel = start_server(single_model_config("soundstorm", base))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    served, failures, stop = [], [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                served.append(stub.Predict(predict_request(request_arrays(2)),
                                           timeout=60).model_spec.version.value)
            except Exception as error:  # any error, not only RPC ones, fails the test
                failures.append(error)
                return

    def wait_for(condition):  # a traffic thread's error fails the test at once, as itself
        _wait(lambda: failures or condition())
        assert not failures, failures[:1]
    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(served) >= 5)
        _write_version(served_version, base, 2)
        wait_for(lambda: served and served[-1] == 2)
        statuses = {s.version: s.state for s in models.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "soundstorm"}))
            .model_version_status}
        assert statuses == {1: END, 2: AVAILABLE}
        # A corrupt version 3: reported, never served; version 2 keeps serving.
        (base / ".export-3").mkdir()
        (base / ".export-3" / "saved_model.pb").write_bytes(b"not a SavedModel")
        os.rename(base / ".export-3", base / "3")
        _wait(lambda: any(s.version == 3 and s.state == END for s in models.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "soundstorm"}))
            .model_version_status))
        count = len(served)
        wait_for(lambda: len(served) >= count + 5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures, failures[:1]
    assert set(served) == {1, 2} and served[-1] == 2
    status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
        model_spec={"name": "soundstorm", "version": {"value": 3}})).model_version_status[0]
    assert status.state == END
    # The load's status as TensorFlow gives it (ReadBinaryProto, tsl/platform/env.cc), which TF
    # Serving passes on (ToStatusProto, util/status_util.cc).
    corrupt = base / "3" / "saved_model.pb"
    assert status.status.error_message == f"Can't parse {corrupt} as binary proto"
    assert status.status.error_code == grpc.StatusCode.DATA_LOSS.value[0]


def test_health_is_tf_servings_and_status_follows_what_is_loaded(served_version, tmp_path,
                                                                 start_server):
    """Health answers only with --enable_grpc_healthcheck_service, for "ModelService" and
    "PredictionService", SERVING from the start (server.cc BuildAndStart); readiness is the
    model's status, which follows the loads."""
    base = tmp_path / "soundstorm"
    base.mkdir()
    _, without = start_server(single_model_config("soundstorm", base))
    with pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(without).Check(health_pb2.HealthCheckRequest(service=""))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    server, channel = start_server(single_model_config("soundstorm", base), grpc_healthcheck=True)
    health = health_pb2_grpc.HealthStub(channel)

    def state(service):
        return health.Check(health_pb2.HealthCheckRequest(service=service)).status
    for service in ("", "ModelService", "PredictionService"):
        assert state(service) == health_pb2.HealthCheckResponse.SERVING
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
            model_spec={"name": "soundstorm"}))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "Could not find any versions of model soundstorm"
    with pytest.raises(grpc.RpcError) as caught:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            predict_request(request_arrays(1)))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    _write_version(served_version, base, 1)
    _wait(lambda: server.manager.available() == {"soundstorm": [1]})
    assert [s.state for s in models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
        model_spec={"name": "soundstorm"})).model_version_status] == [AVAILABLE]
    server.stop(1)
    # Shutting down: the health service tells load balancers to go elsewhere.
    assert server.health.Check(health_pb2.HealthCheckRequest(service=""), None).status == \
        health_pb2.HealthCheckResponse.NOT_SERVING


def test_rest_timeout_answers_deadline_exceeded(served_version, tmp_path, start_server,
                                               monkeypatch):
    server, _ = start_server(single_model_config("soundstorm", base_with(served_version, tmp_path)),
                             rest_api_port=-1, rest_timeout_seconds=0.2)
    servable = server.manager.resolve("soundstorm")
    run = servable.run
    monkeypatch.setattr(servable, "run", lambda *args: (time.sleep(1.0), run(*args))[1])
    arrays = request_arrays(11)
    status, body = _http(f"http://127.0.0.1:{server.rest_port}/v1/models/soundstorm:predict",
                         {"inputs": {k: v.tolist() for k, v in arrays.items()}})
    assert status == 504, body  # DEADLINE_EXCEEDED (ToHTTPStatusCode, http_server.cc)


def test_labels_policies_and_config_reload(served_version, tmp_path, start_server):
    base = base_with(served_version, tmp_path, versions=(9, 10))  # 10 > 9, though "10" < "9"
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name="soundstorm", base_path=str(base),
                                                model_platform="tensorflow")
    model.model_version_policy.all.SetInParent()
    model.version_labels["stable"] = 9
    model.version_labels["canary"] = 10
    with pytest.raises(StatusError) as caught:  # labels on versions not yet loaded
        start_server(config)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.message == ("Request to assign label to version 10 of model soundstorm, "
                                    "which is not currently available for inference")
    server, channel = start_server(config, allow_version_labels_for_unavailable_models=True,
                                   reload_config_roots=(tmp_path,))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    arrays = request_arrays(3)
    for label, version in (("stable", 9), ("canary", 10)):
        response = stub.Predict(predict_request(arrays, label=label))
        assert response.model_spec.version.value == version
    assert stub.Predict(predict_request(arrays)).model_spec.version.value == 10  # latest
    # Reload: serve a second name and only version 9 of the first.
    model.model_version_policy.specific.versions.append(9)
    config.model_config_list.config.add(name="copy", base_path=str(base),
                                        model_platform="tensorflow")
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    reply = models.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(
        config=config))
    assert reply.status.error_code == 0
    assert stub.Predict(predict_request(arrays, name="copy")).model_spec.version.value == 10
    assert stub.Predict(predict_request(arrays)).model_spec.version.value == 9
    statuses = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "soundstorm"}))
    assert [(s.version, s.state) for s in statuses.model_version_status] == \
        [(10, END), (9, AVAILABLE)]
    bad = model_server_config_pb2.ModelServerConfig()
    bad.model_config_list.config.add(name="x", base_path=str(base), model_platform="pytorch")
    with pytest.raises(grpc.RpcError) as caught:
        models.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.Predict(predict_request(arrays)).model_spec.version.value == 9  # untouched


def test_reload_rpc_is_the_operators(served_version, tmp_path, start_server):
    """Refused (PERMISSION_DENIED, nothing changed) unless started with
    --reload_config_allowed_roots, and then only for base paths under those folders, with
    `..` and symlinks resolved. TF Serving itself accepts any reload (ours: flags.py)."""
    base = base_with(served_version, tmp_path / "models")
    config = single_model_config("soundstorm", base)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "models" / "link").symlink_to(tmp_path / "elsewhere")
    arrays = request_arrays(3)

    def reload(channel, base_path):
        changed = model_server_config_pb2.ModelServerConfig()
        changed.model_config_list.config.add(name="soundstorm", base_path=str(base_path),
                                             model_platform="tensorflow")
        return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
            model_management_pb2.ReloadConfigRequest(config=changed))

    _, closed = start_server(config)
    with pytest.raises(grpc.RpcError) as caught:
        reload(closed, tmp_path / "elsewhere")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == ("HandleReloadConfigRequest is disabled on this server; the "
                                      "operator enables it with "
                                      "--reload_config_allowed_roots=DIR[,DIR]")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(closed)
    assert stub.Predict(predict_request(arrays)).model_spec.version.value == 1  # unchanged

    _, opened = start_server(config, reload_config_roots=(tmp_path / "models",))
    for outside in ("/proc", tmp_path / "elsewhere", tmp_path / "models" / ".." / "elsewhere",
                    tmp_path / "models" / "link"):
        with pytest.raises(grpc.RpcError) as caught:
            reload(opened, outside)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, outside
        assert caught.value.details().startswith(f"base path {outside} of model soundstorm is "
                                                 "outside --reload_config_allowed_roots")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(opened)
    assert stub.Predict(predict_request(arrays)).model_spec.version.value == 1
    assert reload(opened, base).status.error_code == 0  # inside the root: done


def _metric(server, name):
    """One sample of the server's Prometheus exposition, by its full name."""
    values = [float(line.split()[-1]) for line in server.metrics.exposition().decode().splitlines()
              if line.split(" ")[0] == name]
    assert len(values) == 1, (name, values)
    return values[0]


def test_batching_merges_padded_requests_without_changing_their_tokens(
        served_version, tmp_path, start_server, direct, monkeypatch):
    # A batch closes when full (4) or 2 s after its first request: 3 concurrent requests share
    # one, padded to 4.
    options = BatchingOptions(max_batch_size=4, batch_timeout_micros=2_000_000,
                              allowed_batch_sizes=(2, 4), pad_variable_length_inputs=True)
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)),
                                   batching=options)
    servable = server.manager.resolve("soundstorm")
    run, batch_sizes = servable.run, []

    def recording_run(signature, inputs):  # what reaches the SavedModel
        batch_sizes.append(inputs["seeds"].shape[0])
        return run(signature, inputs)
    monkeypatch.setattr(servable, "run", recording_run)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    pool = concurrent.futures.ThreadPoolExecutor(3)

    def predict_concurrently(requests):
        """Futures of concurrent Predict calls: `.result()` raises a call's error here."""
        return [pool.submit(stub.Predict, predict_request(arrays), timeout=60)
                for arrays in requests]
    # Different lengths and prompt sizes: the batcher pads them to one shape.
    requests = [request_arrays(seed, frames=frames, prompt=prompt)
                for seed, frames, prompt in ((4, 32, 8), (5, 20, 6), (6, 12, 4))]
    results = [tokens_of(future.result()) for future in predict_concurrently(requests)]
    assert batch_sizes == [4]  # one batch: the 3 requests and a copy of the first
    for arrays, tokens in zip(requests, results):
        frames = arrays["lengths"][0]
        np.testing.assert_array_equal(tokens[:, :frames], direct_tokens(direct, arrays))
        assert (tokens[:, frames:] == 0).all()
    assert _metric(server, ":soundstorm:serving:batch_examples_count") == 1
    assert _metric(server, ":soundstorm:serving:batch_examples_sum") == 3
    assert _metric(server, ":soundstorm:serving:batch_padding_examples") == 1
    # A bad request in a batch fails alone: the batch fails in the SavedModel's checks, then
    # each of its requests runs on its own (padded to 2), so its batch-mates still get theirs.
    bad = dict(request_arrays(7), seeds=np.array([-1], np.int32))
    good, bad_call, other = predict_concurrently([requests[1], bad, requests[2]])
    for arrays, future in ((requests[1], good), (requests[2], other)):
        frames = arrays["lengths"][0]
        np.testing.assert_array_equal(tokens_of(future.result())[:, :frames],
                                      direct_tokens(direct, arrays))
    with pytest.raises(grpc.RpcError) as caught:
        bad_call.result()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "seeds must be >= 0" in caught.value.details()
    assert batch_sizes == [4, 4, 2, 2, 2]
    pool.shutdown()


def _http(url, body=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_rest_api_matches_grpc_and_exposes_metrics(served_version, tmp_path, start_server,
                                                   direct):
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)),
                                   rest_api_port=-1, metrics_path="/monitoring/prometheus/metrics")
    root = f"http://127.0.0.1:{server.rest_port}/v1/models/soundstorm"
    arrays = request_arrays(8)
    expected = direct_tokens(direct, arrays)
    np.testing.assert_array_equal(tokens_of(prediction_service_pb2_grpc.PredictionServiceStub(
        channel).Predict(predict_request(arrays))), expected)
    status, body = _http(root + ":predict",
                         {"instances": [{k: v[0].tolist() for k, v in arrays.items()}]})
    assert status == 200
    np.testing.assert_array_equal(json.loads(body)["predictions"][0]["acoustic_tokens"],
                                  expected[0])
    status, body = _http(root + "/versions/1:predict",
                         {"inputs": {k: v.tolist() for k, v in arrays.items()}})
    assert status == 200
    np.testing.assert_array_equal(json.loads(body)["outputs"]["acoustic_tokens"], expected)
    status, body = _http(root + ":predict", {"signature_name": "metadata",
                                             "inputs": {"probe": [0]}})
    assert json.loads(json.loads(body)["outputs"]["contract_json"][0])["max_frames"] == 32
    assert json.loads(_http(root)[1])["model_version_status"][0]["state"] == "AVAILABLE"
    metadata = json.loads(_http(root + "/metadata")[1])
    assert "serving_default" in metadata["metadata"]["signature_def"]["signature_def"]
    assert _http(root.replace("soundstorm", "nope"))[0] == 404
    bad = {"inputs": dict({k: v.tolist() for k, v in arrays.items()}, seeds=[-1])}
    status, body = _http(root + ":predict", bad)
    assert status == 400 and "seeds must be >= 0" in json.loads(body)["error"]
    status, metrics = _http(f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics")
    assert status == 200
    assert b':tensorflow:serving:request_count{model_name="soundstorm",status="OK"}' in metrics
    assert b'status="INVALID_ARGUMENT"' in metrics


def test_tls(served_version, tmp_path, start_server):
    from soundstorm.protos import tf_serving_config_pb2
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    ssl = tf_serving_config_pb2.SSLConfig(server_key=key.read_text(), server_cert=cert.read_text())
    server, _ = start_server(single_model_config("soundstorm", base_with(served_version, tmp_path)),
                             ssl=ssl)
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    channel = grpc.secure_channel(f"localhost:{server.grpc_port}", credentials)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    assert stub.Predict(predict_request(request_arrays(9)), timeout=60).model_spec.version.value == 1
    plain = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(f"localhost:{server.grpc_port}"))
    with pytest.raises(grpc.RpcError) as caught:  # no TLS handshake, no answer
        plain.Predict(predict_request(request_arrays(9)), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_graceful_shutdown_finishes_in_flight_requests(served_version, tmp_path, start_server,
                                                       monkeypatch):
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)))
    servable = server.manager.resolve("soundstorm")
    run = servable.run

    def slow_run(*args):
        time.sleep(1.0)
        return run(*args)
    monkeypatch.setattr(servable, "run", slow_run)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    future = stub.Predict.future(predict_request(request_arrays(10)), timeout=60)
    time.sleep(0.3)  # in flight
    server.stop(grace_seconds=10)
    assert future.result().model_spec.version.value == 1


def test_serve_command_runs_and_stops_on_sigterm(served_version, tmp_path):
    base = base_with(served_version, tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "soundstorm.apps.cli", "serve", "--model_base_path", str(base),
         "--model_name", "soundstorm",
         "--port", str(free_port()), "--host", "127.0.0.1",
         "--xla_cpu_compilation_enabled=true"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "gRPC on" in line:
            break
    assert "serving {'soundstorm': [1]}" in lines[-1], lines
    process.terminate()
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and "shutting down" in rest


def test_serve_command_refuses_bad_flags(tmp_path, capsys):
    from soundstorm.apps.cli.main import main
    assert main(["serve", "--model_base_path", str(tmp_path / "none")]) == 3
    assert "not a folder" in capsys.readouterr().err
    config = tmp_path / "models.config"
    config.write_text("model_config_list { config { name: 'x' base_path: '/m' "
                      "model_platform: 'pytorch' } }")
    assert main(["serve", "--model_config_file", str(config)]) == 3
    assert "platform 'pytorch'" in capsys.readouterr().err
    # A batching file that cannot work, or does not parse: one line and exit 3, before any
    # model loads (the base path is valid).
    base = tmp_path / "m"
    base.mkdir()
    batching = tmp_path / "batching.txt"
    for text, message in (("max_batch_size { value: 4 } allowed_batch_sizes: 1 "
                           "allowed_batch_sizes: 3", "allowed_batch_sizes must increase and end "
                           "at max_batch_size (4)"),
                          ("max_batch_size: {", "not a BatchingParameters text proto")):
        batching.write_text(text)
        assert main(["serve", "--model_base_path", str(base), "--enable_batching",
                     "--batching_parameters_file", str(batching)]) == 3
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_the_documented_dev_server_command_parses_and_reads_the_configs(monkeypatch):
    import shlex
    from soundstorm.runtime.serving.cli import options_from_flags
    from soundstorm.runtime.serving.flags import ServerFlags
    from soundstorm.runtime.serving.server import read_model_config
    from soundstorm.apps.cli.main import build_parser
    root = Path(__file__).resolve().parent.parent
    readme = (root / "serving_configs" / "README.md").read_text()
    words = next(shlex.split(line) for line in readme.splitlines()
                 if line.startswith(("soundstorm serve", "LD_PRELOAD=")) and "serve" in line)
    while "=" in words[0]:  # LD_PRELOAD=libjemalloc.so.2 before the command
        words.pop(0)
    assert words[:2] == ["soundstorm", "serve"]
    monkeypatch.chdir(root)  # the documented command runs from the repository root
    args = ServerFlags.from_namespace(build_parser().parse_args(words[1:]))
    options = options_from_flags(args)
    assert options.batching.max_batch_size == 16 and options.batching.pad_variable_length_inputs
    assert options.metrics_path == "/monitoring/prometheus/metrics"
    assert (args.port, args.rest_api_port) == (8500, 8501)
    config = read_model_config(args.model_config_file)
    assert config.model_config_list.config[0].name == "soundstorm"


# The version manager on its own: a stand-in servable, so polls take milliseconds and each
# version's load is recorded.

class _FakeServable:
    loads: list

    def __init__(self, name, version, path, *session_threads):
        self.loads.append(version)
        self.session_threads = session_threads
        if (Path(path) / "corrupt").exists():  # its text, if any, is the error's message
            raise ValueError((Path(path) / "corrupt").read_text()
                             or f"version {version} is corrupt")
        self.name, self.version, self.path = name, version, Path(path)

    def warm_up(self):
        return 0, 0.0


@pytest.fixture
def fake_loads(monkeypatch):
    """Loads in the manager make `_FakeServable`s; returns the versions loaded, in order."""
    import soundstorm.runtime.serving.manager as manager_module
    loads = []
    monkeypatch.setattr(_FakeServable, "loads", loads, raising=False)
    monkeypatch.setattr(manager_module, "Servable", _FakeServable)
    return loads


def _model_config(base, latest=None, all_versions=False, specific=(), **labels):
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name="m", base_path=str(base),
                                                model_platform="tensorflow")
    policy = model.model_version_policy
    if latest is not None:
        policy.latest.num_versions = latest
    if all_versions:
        policy.all.SetInParent()
    if specific:
        policy.specific.versions.extend(specific)
    for label, version in labels.items():
        model.version_labels[label] = version
    return config


def _versions(base, *versions, corrupt=()):
    for version in versions:
        (base / str(version)).mkdir(parents=True)
        if version in corrupt:
            (base / str(version) / "corrupt").write_text("")


def _states(manager, name="m"):
    return {s.version: s.state for s in manager.status(name)}


def test_the_manager_checks_its_config_and_keeps_tf_servings_defaults():
    """ModelServerConfig checks (a config other than a model list, unnamed or duplicate
    models); the defaults are TF Serving's (--load_retry_interval_micros 60 s, TensorFlow's
    own thread counts)."""
    import inspect
    from soundstorm.runtime.serving.manager import ModelManager, check_config
    for config, message in (
            (model_server_config_pb2.ModelServerConfig(), "only model_config_list"),
            (_model_config("/m"), None)):
        if message is None:
            check_config(config)
            continue
        with pytest.raises(StatusError, match=message):
            check_config(config)
    twice = _model_config("/a")
    twice.model_config_list.config.add(name="m", base_path="/b")
    with pytest.raises(StatusError, match="model names must be non-empty and unique"):
        check_config(twice)
    defaults = {name: parameter.default for name, parameter in
                inspect.signature(ModelManager).parameters.items()}
    assert defaults["load_retry_interval_s"] == 60.0 and defaults["session_threads"] == (0, 0)
    assert defaults["max_num_load_retries"] == 5


def test_each_load_gets_the_session_threads_and_logs_one_line(tmp_path, fake_loads):
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    _versions(base, 1, 2, corrupt=(2,))
    (base / "2" / "corrupt").write_text("version 2 is corrupt\nsecond line of the cause")
    lines = []
    manager = ModelManager(_model_config(base, all_versions=True), log=lines.append,
                           load_retry_interval_s=0, max_num_load_retries=0, warm_up=False,
                           session_threads=(3, 2))
    manager.poll()
    assert manager.resolve("m", 1).session_threads == (3, 2)
    assert "m version 1 available (0 warm-up requests, 0.0 s)" in lines
    failed = [line for line in lines if "failed" in line]
    assert failed == ["Loading servable: {name: m version: 2} failed: ValueError: version 2 is "
                      "corrupt"]  # the first line of the cause only
    assert ModelManager(_model_config(base), log=lines.append).session_threads == (0, 0)


def test_a_poll_interval_of_0_never_polls_again(tmp_path, fake_loads):
    """--file_system_poll_wait_seconds=0: the versions found at start only (server.h)."""
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    _versions(base, 1)
    manager = ModelManager(_model_config(base), log=lambda message: None)
    manager.poll()
    manager.start_polling(0)
    _versions(base, 2)
    time.sleep(0.3)
    assert manager._thread is None and manager.available() == {"m": [1]}
    manager.start_polling(-1)  # negative: no polling either (TF reserves it for its tests)
    assert manager._thread is None
    ModelManager(_model_config(base), log=lambda message: None).stop()  # no poller to stop
    manager.start_polling(0.05)
    _wait(lambda: manager.available() == {"m": [2]})
    manager.stop()
    assert not manager._thread.is_alive()  # stop() ends the poller before it returns


def test_a_process_that_never_stopped_its_poller_still_exits(tmp_path):
    """The poller is a daemon thread: a program that forgets stop() is not kept alive by it
    (a poller waiting its interval would otherwise hold the interpreter at exit for ever)."""
    program = textwrap.dedent(f"""
        from tensorflow_serving.config import model_server_config_pb2
        from soundstorm.runtime.serving.manager import ModelManager
        config = model_server_config_pb2.ModelServerConfig()
        config.model_config_list.config.add(name="m", base_path={str(tmp_path)!r},
                                            model_platform="tensorflow")
        ModelManager(config, log=lambda message: None).start_polling(3600)
        print("exiting")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "exiting", done.stderr[-2000:]


def test_the_poller_keeps_polling_after_a_pass_that_failed(tmp_path, fake_loads):
    """One pass that raises (a base path unreadable for a moment) is logged, and the next
    pass runs: the poller never dies of it."""
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    _versions(base, 1)
    lines = []
    manager = ModelManager(_model_config(base), log=lines.append)
    poll, passes = manager.poll, []

    def failing_once():
        passes.append(1)
        if len(passes) == 1:
            raise OSError("base path unreadable")
        poll()
    manager.poll = failing_once
    manager.start_polling(0.05)
    try:
        _wait(lambda: manager.available() == {"m": [1]}, seconds=10)
    finally:
        manager.stop()
    assert "poll failed: base path unreadable" in lines


def test_a_failed_version_whose_folder_comes_back_fixed_is_loaded(tmp_path, fake_loads):
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    _versions(base, 1, 2, corrupt=(2,))
    manager = ModelManager(_model_config(base, all_versions=True), log=lambda message: None,
                           load_retry_interval_s=0, max_num_load_retries=0)
    manager.poll()
    assert _states(manager) == {1: AVAILABLE, 2: END}
    manager.poll()
    assert fake_loads.count(2) == 1  # a failed version is not retried while it is there
    shutil.rmtree(base / "2")
    manager.poll()  # gone: forgotten
    _versions(base, 2)
    manager.poll()
    assert _states(manager) == {1: AVAILABLE, 2: AVAILABLE}


def test_labels_go_only_to_available_versions_each_one_checked(tmp_path, fake_loads):
    """UpdateModelVersionLabelMap (server_core.cc): every label of the config is checked; a
    failed (END) version takes none; with the allowance, a new label may name a version not
    loaded yet, but an existing label is never moved to one."""
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    _versions(base, 1, 2, 3, corrupt=(2,))
    manager = ModelManager(_model_config(base, all_versions=True), log=lambda message: None,
                           load_retry_interval_s=0, max_num_load_retries=0)
    manager.poll()
    for labels in ({"a": 1, "b": 9}, {"a": 2}):  # b on a missing version; a on a failed one
        with pytest.raises(StatusError, match="which is not currently available") as refused:
            manager.reload_config(_model_config(base, all_versions=True, **labels))
        assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    allowing = ModelManager(_model_config(base, all_versions=True), log=lambda message: None,
                            allow_version_labels_for_unavailable_models=True,
                            load_retry_interval_s=0, max_num_load_retries=0)
    allowing.poll()
    allowing.reload_config(_model_config(base, all_versions=True, stable=3, canary=7))
    for moved_to in (2, 8):  # a failed version below the label's, a missing one above it
        with pytest.raises(StatusError, match=f"label to version {moved_to} of model m"):
            allowing.reload_config(_model_config(base, all_versions=True, stable=moved_to,
                                                 canary=7))
    assert allowing.resolve("m", label="stable").version == 3


def test_a_reload_that_moves_or_drops_a_model_unloads_its_old_versions(tmp_path, fake_loads):
    from soundstorm.runtime.serving.manager import ModelManager
    first, second = tmp_path / "b", tmp_path / "a"  # the new base path sorts first
    _versions(first, 1)
    _versions(second, 5)
    manager = ModelManager(_model_config(first), log=lambda message: None)
    manager.poll()
    old = manager._models["m"]
    manager.reload_config(_model_config(second))
    assert manager.available() == {"m": [5]}
    assert old.versions[1].state == END and old.versions[1].servable is None  # released
    moved = manager._models["m"]
    # To a base path that sorts last, holding the same version number: that version is
    # loaded again from its new folder, not kept from the old one.
    third = tmp_path / "c"
    _versions(third, 5)
    manager.reload_config(_model_config(third))
    assert manager.available() == {"m": [5]}
    assert manager.resolve("m").path == third / "5"
    assert moved.versions[5].state == END and moved.versions[5].servable is None
    moved = manager._models["m"]
    manager.reload_config(model_server_config_pb2.ModelServerConfig(
        model_config_list=model_server_config_pb2.ModelConfigList()))
    assert manager.available() == {}
    assert moved.versions[5].state == END and moved.versions[5].servable is None


def test_a_version_folder_is_loaded_from_its_own_name(tmp_path, fake_loads):
    """`0002` is version 2 (ParseVersionNumber: absl::SimpleAtoi,
    file_system_storage_path_source.cc), loaded from `0002/`, not looked up as `2/`."""
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    (base / "0002").mkdir(parents=True)
    manager = ModelManager(_model_config(base), log=lambda message: None, load_retry_interval_s=0)
    manager.poll()
    assert manager.available() == {"m": [2]}
    assert manager.resolve("m").path == base / "0002"


def test_versions_are_numbers_so_10_is_newer_than_9(tmp_path, fake_loads):
    from soundstorm.runtime.savedmodel.layout import versions_on_disk
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    _versions(base, 9, 10, 100, 2)
    (base / ".export-11").mkdir()  # an export's staging folder and other names: not versions
    (base / "tmp").mkdir()
    (base / "3.txt").write_text("")
    assert versions_on_disk(base) == [2, 9, 10, 100]
    manager = ModelManager(_model_config(base, latest=2), log=lambda message: None)
    manager.poll()
    assert manager.available() == {"m": [10, 100]}
    assert manager.resolve("m").version == 100
    manager.reload_config(_model_config(base, all_versions=True))
    assert manager.available() == {"m": [2, 9, 10, 100]}
    manager.reload_config(_model_config(base, all_versions=True, stable=9))  # 9 is loaded now
    # Newest first, as GetModelStatus lists them (ServableStateMonitor's VersionMap).
    assert [s.version for s in manager.status("m")] == [100, 10, 9, 2]
    assert manager.resolve("m").version == 100
    assert (manager.resolve("m", 9).version, manager.resolve("m", 10).version) == (9, 10)
    assert manager.resolve("m", label="stable").version == 9
    shutil.rmtree(base / "100")
    manager.poll()
    assert manager.resolve("m").version == 10  # the highest available, not the last as text
    assert _states(manager) == {2: AVAILABLE, 9: AVAILABLE, 10: AVAILABLE, 100: END}


def test_the_latest_policy_serves_the_n_highest_versions(tmp_path, fake_loads):
    from soundstorm.runtime.serving.manager import ModelManager, aspired_versions
    policy = type(model_server_config_pb2.ModelConfig().model_version_policy)
    assert aspired_versions(policy(), [1, 2, 3]) == {3}  # no policy: TF Serving's latest 1
    assert aspired_versions(policy(latest={}), [1, 2, 3]) == {3}  # num_versions unset: 1
    for count, wanted in ((1, {9}), (2, {8, 9}), (3, {7, 8, 9}), (5, {3, 7, 8, 9})):
        assert aspired_versions(policy(latest={"num_versions": count}), [3, 7, 8, 9]) == wanted
    assert aspired_versions(policy(latest={"num_versions": 2}), []) == set()
    assert aspired_versions(policy(specific={"versions": [7, 5]}), [3, 7, 8]) == {7}
    assert aspired_versions(policy(all={}), [3, 7, 8]) == {3, 7, 8}
    base = tmp_path / "m"
    _versions(base, 1, 2, 3, 4)
    manager = ModelManager(_model_config(base, latest=3), log=lambda message: None)
    manager.poll()
    assert manager.available() == {"m": [2, 3, 4]}
    assert sorted(fake_loads) == [2, 3, 4]  # version 1 is never even loaded


def test_a_roll_out_unloads_only_the_versions_the_policy_no_longer_wants(tmp_path, fake_loads):
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    _versions(base, 1, 2)
    changes = []
    manager = ModelManager(_model_config(base, latest=2), log=lambda message: None,
                           on_change=lambda: changes.append(manager.available()["m"]))
    manager.poll()
    two = manager.resolve("m", 2)
    _versions(base, 3)
    manager.poll()
    assert _states(manager) == {1: END, 2: AVAILABLE, 3: AVAILABLE}
    assert manager.resolve("m", 2) is two  # kept as it was, not reloaded
    assert fake_loads == [1, 2, 3]
    assert changes == [[1, 2], [2, 3]]
    with pytest.raises(StatusError, match=r"Specific\(m, 1\)"):
        manager.resolve("m", 1)
    # Specific versions: exactly those, whichever are newest.
    manager.reload_config(_model_config(base, specific=(1, 3)))
    assert _states(manager) == {1: AVAILABLE, 2: END, 3: AVAILABLE}
    # Every version gone from disk: nothing is served any more.
    shutil.rmtree(base)
    manager.poll()
    assert manager.available() == {"m": []}
    with pytest.raises(StatusError, match=r"Latest\(m\)"):
        manager.resolve("m")


def test_a_version_that_fails_to_load_leaves_the_last_good_one_serving(tmp_path, fake_loads):
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    _versions(base, 1)
    manager = ModelManager(_model_config(base), log=lambda message: None, load_retry_interval_s=0)
    manager.poll()
    _versions(base, 2, corrupt=(2,))
    manager.poll()  # the one poll that tries version 2 must not unload version 1
    assert manager.resolve("m").version == 1
    assert _states(manager) == {1: AVAILABLE, 2: END}
    error = manager.status("m", 2)[0].status
    assert error.error_code == grpc.StatusCode.UNKNOWN.value[0]
    assert error.error_message == "ValueError: version 2 is corrupt"
    assert manager.status("m", 1)[0].status.error_code == 0
    assert [s.version for s in manager.status("m", 2)] == [2]  # that version only
    manager.poll()
    manager.poll()
    # Tried once and retried max_num_load_retries (5) times in its first poll, never again
    # while its folder stays (LoaderHarness::Load with util/retrier.cc; later polls do not
    # re-aspire it, aspired_versions_manager.cc).
    assert fake_loads == [1] + [2] * 6
    _versions(base, 3)
    manager.poll()
    assert _states(manager) == {1: END, 2: END, 3: AVAILABLE}
    assert manager.resolve("m").version == 3


def test_load_retries_wait_the_configured_interval(tmp_path, fake_loads):
    """--load_retry_interval_micros between tries (util/retrier.cc sleeps it before each
    retry): 3 retries 0.2 s apart take about 0.6 s."""
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    _versions(base, 1, corrupt=(1,))
    manager = ModelManager(_model_config(base), log=lambda message: None,
                           load_retry_interval_s=0.2, max_num_load_retries=3)
    started = time.monotonic()
    manager.poll()
    elapsed = time.monotonic() - started
    assert fake_loads == [1] * 4 and 0.55 < elapsed < 2.5, elapsed


def test_a_version_whose_folder_goes_away_is_not_retried(tmp_path, fake_loads, monkeypatch):
    """Between load retries the manager looks whether the version is still there and stops
    retrying once it is gone (TF Serving: CancelLoadServableRetry, the retrier's
    should_retry)."""
    from soundstorm.runtime.serving.manager import ModelManager
    base = tmp_path / "m"
    _versions(base, 1, corrupt=(1,))
    load = _FakeServable.__init__

    def load_then_vanish(self, name, version, path, *threads):
        try:
            load(self, name, version, path, *threads)
        finally:
            shutil.rmtree(path)  # removed while its load fails
    monkeypatch.setattr(_FakeServable, "__init__", load_then_vanish)
    messages = []
    manager = ModelManager(_model_config(base), log=messages.append,
                           load_retry_interval_s=0, max_num_load_retries=5)
    manager.poll()
    assert fake_loads == [1]  # tried once, not 1 + 5 times
    assert _states(manager) == {1: END}
    # Nor are the other retries announced and waited for (TF Serving's retrier stops at
    # the first should_retry that says no).
    assert sum(message.startswith("Retrying") for message in messages) <= 1


# The batcher on its own, in front of a stand-in model that records what it is called with.

class _Recorder:
    """A stand-in model: y = 10 x, and `first`, each example's x[:, :1]; it raises, as the
    SavedModel's checks do, when any x is negative."""

    def __init__(self):
        self.calls, self.times, self.lock = [], [], threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            self.calls.append({key: value.copy() for key, value in inputs.items()})
            self.times.append(time.monotonic())
        if (inputs["x"] < 0).any():
            raise ValueError("x must be >= 0")
        return {"y": inputs["x"] * 10, "first": inputs["x"][:, :1].copy()}

    def sizes(self):
        return [call["x"].shape[0] for call in self.calls]


@pytest.fixture
def batcher():
    from soundstorm.runtime.serving.batching import Batcher
    made = []

    def make(**options):
        record, batches = _Recorder(), []
        made.append(Batcher(record, BatchingOptions(**options),
                            lambda examples, padded: batches.append((examples, padded))))
        return made[-1], record, batches
    yield make
    for each in made:
        _close_within(each, 10)


def _close_within(batcher_, seconds: float) -> None:
    """Batcher.close(), bounded: a broken scheduler (one that never ends its loop) fails the
    test in seconds instead of hanging the run."""
    closer = threading.Thread(target=batcher_.close, daemon=True)
    closer.start()
    closer.join(seconds)
    assert not closer.is_alive(), f"Batcher.close() did not return within {seconds:g} s"


def _submit_all(batcher_, requests, gap=0.0, at=None):
    """Submits each request from its own thread, in order, `gap` seconds apart or at the
    times `at` (seconds from now); returns the futures. `.result()` re-raises a request's
    error in the test's own thread."""
    def submit(request, future):
        try:
            future.set_result(batcher_.submit(request))
        except BaseException as error:
            future.set_exception(error)
    started, futures = time.monotonic(), []
    for i, request in enumerate(requests):
        time.sleep(max(0.0, started + (at[i] if at else i * gap) - time.monotonic()))
        futures.append(concurrent.futures.Future())
        # Daemon threads: a request a broken batcher never answers cannot hang the run.
        threading.Thread(target=submit, args=(request, futures[-1]), daemon=True).start()
    return futures


def _x(*rows, width=2):
    return {"x": np.array([[value] * width for value in rows], np.int32)}


def test_concurrent_requests_are_merged_into_full_batches(batcher):
    batcher_, record, batches = batcher(max_batch_size=3, batch_timeout_micros=30_000_000)
    requests = [_x(1), _x(2), _x(3), _x(4), _x(5), _x(6)]
    futures = _submit_all(batcher_, requests)
    # A full batch runs at once: no request waits for the 30 s timeout.
    results = [future.result(timeout=10) for future in futures]
    assert record.sizes() == [3, 3] and batches == [(3, 3), (3, 3)]
    for request, result in zip(requests, results):
        np.testing.assert_array_equal(result["y"], request["x"] * 10)
    # A request of exactly max_batch_size is taken; one row more is refused.
    full = _submit_all(batcher_, [_x(7, 8, 9)])[0].result(timeout=10)
    np.testing.assert_array_equal(full["y"], _x(7, 8, 9)["x"] * 10)
    with pytest.raises(StatusError, match="Task size 4 is larger than maximum input batch size 3"):
        batcher_.submit(_x(1, 2, 3, 4))
    assert record.sizes() == [3, 3, 3]


def test_a_batch_waits_batch_timeout_micros_after_its_first_request_and_no_longer(batcher):
    batcher_, record, batches = batcher(max_batch_size=8, batch_timeout_micros=1_000_000)
    # Requests at 0, 0.6 and 1.4 s: the first two share a batch, run 1 s after the first came
    # (the timeout counts from a batch's first request, not its latest); the third runs alone,
    # 1 s after it came.
    started = time.monotonic()
    futures = _submit_all(batcher_, [_x(1), _x(2), _x(3)], at=(0, 0.6, 1.4))
    results = [future.result(timeout=10) for future in futures]
    assert record.sizes() == [2, 1]
    first, second = (when - started for when in record.times)
    assert 0.95 <= first < 1.4 and 2.35 <= second < 4, (first, second)
    assert [result["y"].tolist() for result in results] == [[[10, 10]], [[20, 20]], [[30, 30]]]
    # Without a timeout (TF Serving's default 0) nothing waits for company.
    quick, record, _ = batcher(max_batch_size=4)
    started = time.monotonic()
    assert _submit_all(quick, [_x(4)])[0].result(timeout=5)["y"].tolist() == [[40, 40]]
    assert time.monotonic() - started < 1 and record.sizes() == [1]


def test_batches_pad_to_allowed_sizes_and_every_request_gets_its_own_rows(batcher):
    batcher_, record, batches = batcher(max_batch_size=4, batch_timeout_micros=5_000_000,
                                        allowed_batch_sizes=(2, 4),
                                        pad_variable_length_inputs=True)
    # In order: 1 + 2 rows (3 wide, then 5 wide) share a batch; the next 2 rows do not fit, so
    # they open the second batch, filled by the last request.
    requests = [{"x": np.array([[1, 8, 9]], np.int32)}, _x(2, 3, width=5), _x(4, 5, width=2),
                _x(6, 7, width=2)]
    futures = _submit_all(batcher_, requests, gap=0.1)
    results = [future.result(timeout=10) for future in futures]
    assert batches == [(3, 4), (4, 4)]
    first, second = record.calls
    # Narrow inputs padded with their own first element; the batch padded up to the allowed
    # size 4 with copies of its first example.
    np.testing.assert_array_equal(first["x"], [[1, 8, 9, 1, 1], [2, 2, 2, 2, 2],
                                               [3, 3, 3, 3, 3], [1, 8, 9, 1, 1]])
    np.testing.assert_array_equal(second["x"], [[4, 4], [5, 5], [6, 6], [7, 7]])
    assert [result["first"].ravel().tolist() for result in results] == \
        [[1], [2, 3], [4, 5], [6, 7]]
    assert [result["y"].shape for result in results] == [(1, 5), (2, 5), (2, 2), (2, 2)]
    np.testing.assert_array_equal(results[0]["y"], [[10, 80, 90, 10, 10]])
    np.testing.assert_array_equal(results[1]["y"], [[20] * 5, [30] * 5])
    # Each allowed size is used as it is; sizes between go to the next one up.
    options = BatchingOptions(max_batch_size=8, allowed_batch_sizes=(2, 4, 8))
    assert [options.padded_batch_size(n) for n in range(1, 9)] == [2, 2, 4, 4, 8, 8, 8, 8]
    assert BatchingOptions(max_batch_size=8).padded_batch_size(3) == 3
    # Without pad_variable_length_inputs, different shapes never share a batch: the 3 wide
    # request runs alone as soon as a 5 wide one comes; the two 5 wide ones share the next.
    strict, record, batches = batcher(max_batch_size=2, batch_timeout_micros=5_000_000)
    futures = _submit_all(strict, [_x(1, width=3), _x(2, width=5), _x(3, width=5)], gap=0.1)
    assert [future.result(timeout=4)["y"].tolist() for future in futures] == \
        [[[10] * 3], [[20] * 5], [[30] * 5]]
    assert [call["x"].shape for call in record.calls] == [(1, 3), (2, 5)]


def test_a_bad_request_fails_alone_and_its_batch_mates_get_their_results(batcher):
    batcher_, record, batches = batcher(max_batch_size=4, batch_timeout_micros=30_000_000,
                                        allowed_batch_sizes=(2, 4))
    requests = [_x(1), _x(-1), _x(2, 3)]
    futures = _submit_all(batcher_, requests)
    # The merged batch fails; each request then runs alone (padded to 2).
    assert futures[0].result(timeout=10)["y"].tolist() == [[10, 10]]
    with pytest.raises(ValueError, match="x must be >= 0"):
        futures[1].result(timeout=10)
    assert futures[2].result(timeout=10)["y"].tolist() == [[20, 20], [30, 30]]
    assert record.sizes() == [4, 2, 2, 2]
    assert sorted(batches[1:]) == [(1, 2), (1, 2), (2, 2)] and batches[0] == (4, 4)
    # A lone bad request gets its error too, once.
    with pytest.raises(ValueError, match="x must be >= 0"):
        _submit_all(batcher_, [_x(-5, -6, -7, -8)])[0].result(timeout=10)
    assert record.sizes() == [4, 2, 2, 2, 4]


def test_closing_a_batcher_answers_the_requests_it_took_at_once(batcher):
    # A version is unloaded (its batcher closed) while a batch waits to fill: that batch runs
    # now, not after its 30 s timeout, nor never; a request that reaches the batcher after it
    # closed still gets its answer (it runs alone) instead of waiting forever.
    batcher_, record, batches = batcher(max_batch_size=4, batch_timeout_micros=30_000_000)
    waiting = _submit_all(batcher_, [_x(1), _x(2)])
    time.sleep(0.3)
    started = time.monotonic()
    _close_within(batcher_, 10)
    # "At once": the scheduler waits in 50 ms steps, so close() is not stuck in a long wait.
    assert time.monotonic() - started < 0.5
    assert [future.result(timeout=2)["y"].tolist() for future in waiting] == \
        [[[10, 10]], [[20, 20]]]
    late = _submit_all(batcher_, [_x(3)])[0]
    assert late.result(timeout=2)["y"].tolist() == [[30, 30]]
    assert record.sizes() == [2, 1] and batches == [(2, 2), (1, 1)]


def test_unset_batching_parameters_take_tf_servings_defaults(tmp_path):
    """bundle_factory_util.cc copies only the fields that are set; the rest are
    SharedBatchScheduler's: batch size 1000, timeout 0, 10 enqueued batches, one thread per
    schedulable CPU (port::MaxParallelism)."""
    empty = tmp_path / "batching.txt"
    empty.write_text("")
    for options in (BatchingOptions(), BatchingOptions.from_file(empty)):
        assert (options.max_batch_size, options.batch_timeout_micros,
                options.max_enqueued_batches, options.num_batch_threads) == \
            (1000, 0, 10, len(os.sched_getaffinity(0)))
        assert options.allowed_batch_sizes == () and not options.pad_variable_length_inputs
    # The CPUs this process may run on, not the machine's: a server pinned to one CPU (taskset,
    # a container's cpuset) gets one batch thread.
    pinned = subprocess.run(
        [sys.executable, "-c", "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
                               "from soundstorm.runtime.serving.batching import BatchingOptions\n"
                               "print(BatchingOptions().num_batch_threads)"],
        capture_output=True, text=True, timeout=120)
    assert pinned.stdout == "1\n", pinned.stderr


def test_without_an_affinity_mask_the_threads_are_the_cpus_or_tfs_guess_of_4(monkeypatch):
    """port::NumSchedulableCPUs elsewhere (tsl/platform/default/port.cc): macOS has no
    affinity mask, so the machine's CPU count; a platform that tells nothing, kDefaultCores 4."""
    from soundstorm.runtime.serving.batching import schedulable_cpus
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert schedulable_cpus() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert schedulable_cpus() == 4


@pytest.mark.parametrize("sizes", [(2, 1, 4), (1, 1, 4), (1, 2), (2, 8)])
def test_allowed_batch_sizes_must_increase_and_end_at_max_batch_size(sizes):
    """batching_session.cc's rules: strictly increasing, the last one max_batch_size."""
    with pytest.raises(StatusError, match=r"allowed_batch_sizes must increase and end at "
                                          r"max_batch_size \(4\), got"):
        BatchingOptions(max_batch_size=4, allowed_batch_sizes=sizes)
    BatchingOptions(max_batch_size=4, allowed_batch_sizes=(1, 2, 4))


def test_a_batch_waiting_for_a_thread_is_still_enqueued_as_in_tf_serving():
    """session_bundle_config.proto: a batch leaves the queue when a thread takes it. With the
    one thread busy, max_enqueued_batches x max_batch_size examples wait; one more is
    UNAVAILABLE in SharedBatchScheduler's words; once the thread is free, all are answered."""
    from soundstorm.runtime.serving.batching import Batcher
    gate, running, record = threading.Event(), threading.Event(), _Recorder()

    def held(inputs):
        running.set()
        gate.wait(30)
        return record(inputs)
    batcher_ = Batcher(held, BatchingOptions(max_batch_size=2, max_enqueued_batches=3,
                                             num_batch_threads=1))
    try:
        first = _submit_all(batcher_, [_x(1, 2)])  # a full batch: on the thread, held there
        assert running.wait(10)
        waiting = _submit_all(batcher_, [_x(value) for value in range(3, 9)])  # 3 x 2 examples
        deadline = time.monotonic() + 10
        while batcher_.enqueued_examples < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert batcher_.enqueued_examples == 6
        with pytest.raises(StatusError) as full:
            batcher_.submit(_x(9))
        assert full.value.code == grpc.StatusCode.UNAVAILABLE
        assert full.value.message == ("The batch scheduling queue to which this task was "
                                      "submitted is full")
        gate.set()
        answers = [future.result(timeout=10)["y"][:, 0].tolist() for future in first + waiting]
        assert answers == [[10, 20], [30], [40], [50], [60], [70], [80]]
        assert batcher_.enqueued_examples == 0
        again = _submit_all(batcher_, [_x(9)])[0].result(timeout=10)  # room again
        assert again["y"][:, 0].tolist() == [90]
    finally:
        gate.set()
        _close_within(batcher_, 10)


def test_a_waiting_batcher_sleeps_instead_of_spinning(batcher):
    """Idle, and while a batch waits out its timeout, the scheduler blocks on the queue: the
    process uses a small part of one core (a polling loop would use all of it)."""
    batcher_, record, _ = batcher(max_batch_size=4, batch_timeout_micros=600_000)
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(0.6)                                       # idle
    answer = _submit_all(batcher_, [_x(1)])[0].result(timeout=10)  # waits 0.6 s for company
    assert answer["y"].tolist() == [[10, 10]]
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    assert wall >= 1.1 and cpu < 0.3 * wall, (cpu, wall)


def test_without_padding_inputs_of_another_shape_or_name_run_in_their_own_batch(batcher):
    """pad_variable_length_inputs off: a request whose inputs have other non-batch dimensions,
    or other names, never shares a batch (its inputs would be padded or dropped)."""
    batcher_, record, _ = batcher(max_batch_size=4, batch_timeout_micros=300_000)
    wide, narrow = _x(1, width=5), _x(2, width=3)
    named = {"x": np.array([[3, 3]], np.int32), "z": np.array([[7]], np.int32)}
    futures = _submit_all(batcher_, [wide, narrow, named], gap=0.05)
    results = [future.result(timeout=10) for future in futures]
    assert [result["y"].tolist() for result in results] == [[[10] * 5], [[20] * 3], [[30, 30]]]
    assert sorted((sorted(call), call["x"].shape) for call in record.calls) == \
        [(["x"], (1, 3)), (["x"], (1, 5)), (["x", "z"], (1, 2))]


def test_a_request_whose_inputs_disagree_on_the_batch_is_refused(batcher):
    """Every input of a batched request must be batch-first with one batch size (TF Serving's
    batching session splits and merges along dimension 0): BatchingSession::ComputeInputSize's
    three errors (batching_session.cc), INVALID_ARGUMENT, before anything is queued."""
    batcher_, record, _ = batcher(max_batch_size=4)
    for inputs, message in (
            ({}, "Batching session Run() must have at least one input tensor"),
            ({"x": np.zeros((1, 2), np.int32), "z": np.int32(3)},
             "Batching session Run() input tensors must have at least one dimension"),
            ({"x": np.zeros((2, 2), np.int32), "z": np.zeros((1, 2), np.int32)},
             "Batching session Run() input tensors must have equal 0th-dimension size")):
        with pytest.raises(StatusError) as refused:
            batcher_.submit(inputs)
        assert (refused.value.code, refused.value.message) == (
            grpc.StatusCode.INVALID_ARGUMENT, message)
    assert record.calls == [] and batcher_.enqueued_examples == 0


def test_batching_options_are_immutable():
    """One BatchingOptions is read by every batcher of a model without a lock: changing it
    after the fact would change batches in flight."""
    import dataclasses
    options = BatchingOptions(max_batch_size=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.max_batch_size = 8


def test_inputs_of_another_dtype_never_share_a_batch(batcher):
    """Merging int32 with int64 rows would cast one request's inputs: each runs as it came."""
    batcher_, record, _ = batcher(max_batch_size=4, batch_timeout_micros=300_000,
                                  pad_variable_length_inputs=True)
    for first, second in ((np.int64, np.int32), (np.int32, np.int64)):
        record.calls.clear()
        futures = _submit_all(batcher_, [{"x": np.array([[1, 1]], first)},
                                         {"x": np.array([[2, 2]], second)}], gap=0.05)
        assert [future.result(timeout=10)["y"].dtype for future in futures] == [first, second]
        assert sorted(str(call["x"].dtype) for call in record.calls) == ["int32", "int64"]


def test_a_batch_padded_by_several_rows_repeats_its_first_example(batcher):
    """One row padded up to an allowed size of 4: three copies of the first example follow it,
    and the request gets its own row back."""
    batcher_, record, batches = batcher(max_batch_size=4, allowed_batch_sizes=(4,))
    answer = _submit_all(batcher_, [_x(7)])[0].result(timeout=10)
    assert answer["y"].tolist() == [[70, 70]] and batches == [(1, 4)]
    assert record.calls[0]["x"].tolist() == [[7, 7]] * 4


def test_requests_with_other_input_names_never_share_a_batch(batcher):
    """Same shapes, other names: merged, the second's extra input would be dropped."""
    batcher_, record, _ = batcher(max_batch_size=4, batch_timeout_micros=300_000)
    plain, extra = _x(1), {"x": np.array([[2, 2]], np.int32), "z": np.array([[9, 9]], np.int32)}
    for order in ((plain, extra), (extra, plain)):
        record.calls.clear()
        futures = _submit_all(batcher_, list(order), gap=0.05)
        assert [future.result(timeout=10)["y"][0, 0] for future in futures] == \
            [order[0]["x"][0, 0] * 10, order[1]["x"][0, 0] * 10]
        assert sorted(sorted(call) for call in record.calls) == [["x"], ["x", "z"]]


def test_close_returns_once_the_batches_it_ran_have_finished():
    """close() is where an unloaded version's last requests end: it returns after them."""
    from soundstorm.runtime.serving.batching import Batcher
    finished = []

    def slow(inputs):
        time.sleep(0.5)
        finished.append(len(inputs["x"]))
        return {"y": inputs["x"] * 10}
    batcher_ = Batcher(slow, BatchingOptions(max_batch_size=2, num_batch_threads=1))
    waiting = _submit_all(batcher_, [_x(1, 2)])
    time.sleep(0.1)  # the batch is on its thread
    _close_within(batcher_, 10)
    assert finished == [2]
    assert waiting[0].result(timeout=1)["y"].tolist() == [[10, 10], [20, 20]]


def test_a_batcher_never_keeps_its_process_alive(batcher):
    """A server that exits without closing a batcher still exits: its threads are daemons."""
    batcher_, _, _ = batcher()  # in this process too, so that coverage maps the test to it
    assert batcher_._scheduler.daemon
    code = ("from soundstorm.runtime.serving.batching import Batcher, BatchingOptions\n"
            "Batcher(lambda inputs: inputs, BatchingOptions())\nprint('exiting')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "exiting\n"


# A request's cost is bounded before its tensors are built (runtime/serving/tensors.py)

def _declared(shape, dtype=tf.int32, **fields):
    proto = tf.make_tensor_proto(np.zeros([0], dtype.as_numpy_dtype))
    proto.ClearField("tensor_shape")
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    for name, value in fields.items():
        if isinstance(value, bytes):
            setattr(proto, name, value)
        else:
            getattr(proto, name).extend(value)
    return proto


@pytest.mark.parametrize("proto,code,message", [
    # A few bytes that declare 400 MB (TensorFlow would repeat the one value to fill it).
    (_declared([1, 100_000_000], int_val=[7]), grpc.StatusCode.RESOURCE_EXHAUSTED,
     "input semantic_tokens declares shape [1, 100000000] (400000000 bytes); one request may "
     "carry at most 1048576 (--max_message_bytes)"),
    (_declared([1, 2**40], int_val=[7]), grpc.StatusCode.RESOURCE_EXHAUSTED,
     "declares shape [1, 1099511627776] (4398046511104 bytes)"),
    (_declared([2**31, 2**31, 2**31], int_val=[7]), grpc.StatusCode.RESOURCE_EXHAUSTED,
     "declares shape [2147483648, 2147483648, 2147483648]"),
    (_declared([1, 10], tensor_content=b"\0" * 39), grpc.StatusCode.INVALID_ARGUMENT,
     "tensor parsing error: semantic_tokens"),
    (_declared([1, 10], tensor_content=b"\0" * 44), grpc.StatusCode.INVALID_ARGUMENT,
     "tensor parsing error: semantic_tokens"),
    (_declared([1, -5], int_val=[7]), grpc.StatusCode.INVALID_ARGUMENT,
     "tensor parsing error: semantic_tokens"),
])
def test_declared_shapes_are_bounded_before_anything_is_built(proto, code, message, monkeypatch):
    from soundstorm.runtime.serving.tensors import parse_tensor
    built = []
    monkeypatch.setattr(tf, "make_ndarray", lambda proto: built.append(proto))
    with pytest.raises(StatusError) as caught:
        parse_tensor(proto, "semantic_tokens", max_bytes=1 << 20)
    assert (caught.value.code, built) == (code, [])
    assert message in caught.value.message


def test_a_tensor_within_bounds_parses_as_tensorflow_parses_it():
    from soundstorm.runtime.serving.tensors import parse_tensor
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    for proto in (tf.make_tensor_proto(array), _declared([3, 4], int_val=array.ravel().tolist())):
        np.testing.assert_array_equal(parse_tensor(proto, "x", 48), array)
    # TensorFlow's fill: typed values shorter than the shape repeat the last one.
    np.testing.assert_array_equal(parse_tensor(_declared([2, 3], int_val=[1, 2]), "x", 24),
                                  [[1, 2, 2], [2, 2, 2]])
    with pytest.raises(StatusError, match="at most 47"):
        parse_tensor(tf.make_tensor_proto(array), "x", 47)


def _raw_http(port, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """One request written byte for byte (what urllib cannot send); (status, body)."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head + body)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    return status, reply.split(b"\r\n\r\n", 1)[1]


def test_rest_reads_any_body_framing_and_refuses_what_only_a_web_page_sends(
        served_version, tmp_path, start_server):
    server, _ = start_server(single_model_config("soundstorm", base_with(served_version, tmp_path)),
                             rest_api_port=-1)
    port, path = server.rest_port, b"/v1/models/soundstorm/metadata"
    metadata = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    assert _raw_http(port, metadata + b"\r\n")[0] == 200
    # A chunked body is read (not taken as empty): the error is about what is in it.
    body = b'{"instances": [1.5]}'
    chunked = (b"POST /v1/models/soundstorm:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    status, reply = _raw_http(port, chunked)
    assert status == 400 and b"instances is a plain list" in reply, reply
    # A Content-Length that is not a number is the client's mistake, never a 500.
    status, _ = _raw_http(port, b"POST /v1/models/soundstorm:predict HTTP/1.1\r\nHost: 127.0.0.1"
                          b"\r\nContent-Length: x\r\nConnection: close\r\n\r\n")
    assert 400 <= status < 500
    # A browser's cross-origin POST (text/plain needs no preflight) and a rebound Host.
    status, reply = _raw_http(port, metadata + b"Origin: https://evil.example\r\n\r\n")
    assert status == 403 and b"cross-origin request from https://evil.example refused" in reply
    status, reply = _raw_http(port, metadata.replace(b"Host: 127.0.0.1",
                                                     b"Host: attacker.example") + b"\r\n")
    assert status == 403 and b"listens on loopback only" in reply


@pytest.mark.parametrize("name,value", [("temperature", np.nan), ("temperature", np.inf),
                                        ("choice_temperature", np.nan)])
def test_a_savedmodel_check_reaches_the_client_as_one_line(served_version, tmp_path, start_server,
                                                           name, value):
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)))
    arrays = request_arrays(4)
    arrays[name] = np.full(1, value, np.float32)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(predict_request(arrays))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details()
    assert "\n" not in details and "Graph execution error" not in details, details
    assert f"{name} must be finite" in details, details  # the check's own words


def test_tensorflow_errors_lose_their_preamble_not_their_words():
    from soundstorm.runtime.savedmodel.tf_status import message_of
    error = tf.errors.InvalidArgumentError(None, None, (
        "Graph execution error:\n\nDetected at node CheckNumerics defined at (most recent call "
        "last):\n<stack traces unavailable>\nx must be finite : Tensor had NaN values\n\t "
        "[[{{node CheckNumerics}}]] [Op:__inference_f_1]"))
    assert message_of(error) == "x must be finite : Tensor had NaN values"
    assert message_of(tf.errors.NotFoundError(None, None, "one line")) == "one line"


def test_a_bad_tls_config_is_one_line_naming_the_file_before_anything_binds(tmp_path, capsys):
    """The shipped template as is (placeholders), a certificate without its key, and a key
    that does not match: `soundstorm serve` exits 2 with one line, no port bound."""
    from soundstorm.apps.cli.main import main
    template = Path(__file__).resolve().parent.parent / "serving_configs" / "ssl.config"
    key, cert, other = tmp_path / "key.pem", tmp_path / "cert.pem", tmp_path / "other.pem"
    for out_key, out_cert in ((key, cert), (other, tmp_path / "other-cert.pem")):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        str(out_key), "-out", str(out_cert), "-days", "1", "-subj", "/CN=x"],
                       check=True, capture_output=True)
    mismatched = tmp_path / "mismatched.config"
    mismatched.write_text(f"server_key: {json.dumps(other.read_text())}\n"
                          f"server_cert: {json.dumps(cert.read_text())}\n")
    no_key = tmp_path / "no-key.config"
    no_key.write_text(f"server_cert: {json.dumps(cert.read_text())}\n")
    base = tmp_path / "models"
    base.mkdir()
    port = free_port()  # which the server must not get to bind
    for config in (template, mismatched, no_key):
        code = main(["serve", f"--model_base_path={base}", f"--port={port}",
                     f"--ssl_config_file={config}"])
        err = capsys.readouterr().err.strip()
        assert code == 3 and len(err.splitlines()) == 1, err
        assert (f"--ssl_config_file {config}: server_key, server_cert and custom_ca must be "
                "PEM") in err


def test_truncated_variables_are_named_as_such_with_the_version(served_version, tmp_path):
    from soundstorm.runtime.savedmodel.servable import Servable
    broken = tmp_path / "soundstorm" / "7"
    shutil.copytree(served_version, broken)
    data = next((broken / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(StatusError) as caught:
        Servable("soundstorm", 7, broken)
    assert caught.value.message.startswith(f"{broken}: variables/ is truncated or corrupt (")
    assert "\n" not in caught.value.message
    assert caught.value.code in (grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.DATA_LOSS)


def test_rpcs_past_twice_the_threads_are_refused_at_once_not_queued(served_version, tmp_path,
                                                                    start_server, monkeypatch):
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)),
                                   grpc_threads=1)
    servable = server.manager.resolve("soundstorm")
    run = servable.run
    monkeypatch.setattr(servable, "run", lambda *args: (time.sleep(2.0), run(*args))[1])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    futures = [stub.Predict.future(predict_request(request_arrays(seed)), timeout=60)
               for seed in range(4)]
    codes = []
    for future in futures:
        try:
            future.result()
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            codes.append(error.code())
    # One runs, one waits for the thread: two are refused (limit 2 x 1 thread).
    assert codes.count(grpc.StatusCode.OK) == 2, codes
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 2, codes


def test_a_batch_over_the_limit_is_refused_over_grpc_and_rest(served_version, tmp_path,
                                                              start_server):
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)),
                                   rest_api_port=-1, max_request_batch_size=2)
    arrays = {key: np.concatenate([value] * 3) for key, value in request_arrays(5).items()}
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(predict_request(arrays))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "has a batch of 3; one request may ask for at most 2 (--max_request_batch_size)" \
        in caught.value.details()
    status, body = _http(f"http://127.0.0.1:{server.rest_port}/v1/models/soundstorm:predict",
                         {"inputs": {k: v.tolist() for k, v in arrays.items()}})
    assert status == 429 and b"has a batch of 3" in body  # RESOURCE_EXHAUSTED over REST
