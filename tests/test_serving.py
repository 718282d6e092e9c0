"""The model server against TF Serving's own stubs: tokens, versions, errors, batching, REST, TLS."""

import json
import os
import shutil
import subprocess
import sys
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
                                     model_management_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2

from runtime.serving.batching import BatchingOptions
from runtime.serving.server import ModelServer, ServerOptions, single_model_config

AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.State.END


def request_arrays(seed=0, frames=32, prompt=8, length=None):
    rng = np.random.default_rng(seed)
    return {"semantic_tokens": rng.integers(0, 12, (1, frames // 2)).astype(np.int32),
            "prompt_tokens": rng.integers(0, 16, (1, prompt, 3)).astype(np.int32),
            "prompt_lengths": np.array([prompt // 2], np.int32),
            "lengths": np.array([length or frames], np.int32),
            "seeds": np.array([seed], np.int32), "temperature": np.ones(1, np.float32),
            "choice_temperature": np.full(1, 4.5, np.float32)}


def predict_request(arrays, name="soundstorm", version=None, label="", signature=""):
    """A PredictRequest built with nothing but the tensorflow_serving.apis classes."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    request.model_spec.signature_name = signature
    for key, value in arrays.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


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
    assert set(signatures.signature_def) == {"serving_default", "logits", "metadata"}
    assert "prompt_tokens" in signatures.signature_def["serving_default"].inputs
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "soundstorm"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == \
            health_pb2.HealthCheckResponse.SERVING


def test_errors_carry_tf_serving_codes_and_the_server_survives(served_version, tmp_path,
                                                               start_server, direct):
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)),
                                   max_message_bytes=64 * 1024)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    good = request_arrays(1)

    def code_of(request, match=""):
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, timeout=60)
        assert match in caught.value.details()
        return caught.value.code()

    assert code_of(predict_request(good, name="nope"), "'nope' is not served") == \
        grpc.StatusCode.NOT_FOUND
    assert code_of(predict_request(good, version=7), "Specific(soundstorm, 7)") == \
        grpc.StatusCode.NOT_FOUND
    assert code_of(predict_request(good, label="stable")) == grpc.StatusCode.NOT_FOUND
    bad = dict(good, semantic_tokens=good["semantic_tokens"] + 100)
    assert code_of(predict_request(bad), "semantic_tokens must be <= 12") == \
        grpc.StatusCode.INVALID_ARGUMENT
    wrong_dtype = dict(good, seeds=good["seeds"].astype(np.int64))
    assert code_of(predict_request(wrong_dtype), "'seeds' to be int32 but int64") == \
        grpc.StatusCode.INVALID_ARGUMENT
    missing = {k: v for k, v in good.items() if k != "seeds"}
    assert code_of(predict_request(missing), "missing ['seeds']") == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(predict_request(good, signature="nope"), '"nope" not found') == \
        grpc.StatusCode.INVALID_ARGUMENT
    huge = dict(good, semantic_tokens=np.zeros((1, 40_000), np.int32))
    assert code_of(predict_request(huge)) == grpc.StatusCode.RESOURCE_EXHAUSTED
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
            except grpc.RpcError as error:
                failures.append(error)
    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        _wait(lambda: len(served) >= 5)
        _write_version(served_version, base, 2)
        _wait(lambda: served and served[-1] == 2)
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
        _wait(lambda: len(served) >= count + 5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures, failures[:1]
    assert set(served) == {1, 2} and served[-1] == 2
    status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
        model_spec={"name": "soundstorm", "version": {"value": 3}})).model_version_status[0]
    assert status.state == END and "saved_model.pb" in status.status.error_message.lower() or \
        status.status.error_message
    assert status.status.error_code != 0


def test_health_and_status_follow_what_is_loaded(served_version, tmp_path, start_server):
    base = tmp_path / "soundstorm"
    base.mkdir()
    server, channel = start_server(single_model_config("soundstorm", base))
    health = health_pb2_grpc.HealthStub(channel)

    def state(service):
        return health.Check(health_pb2.HealthCheckRequest(service=service)).status
    assert state("soundstorm") == state("") == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.RpcError) as caught:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            predict_request(request_arrays(1)))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    _write_version(served_version, base, 1)
    _wait(lambda: state("soundstorm") == health_pb2.HealthCheckResponse.SERVING)
    assert state("") == health_pb2.HealthCheckResponse.SERVING
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
    assert status == 504 and "REST timeout" in json.loads(body)["error"]


def test_labels_policies_and_config_reload(served_version, tmp_path, start_server):
    base = base_with(served_version, tmp_path, versions=(1, 2))
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name="soundstorm", base_path=str(base),
                                                model_platform="tensorflow")
    model.model_version_policy.all.SetInParent()
    model.version_labels["stable"] = 1
    model.version_labels["canary"] = 2
    server, channel = start_server(config)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    arrays = request_arrays(3)
    for label, version in (("stable", 1), ("canary", 2)):
        response = stub.Predict(predict_request(arrays, label=label))
        assert response.model_spec.version.value == version
    assert stub.Predict(predict_request(arrays)).model_spec.version.value == 2  # latest
    # Reload: serve a second name and only version 1 of the first.
    model.model_version_policy.specific.versions.append(1)
    config.model_config_list.config.add(name="copy", base_path=str(base),
                                        model_platform="tensorflow")
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    reply = models.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(
        config=config))
    assert reply.status.error_code == 0
    assert stub.Predict(predict_request(arrays, name="copy")).model_spec.version.value == 2
    assert stub.Predict(predict_request(arrays)).model_spec.version.value == 1
    bad = model_server_config_pb2.ModelServerConfig()
    bad.model_config_list.config.add(name="x", base_path=str(base), model_platform="pytorch")
    with pytest.raises(grpc.RpcError) as caught:
        models.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.Predict(predict_request(arrays)).model_spec.version.value == 1  # untouched


def test_batching_merges_padded_requests_without_changing_their_tokens(
        served_version, tmp_path, start_server, direct):
    options = BatchingOptions(max_batch_size=4, batch_timeout_micros=200_000,
                              allowed_batch_sizes=(2, 4), pad_variable_length_inputs=True)
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)),
                                   batching=options)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    # Different lengths and prompt sizes: the batcher pads them to one shape.
    requests = [request_arrays(seed, frames=frames, prompt=prompt)
                for seed, frames, prompt in ((4, 32, 8), (5, 20, 6), (6, 12, 4))]
    results = [None] * 3

    def call(i):
        results[i] = tokens_of(stub.Predict(predict_request(requests[i]), timeout=60))
    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for arrays, tokens in zip(requests, results):
        frames = arrays["lengths"][0]
        np.testing.assert_array_equal(tokens[:, :frames], direct_tokens(direct, arrays))
        assert (tokens[:, frames:] == 0).all()
    exposition = server.metrics.exposition().decode()
    merged = [line for line in exposition.splitlines()
              if line.startswith("soundstorm_serving_batch_examples_count")]
    assert merged and float(merged[0].split()[-1]) < 3  # fewer batches than requests
    # A bad request in a batch fails alone.
    bad = dict(request_arrays(7), seeds=np.array([-1], np.int32))
    outcome = {}

    def call_bad():
        try:
            stub.Predict(predict_request(bad), timeout=60)
        except grpc.RpcError as error:
            outcome["code"] = error.code()
    good_thread, bad_thread = threading.Thread(target=call, args=(0,)), \
        threading.Thread(target=call_bad)
    good_thread.start(), bad_thread.start()
    good_thread.join(), bad_thread.join()
    assert outcome["code"] == grpc.StatusCode.INVALID_ARGUMENT
    np.testing.assert_array_equal(results[0], direct_tokens(direct, requests[0]))


def _http(url, body=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_rest_api_matches_grpc_and_exposes_metrics(served_version, tmp_path, start_server):
    server, channel = start_server(single_model_config("soundstorm",
                                                       base_with(served_version, tmp_path)),
                                   rest_api_port=-1, metrics_path="/monitoring/prometheus/metrics")
    root = f"http://127.0.0.1:{server.rest_port}/v1/models/soundstorm"
    arrays = request_arrays(8)
    expected = tokens_of(prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        predict_request(arrays)))
    status, body = _http(root + ":predict",
                         {"instances": [{k: v[0].tolist() for k, v in arrays.items()}]})
    assert status == 200
    np.testing.assert_array_equal(json.loads(body)["predictions"][0]["acoustic_tokens"],
                                  expected[0])
    status, body = _http(root + "/versions/1:predict",
                         {"inputs": {k: v.tolist() for k, v in arrays.items()}})
    np.testing.assert_array_equal(json.loads(body)["outputs"]["acoustic_tokens"], expected)
    status, body = _http(root + ":predict", {"signature_name": "metadata",
                                             "inputs": {"probe": [0]}})
    assert json.loads(json.loads(body)["outputs"]["contract_json"][0])["max_frames"] == 32
    assert json.loads(_http(root)[1])["model_version_status"][0]["state"] == "AVAILABLE"
    metadata = json.loads(_http(root + "/metadata")[1])
    assert "serving_default" in metadata["metadata"]["signature_def"]["signatureDef"]
    assert _http(root.replace("soundstorm", "nope"))[0] == 404
    bad = {"inputs": dict({k: v.tolist() for k, v in arrays.items()}, seeds=[-1])}
    status, body = _http(root + ":predict", bad)
    assert status == 400 and "seeds must be >= 0" in json.loads(body)["error"]
    status, metrics = _http(f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics")
    assert status == 200
    assert b'soundstorm_serving_requests_total{api="rest",code="OK",model="soundstorm"' in metrics
    assert b'code="INVALID_ARGUMENT"' in metrics


def test_tls(served_version, tmp_path, start_server):
    from protos import tf_serving_config_pb2
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
    with pytest.raises(grpc.RpcError):
        plain.Predict(predict_request(request_arrays(9)), timeout=5)


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
        [sys.executable, "-m", "soundstorm", "serve", "--model_base_path", str(base),
         "--port", "0", "--host", "127.0.0.1", "--xla_cpu_compilation_enabled=true"],
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
    from soundstorm.cli import main
    assert main(["serve", "--model_base_path", str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err
    config = tmp_path / "models.config"
    config.write_text("model_config_list { config { name: 'x' base_path: '/m' "
                      "model_platform: 'pytorch' } }")
    assert main(["serve", "--model_config_file", str(config)]) == 2
    assert "platform 'pytorch'" in capsys.readouterr().err


def test_the_documented_dev_server_command_parses_and_reads_the_configs(monkeypatch):
    import shlex
    from runtime.serving.cli import options_from_flags
    from runtime.serving.server import read_model_config
    from soundstorm.cli import build_parser
    root = Path(__file__).resolve().parent.parent
    readme = (root / "serving_configs" / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith("soundstorm serve"))
    monkeypatch.chdir(root)  # the documented command runs from the repository root
    args = build_parser().parse_args(shlex.split(line)[1:])
    options = options_from_flags(args)
    assert options.batching.max_batch_size == 16 and options.batching.pad_variable_length_inputs
    assert options.metrics_path == "/monitoring/prometheus/metrics"
    assert (args.port, args.rest_api_port) == (8500, 8501)
    config = read_model_config(args.model_config_file)
    assert config.model_config_list.config[0].name == "soundstorm"
