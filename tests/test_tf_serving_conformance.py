"""Our server against tensorflow_model_server's behaviour, case by case, from TF Serving's source.

Every case states the value TF Serving gives and where in tensorflow/serving's
source it comes from (paths under tensorflow_serving/, read at commit 9d981c5c).
The server is driven only with tensorflow-serving-api's stubs and plain HTTP
(urllib), as a TF Serving user would drive it. Each collected test case is one
behaviour: `pytest --collect-only -q tests/test_tf_serving_conformance.py` counts them.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)

from soundstorm.runtime.serving.server import ModelServer, ServerOptions, single_model_config
from tests.conftest import predict_request

INT32, FLOAT = "int32", "float"


def _arrays(seed=1):
    rng = np.random.default_rng(seed)
    return {"semantic_tokens": rng.integers(0, 12, (1, 16)).astype(np.int32),
            "prompt_tokens": rng.integers(0, 16, (1, 8, 3)).astype(np.int32),
            "prompt_lengths": np.array([4], np.int32), "lengths": np.array([32], np.int32),
            "seeds": np.array([seed], np.int32), "temperature": np.ones(1, np.float32),
            "choice_temperature": np.full(1, 4.5, np.float32)}


@pytest.fixture(scope="module")
def served(served_version, tmp_path_factory):
    """One server (gRPC + REST, metrics on) over version 1 of the tiny export."""
    base = tmp_path_factory.mktemp("conformance") / "soundstorm"
    shutil.copytree(served_version, base / "1")
    server = ModelServer(single_model_config("soundstorm", base), ServerOptions(
        host="127.0.0.1", port=0, rest_api_port=-1, poll_seconds=0,
        metrics_path="/monitoring/prometheus/metrics"), log=lambda message: None).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield server, channel, f"http://127.0.0.1:{server.rest_port}"
    channel.close()
    server.stop(1)


def http(url, body=None, method=None, headers=None):
    """(status, headers, body) of one plain HTTP request."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def rpc_error(call, request):
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=120)
    return caught.value.code(), caught.value.details()


# --- gRPC: PredictionService.Predict --------------------------------------------------------

def _predict_request(arrays=None, **spec):
    return predict_request(arrays if arrays is not None else _arrays(), **spec)


PREDICT_ERRORS = [
    # (case, request, code, details) with TF Serving's source in the comment.
    # predict_impl.cc Predict: no model_spec.
    ("missing ModelSpec", predict_pb2.PredictRequest(), grpc.StatusCode.INVALID_ARGUMENT,
     "Missing ModelSpec"),
    # model_servers/server_core.cc ServableRequestFromModelSpec.
    ("empty model name", _predict_request(name=""), grpc.StatusCode.INVALID_ARGUMENT,
     "ModelSpec has no name specified."),
    # core/basic_manager.cc GetUntypedServableHandle, core/manager.h ServableRequest::DebugString.
    ("unknown model", _predict_request(name="nope"), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Latest(nope)"),
    ("unknown version", _predict_request(version=7), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Specific(soundstorm, 7)"),
    # model_servers/server_core.cc GetModelVersionForLabel.
    ("unknown label", _predict_request(label="stable"), grpc.StatusCode.INVALID_ARGUMENT,
     "Unrecognized servable version label: stable"),
    # servables/tensorflow/predict_util.cc internal::RunPredict.
    ("unknown signature", _predict_request(signature="nope"),
     grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.'),
    # predict_util.cc PreProcessPrediction (output_filter, before the run).
    ("unknown output_filter alias", _predict_request(output_filter=["nope"]),
     grpc.StatusCode.INVALID_ARGUMENT, "output tensor alias not found in signature: nope "
     "Outputs expected to be in the set {acoustic_tokens,lengths}."),
    ("duplicate output_filter alias",
     _predict_request(output_filter=["lengths", "lengths"]), grpc.StatusCode.INVALID_ARGUMENT,
     "duplicate output tensor alias: lengths"),
    # predict_util.cc VerifyRequestInputsSize.
    ("missing input", _predict_request(arrays={k: v for k, v in _arrays().items()
                                               if k != "seeds"}),
     grpc.StatusCode.INVALID_ARGUMENT, "input size does not match signature: 6!=7 "
     "len({choice_temperature,lengths,prompt_lengths,prompt_tokens,semantic_tokens,"
     "temperature}) != len({choice_temperature,lengths,prompt_lengths,prompt_tokens,seeds,"
     "semantic_tokens,temperature}). Sent extra: {}. Missing but required: {seeds}."),
    ("extra input", _predict_request(arrays=dict(_arrays(), extra=np.zeros(1, np.int32))),
     grpc.StatusCode.INVALID_ARGUMENT, "Sent extra: {extra}. Missing but required: {}."),
]


@pytest.mark.parametrize("case, request_, code, details", PREDICT_ERRORS,
                         ids=[case[0] for case in PREDICT_ERRORS])
def test_predict_errors_carry_tf_servings_code_and_words(served, case, request_, code, details):
    _, channel, _ = served
    got_code, got_details = rpc_error(
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict, request_)
    assert got_code == code
    assert details in got_details


def test_predict_outputs_use_typed_fields_and_the_filter_fetches_only_what_it_names(served):
    """Tensor::AsProtoField fills `int_val` (predict_util.cc PostProcessPredictionResult,
    kAsProtoField unless --enable_serialization_as_tensor_content); an output_filter
    returns exactly the outputs it names; the reply names the signature and version run
    (util.cc MakeModelSpec)."""
    _, channel, _ = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    full = stub.Predict(_predict_request(), timeout=120)
    tokens = full.outputs["acoustic_tokens"]
    assert tokens.tensor_content == b"" and len(tokens.int_val) == 32 * 3
    assert [d.size for d in tokens.tensor_shape.dim] == [1, 32, 3]
    assert (full.model_spec.name, full.model_spec.version.value,
            full.model_spec.signature_name) == ("soundstorm", 1, "serving_default")
    filtered = stub.Predict(_predict_request(output_filter=["lengths"]), timeout=120)
    assert list(filtered.outputs) == ["lengths"] and list(filtered.outputs["lengths"].int_val) == [32]


def test_tensor_content_only_with_its_flag(served_version, tmp_path):
    """--enable_serialization_as_tensor_content writes `tensor_content` (kAsProtoContent)."""
    shutil.copytree(served_version, tmp_path / "m" / "1")
    server = ModelServer(single_model_config("soundstorm", tmp_path / "m"), ServerOptions(
        host="127.0.0.1", port=0, poll_seconds=0, serialization_as_tensor_content=True),
        log=lambda message: None).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                _predict_request(output_filter=["lengths"]), timeout=120)
        assert reply.outputs["lengths"].tensor_content == np.int32(32).tobytes()
        assert not reply.outputs["lengths"].int_val
    finally:
        server.stop(1)


def test_a_grpc_deadline_bounds_the_run(served, monkeypatch):
    """The client's deadline becomes RunOptions.timeout_in_ms of the Session.run
    (model_servers/prediction_service_impl.cc Predict), so an over-long run ends in
    DEADLINE_EXCEEDED on the server too, not only on the client."""
    server, channel, _ = served
    seen = []
    servable = server.manager.resolve("soundstorm")
    run = servable.run
    monkeypatch.setattr(servable, "run", lambda *args: (seen.append(args[3]), run(*args))[1])
    prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        _predict_request(), timeout=50)
    # Milliseconds left of the 50 s deadline (gRPC rounds the timeout it sends upwards).
    assert 40_000 < seen[0] <= 51_000
    prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(_predict_request())
    assert seen[1] is None  # no deadline: no timeout


CLASSIFY_REGRESS = [
    # servables/tensorflow/classification_service.cc / regression_service.cc: no model_spec.
    ("classify without ModelSpec", "Classify", classification_pb2.ClassificationRequest(),
     "Missing ModelSpec"),
    # classifier.cc GetClassificationSignature: seven inputs, not one.
    ("classify a predict signature", "Classify", classification_pb2.ClassificationRequest(
        model_spec={"name": "soundstorm"}), "Expected one input Tensor."),
    # regressor.cc GetRegressionSignature.
    ("regress a predict signature", "Regress", regression_pb2.RegressionRequest(
        model_spec={"name": "soundstorm"}), "Expected one input Tensor."),
    ("classify an unknown signature", "Classify", classification_pb2.ClassificationRequest(
        model_spec={"name": "soundstorm", "signature_name": "nope"}),
     "No signature was found with the name: nope"),
    # The metadata signature has one input, named "probe", not "inputs".
    ("regress the one-input metadata signature", "Regress", regression_pb2.RegressionRequest(
        model_spec={"name": "soundstorm", "signature_name": "metadata"}),
     "Expected one output Tensor."),
    ("classify the one-input metadata signature", "Classify",
     classification_pb2.ClassificationRequest(
         model_spec={"name": "soundstorm", "signature_name": "metadata"}),
     "No classification inputs found in SignatureDef"),
]


@pytest.mark.parametrize("case, method, request_, details", CLASSIFY_REGRESS,
                         ids=[case[0] for case in CLASSIFY_REGRESS])
def test_classify_and_regress_on_predict_signatures_are_invalid_argument(
        served, case, method, request_, details):
    _, channel, _ = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    code, got = rpc_error(getattr(stub, method), request_)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details in got


# --- gRPC: GetModelMetadata and GetModelStatus ----------------------------------------------

METADATA_ERRORS = [
    # servables/tensorflow/get_model_metadata_impl.cc GetModelMetadata, in its order.
    ("no metadata_field", get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": "soundstorm"}), grpc.StatusCode.INVALID_ARGUMENT,
     "GetModelMetadataRequest must specify at least one metadata_field"),
    ("unsupported field", get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": "soundstorm"}, metadata_field=["signature_def", "x"]),
     grpc.StatusCode.INVALID_ARGUMENT, "Metadata field x is not supported"),
    ("fields before the model", get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": "nope"}, metadata_field=["x"]),
     grpc.StatusCode.INVALID_ARGUMENT, "Metadata field x is not supported"),
    ("unknown model", get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": "nope"}, metadata_field=["signature_def"]),
     grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    ("missing ModelSpec", get_model_metadata_pb2.GetModelMetadataRequest(
        metadata_field=["signature_def"]), grpc.StatusCode.INVALID_ARGUMENT,
     "Missing ModelSpec"),
]
STATUS_ERRORS = [
    # model_servers/get_model_status_impl.cc GetModelStatusWithModelSpec.
    ("unknown model", get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "nope"}),
     grpc.StatusCode.NOT_FOUND, "Could not find any versions of model nope"),
    ("unknown version", get_model_status_pb2.GetModelStatusRequest(
        model_spec={"name": "soundstorm", "version": {"value": 7}}),
     grpc.StatusCode.NOT_FOUND, "Could not find version 7 of model soundstorm"),
    ("missing ModelSpec", get_model_status_pb2.GetModelStatusRequest(),
     grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec"),
]


@pytest.mark.parametrize("case, request_, code, details", METADATA_ERRORS,
                         ids=[case[0] for case in METADATA_ERRORS])
def test_metadata_errors(served, case, request_, code, details):
    _, channel, _ = served
    assert rpc_error(prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata,
                     request_) == (code, details)


@pytest.mark.parametrize("case, request_, code, details", STATUS_ERRORS,
                         ids=[case[0] for case in STATUS_ERRORS])
def test_status_errors(served, case, request_, code, details):
    _, channel, _ = served
    assert rpc_error(model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus,
                     request_) == (code, details)


def test_status_ignores_a_label_and_metadata_lists_the_init_op(served):
    """GetModelStatusWithModelSpec reads only `version` (a label is ignored: every version
    is listed); SavedModelGetSignatureDef copies every SignatureDef, the init op too."""
    _, channel, _ = served
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(
            model_spec={"name": "soundstorm", "version_label": "anything"}))
    assert [(s.version, s.state) for s in status.model_version_status] == [(1, 30)]
    metadata = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "soundstorm"},
                                                       metadata_field=["signature_def"]))
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    assert signatures.signature_def["__saved_model_init_op"].outputs[
        "__saved_model_init_op"].name == "NoOp"
    assert (metadata.model_spec.name, metadata.model_spec.version.value,
            metadata.model_spec.signature_name) == ("soundstorm", 1, "")


def test_server_reflection_lists_tf_servings_services(served):
    """Reflection is on (grpc++_reflection linked into the model server, BUILD, since 2.15.1)."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    _, channel, _ = served
    replies = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {service.name for reply in replies
             for service in reply.list_services_response.service}
    assert {"tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"} <= names


# --- REST: routing, status codes, bodies ----------------------------------------------------

# ToHTTPStatusCode, model_servers/http_server.cc: every canonical code.
HTTP_CODES = {"OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
              "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
              "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
              "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
              "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401}


def test_every_status_code_maps_to_tf_servings_http_status():
    from soundstorm.protos.status import HTTP_STATUS
    assert {code.name: status for code, status in HTTP_STATUS.items()} == HTTP_CODES
    assert len(HTTP_STATUS) == len(grpc.StatusCode)  # no code left to a default


ROUTES = [
    # (case, method, path, body, HTTP status, error or None). http_rest_api_handler.cc
    # ProcessRequest and http_rest_api_util.cc's patterns (case-insensitive; the method and
    # subresource compared exactly).
    ("status", "GET", "/v1/models/soundstorm", None, 200, None),
    ("status, upper-case path", "GET", "/V1/MODELS/soundstorm", None, 200, None),
    ("status of a version", "GET", "/v1/models/soundstorm/versions/1", None, 200, None),
    ("status of a label (ignored)", "GET", "/v1/models/soundstorm/labels/any", None, 200, None),
    ("no model name", "GET", "/v1/models", None, 400, "Missing model name in request."),
    ("trailing slash", "GET", "/v1/models/", None, 400, "Malformed request: GET /v1/models/"),
    ("upper-case :Predict", "POST", "/v1/models/soundstorm:Predict", {}, 400,
     "Malformed request: POST /v1/models/soundstorm:Predict"),
    ("GET on :predict", "GET", "/v1/models/soundstorm:predict", None, 400,
     "Malformed request: GET /v1/models/soundstorm:predict"),
    ("POST on metadata", "POST", "/v1/models/soundstorm/metadata", {}, 400,
     "Malformed request: POST /v1/models/soundstorm/metadata"),
    ("DELETE", "DELETE", "/v1/models/soundstorm", None, 400,
     "Malformed request: DELETE /v1/models/soundstorm"),
    ("version and label", "GET", "/v1/models/soundstorm/versions/1/labels/x", None, 400,
     "Malformed request"),
    # The URI is matched as sent, query included, and [^/:]+ takes it into the name.
    ("a query string", "GET", "/v1/models/soundstorm?x=1", None, 404,
     "Could not find any versions of model soundstorm?x=1"),
    ("unknown model", "GET", "/v1/models/nope", None, 404,
     "Could not find any versions of model nope"),
    ("unknown version", "GET", "/v1/models/soundstorm/versions/7", None, 404,
     "Could not find version 7 of model soundstorm"),
    ("version past int64", "GET", "/v1/models/soundstorm/versions/99999999999999999999", None,
     400, "Failed to convert version: 99999999999999999999 to numeric."),
    ("unknown label on predict", "POST", "/v1/models/soundstorm/labels/x:predict",
     {"instances": [1]}, 400, "Unrecognized servable version label: x"),
    ("percent-encoded name", "GET", "/v1/models/sound%73torm", None, 200, None),
]


@pytest.mark.parametrize("case, method, path, body, status, error", ROUTES,
                         ids=[case[0] for case in ROUTES])
def test_rest_routes(served, case, method, path, body, status, error):
    _, _, root = served
    got, headers, reply = http(root + path, body, method)
    assert got == status, reply
    assert headers["Content-Type"] == "application/json"  # AddHeaders, on errors too
    if error is not None:
        assert error in json.loads(reply)["error"]


def test_a_path_outside_v1_is_404(served):
    """RestApiRequestDispatcher::Dispatch answers only (?i)/v1/.* (http_server.cc); for any
    other path EvHTTPServer::DispatchEvRequest finds no handler and sends libevent's error
    page (evhttp_send_error with a NULL reason: ERR_FORMAT, libevent http.c)."""
    _, _, root = served
    status, headers, body = http(root + "/v2/models/soundstorm")
    assert status == 404
    assert headers["Content-Type"] == "text/html; charset=ISO-8859-1"
    assert body == (b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n"
                    b"<H1>Not Found</H1>\n</BODY></HTML>\n")


def test_status_json_is_tf_servings(served):
    """ToJsonString(GetModelStatusResponse), http_rest_api_util.cc: the proto's JSON names,
    int64 version as a string, enum names, error fields always printed."""
    _, _, root = served
    assert json.loads(http(root + "/v1/models/soundstorm")[2]) == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE",
         "status": {"error_code": "OK", "error_message": ""}}]}


def test_metadata_json_keeps_proto_field_names(served):
    """ToJsonString(GetModelMetadataResponse): preserve_proto_field_names, the Any unpacked in
    place (metadata.signature_def.signature_def), the init op listed."""
    _, _, root = served
    metadata = json.loads(http(root + "/v1/models/soundstorm/metadata")[2])
    assert metadata["model_spec"] == {"name": "soundstorm", "signature_name": "", "version": "1"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "logits", "metadata", "__saved_model_init_op"}
    seeds = signatures["serving_default"]["inputs"]["seeds"]
    assert seeds["dtype"] == "DT_INT32" and seeds["tensor_shape"]["dim"][0]["size"] == "-1"
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"


# --- REST: predict JSON (util/json_tensor.cc) -----------------------------------------------

def _columns(arrays):
    return {key: value.tolist() for key, value in arrays.items()}


def _row(arrays):
    return {key: value[0].tolist() for key, value in arrays.items()}


JSON_ERRORS = [
    # (case, body, error). json_tensor.cc; INVALID_ARGUMENT, i.e. HTTP 400.
    ("float for int32", {"inputs": dict(_columns(_arrays()), seeds=[1.5])},
     "JSON Value: 1.5 Type: Number is not of expected type: int32"),
    ("1.0 for int32", {"inputs": dict(_columns(_arrays()), seeds=[1.0])},
     "JSON Value: 1.0 Type: Number is not of expected type: int32"),
    ("string for int32", {"inputs": dict(_columns(_arrays()), seeds=["7"])},
     'JSON Value: "7" Type: String is not of expected type: int32'),
    ("bool for int32", {"inputs": dict(_columns(_arrays()), seeds=[True])},
     "JSON Value: true Type: True is not of expected type: int32"),
    ("3e9 for int32", {"inputs": dict(_columns(_arrays()), seeds=[3e9])},
     "JSON Value: 3000000000.0 Type: Number is not of expected type: int32"),
    ("3000000000 for int32", {"inputs": dict(_columns(_arrays()), seeds=[3000000000])},
     "JSON Value: 3000000000 Type: Number is not of expected type: int32"),
    ("string for float", {"inputs": dict(_columns(_arrays()), temperature=["1"])},
     'JSON Value: "1" Type: String is not of expected type: float'),
    ("null for int32", {"inputs": dict(_columns(_arrays()), seeds=[None])},
     "JSON Value: null Type: Null is not of expected type: int32"),
    ("extra key in an instance", {"instances": [dict(_row(_arrays()), extra=1)]},
     "Failed to process element: 0 key: extra of 'instances' list. Error: INVALID_ARGUMENT: "
     "JSON object: does not have named input: extra"),
    ("missing key in an instance",
     {"instances": [{k: v for k, v in _row(_arrays()).items() if k != "seeds"}]},
     "Failed to process element: 0 of 'instances' list. JSON object:"),
    ("wrong type in an instance", {"instances": [dict(_row(_arrays()), seeds=1.5)]},
     "Failed to process element: 0 key: seeds of 'instances' list. Error: INVALID_ARGUMENT: "
     "JSON Value: 1.5 Type: Number is not of expected type: int32"),
    ("plain list for seven inputs", {"instances": [1, 2]},
     "instances is a plain list, but expecting list of objects as multiple input tensors "
     "required as per tensorinfo_map"),
    ("plain value for seven inputs", {"inputs": [1, 2]},
     "inputs is a plain value/list, but expecting an object as multiple input tensors "
     "required as per tensorinfo_map"),
    ("missing columnar input", {"inputs": {k: v for k, v in _columns(_arrays()).items()
                                           if k != "seeds"}},
     "Missing named input: seeds in 'inputs' object."),
    ("both keys", {"inputs": {}, "instances": []},
     "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"),
    ("neither key", {"signature_name": "serving_default"}, "Missing 'inputs' or 'instances' key"),
    ("instances not a list", {"instances": {}}, "Expecting 'instances' to be an list/array"),
    ("empty instances", {"instances": []}, "No values in 'instances' array"),
    ("signature_name not a string", {"signature_name": 1, "instances": [1]},
     "'signature_name' key must be a string value."),
    ("unknown signature", {"signature_name": "nope", "instances": [1]},
     'Serving signature name: "nope" not found in signature def'),
    ("ragged list", {"inputs": dict(_columns(_arrays()), semantic_tokens=[[1, 2], [3]])},
     "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
    ("a JSON list as the body", [1, 2], "Is not object"),
    ("not JSON", b"{not json", "JSON Parse error"),
    ("empty body", b"", "JSON Parse error: The document is empty"),
    ("instances of different shapes", {"instances": [
        _row(_arrays()), dict(_row(_arrays()), semantic_tokens=[1, 2])]},
     "Expecting tensor size: 16 but got: 2"),
]


@pytest.mark.parametrize("case, body, error", JSON_ERRORS, ids=[case[0] for case in JSON_ERRORS])
def test_predict_json_errors_are_400_with_tf_servings_words(served, case, body, error):
    _, _, root = served
    status, _, reply = http(root + "/v1/models/soundstorm:predict", body, "POST")
    assert status == 400, reply
    assert error in json.loads(reply)["error"]


def test_row_and_columnar_requests_give_tf_servings_reply_forms(served):
    """MakeRowFormatJsonFromTensors / MakeColumnarFormatJsonFromTensors: several outputs are
    keyed by alias; one output (a one-output filter is not a REST option, so the metadata
    signature's `probe` shows the one-input plain forms) is the bare value."""
    server, channel, root = served
    arrays = _arrays(3)
    expected = tf.make_ndarray(prediction_service_pb2_grpc.PredictionServiceStub(channel)
                               .Predict(_predict_request(arrays=arrays), timeout=120)
                               .outputs["acoustic_tokens"])
    rows = json.loads(http(root + "/v1/models/soundstorm:predict",
                           {"instances": [_row(arrays)]})[2])
    assert set(rows["predictions"][0]) == {"acoustic_tokens", "lengths"}
    np.testing.assert_array_equal(rows["predictions"][0]["acoustic_tokens"], expected[0])
    assert rows["predictions"][0]["lengths"] == 32
    columns = json.loads(http(root + "/v1/models/soundstorm/versions/1:predict",
                              {"inputs": _columns(arrays)})[2])
    np.testing.assert_array_equal(columns["outputs"]["acoustic_tokens"], expected)
    # One-input signature: a plain list of instances and a plain columnar value are accepted.
    for body in ({"signature_name": "metadata", "instances": [0]},
                 {"signature_name": "metadata", "inputs": [0]}):
        status, _, reply = http(root + "/v1/models/soundstorm:predict", body)
        assert status == 200, reply


def test_single_output_replies_are_bare_values():
    """One output: each prediction (and the columnar output) is the bare value, not an
    object (json_tensor.cc, `tensors.size() == 1`); `_bytes` aliases are b64 objects
    (IsNamedTensorBytes), other strings are written as they are."""
    from soundstorm.runtime.serving.json_tensor import response_json
    one = {"y": np.array([[1.5, 2.0], [3.0, 4.0]], np.float32)}
    assert response_json(one, row_format=True) == {"predictions": [[1.5, 2.0], [3.0, 4.0]]}
    assert response_json(one, row_format=False) == {"outputs": [[1.5, 2.0], [3.0, 4.0]]}
    strings = {"audio_bytes": np.array([b"\xff\x00"], object), "text": np.array([b"hi"], object)}
    assert response_json(strings, row_format=True) == {"predictions": [
        {"audio_bytes": {"b64": "/wA="}, "text": "hi"}]}
    assert response_json({"x": np.array([0.1], np.float32)}, row_format=False) == \
        {"outputs": [0.1]}  # float32 as its shortest text (WriteDecimal), not 0.100000001


def test_b64_inputs_decode_for_string_tensors():
    """IsValBase64Object / JsonDecodeBase64Object: {"b64": ...} is a string tensor's bytes."""
    from soundstorm.protos.status import StatusError
    from soundstorm.runtime.serving.json_tensor import request_tensors
    inputs, row = request_tensors({"instances": [{"b64": "/wA="}, "hi"]}, {"s": tf.string})
    assert row and list(inputs["s"]) == [b"\xff\x00", b"hi"]
    with pytest.raises(StatusError, match="Unable to base64 decode"):
        request_tensors({"inputs": {"b64": "!!"}}, {"s": tf.string})


def test_cors_preflight_and_headers(served_version, tmp_path):
    """--rest_api_enable_cors_support: every /v1 reply carries AddCORSHeaders' three headers;
    a preflight is 200 with an http(s) Origin and 400 without one (http_server.cc)."""
    shutil.copytree(served_version, tmp_path / "m" / "1")
    server = ModelServer(single_model_config("soundstorm", tmp_path / "m"), ServerOptions(
        host="127.0.0.1", port=0, rest_api_port=-1, poll_seconds=0, rest_cors=True),
        log=lambda message: None).start()
    root = f"http://127.0.0.1:{server.rest_port}/v1/models/soundstorm"
    try:
        status, headers, _ = http(root)
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
        assert headers["Access-Control-Allow-Methods"] == "POST, GET"
        assert headers["Access-Control-Allow-Headers"] == "Content-Type"
        assert http(root, method="OPTIONS", headers={"Origin": "https://a.example"})[0] == 200
        assert http(root, method="OPTIONS")[0] == 400
    finally:
        server.stop(1)


def test_metrics_carry_tf_servings_names_and_labels(served):
    """util/prometheus_exporter.cc renders /tensorflow/serving/request_count as
    :tensorflow:serving:request_count {model_name, status}; request_latency has
    {model_name, API, entrypoint} and is recorded for successful requests only; the gRPC
    API label is the method's name, and GetModelStatus is not counted
    (servables/tensorflow/util.cc, model_servers/prediction_service_impl.cc)."""
    server, channel, root = served
    before = server.metrics.exposition().decode()
    http(root + "/v1/models/soundstorm")
    http(root + "/v1/models/nope")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    stub.Predict(_predict_request(output_filter=["lengths"]), timeout=120)
    rpc_error(stub.Predict, _predict_request(name="nope"))
    model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "soundstorm"}))
    status, _, metrics = http(root + "/monitoring/prometheus/metrics")
    assert status == 200
    text = metrics.decode()
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="nope",status="NOT_FOUND"} ' in text
    assert ':tensorflow:serving:request_latency_count{API="Predict",entrypoint="GRPC",' \
           'model_name="soundstorm"} ' in text
    assert ':tensorflow:serving:request_latency_count{API="",entrypoint="REST",' \
           'model_name="soundstorm"} ' in text
    assert 'model_name="nope"' not in text.split("request_latency")[1]  # failures: no latency
    count = lambda t: sum(1 for line in t.splitlines()
                          if line.startswith(':tensorflow:serving:request_count{model_name='
                                             '"soundstorm",status="OK"}'))
    ok = lambda t: int(next((line.split()[-1] for line in t.splitlines() if line.startswith(
        ':tensorflow:serving:request_count{model_name="soundstorm",status="OK"}')), 0))
    assert ok(text) - ok(before) == 2  # REST status and gRPC Predict; GetModelStatus is not
    assert count(text) == 1


def test_gzip_bodies_are_inflated_and_head_replies_have_no_body(served):
    """libevent inflates a gzip-encoded body for TF Serving (evhttp_request.cc); a HEAD
    reply carries the headers only."""
    import gzip
    _, _, root = served
    body = gzip.compress(json.dumps({"signature_name": "metadata", "inputs": [0]}).encode())
    status, _, reply = http(root + "/v1/models/soundstorm:predict", body,
                            headers={"Content-Encoding": "gzip"})
    assert status == 200 and "contract_json" in json.loads(reply)["outputs"]
    status, _, reply = http(root + "/v1/models/soundstorm:predict", b"not gzip",
                            headers={"Content-Encoding": "gzip"})
    assert status == 400 and "not valid gzip" in json.loads(reply)["error"]
    status, headers, reply = http(root + "/v1/models/soundstorm", method="HEAD")
    assert status == 400 and reply == b""  # HEAD is "Malformed request", without the body


def test_input_names_are_checked_before_the_filter_and_a_bad_tensor_names_its_alias(served):
    """PreProcessPrediction: VerifyRequestInputsSize, then output_filter, then each tensor's
    parse, whose error names the alias (predict_util.cc)."""
    _, channel, _ = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = _predict_request(arrays={}, output_filter=["nope"])
    assert rpc_error(stub.Predict, request)[1].startswith("input size does not match signature")
    request = _predict_request()
    request.inputs["seeds"].tensor_content = b"\x01\x02\x03"  # not a whole int32
    request.inputs["seeds"].ClearField("int_val")
    assert rpc_error(stub.Predict, request) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                "tensor parsing error: seeds")


def test_multi_inference_on_predict_signatures_is_invalid_argument(served):
    from tensorflow_serving.apis import inference_pb2
    _, channel, _ = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = inference_pb2.MultiInferenceRequest()
    assert rpc_error(stub.MultiInference, request) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                       "Empty tasks")
    request.tasks.add(model_spec={"name": "soundstorm"},
                             method_name="tensorflow/serving/classify")
    assert rpc_error(stub.MultiInference, request) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                       "Expected one input Tensor.")


def test_deep_json_nesting_is_a_client_error(served):
    _, _, root = served
    deep = "[" * 500 + "1" + "]" * 500
    status, _, reply = http(root + "/v1/models/soundstorm:predict",
                            ('{"signature_name": "metadata", "inputs": ' + deep + "}").encode())
    assert status == 400, reply


# --- Process: flags, ports, start-up validations --------------------------------------------

def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_every_tensorflow_model_server_flag_is_accepted_with_its_default():
    """The 48 flags of model_servers/main.cc, with server.h's defaults."""
    import dataclasses
    from soundstorm.runtime.serving.flags import NO_EFFECT, REFUSED, ServerFlags
    names = {field.name: field.default for field in dataclasses.fields(ServerFlags)}
    ours = {"host", "max_message_bytes", "reload_config_allowed_roots", "max_request_batch_size",
            "max_inflight_bytes"}
    assert len(set(names) - ours) == 48
    assert {name: names[name] for name in (
        "port", "rest_api_port", "rest_api_timeout_in_ms", "model_name", "max_num_load_retries",
        "load_retry_interval_micros", "file_system_poll_wait_seconds", "enable_model_warmup",
        "saved_model_tags", "enable_batching", "xla_cpu_compilation_enabled")} == {
        "port": 8500, "rest_api_port": 0, "rest_api_timeout_in_ms": 30000,
        "model_name": "default", "max_num_load_retries": 5,
        "load_retry_interval_micros": 60_000_000, "file_system_poll_wait_seconds": 1,
        "enable_model_warmup": True, "saved_model_tags": "serve", "enable_batching": False,
        "xla_cpu_compilation_enabled": False}
    assert not (set(NO_EFFECT) | set(REFUSED)) - set(names)


def test_help_describes_every_flag():
    """`--help` gives each flag a line, as tensorflow_model_server's usage text does
    (main.cc's flag_list): what a used flag does, or why it has no effect or is refused."""
    import argparse
    import dataclasses
    from soundstorm.runtime.serving.flags import NO_EFFECT, REFUSED, ServerFlags, add_arguments
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    helps = {action.dest: action.help for action in parser._actions if action.dest != "help"}
    assert set(helps) == {field.name for field in dataclasses.fields(ServerFlags)}
    assert all(helps.values()), [name for name, text in helps.items() if not text]
    assert helps["num_tflite_pools"].startswith("accepted, no effect here: ")
    assert helps["prefer_tflite_model"].startswith("refused when set: ")
    assert not {name for name, text in helps.items()
                if text.startswith(("accepted", "refused"))} - set(NO_EFFECT) - set(REFUSED)


STARTUP_ERRORS = [
    # model_servers/server.cc Server::BuildAndStart, in its order.
    (["--port=0"], "At least one of server_options.grpc_port or server_options.grpc_socket_path "
                   "must be set."),
    (["--model_base_path=/m", "--use_alts_credentials", "--ssl_config_file=/x"],
     "Either use_alts_credentials must be false or ssl_config_file must be empty."),
    ([], "Both server_options.model_base_path and server_options.model_config_file are empty!"),
    (["--model_base_path=/m", "--batching_parameters_file=/b"],
     "server_options.batching_parameters_file is set without setting "
     "server_options.enable_batching to true."),
    (["--model_base_path=/m", "--tensorflow_session_parallelism=1",
      "--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=1"],
     "You cannot configure all."),
    (["--model_base_path=/m", "--prefer_tflite_model"],
     "--prefer_tflite_model is not supported by soundstorm serve: TFLite models are not served"),
]


@pytest.mark.parametrize("flags, message", STARTUP_ERRORS)
def test_start_up_validations_refuse_with_one_line(flags, message, capsys):
    from soundstorm.apps.cli.main import main
    assert main(["serve", *flags]) == 3
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_version_flag_prints_two_lines_and_exits_0(capsys):
    """main.cc: --version prints the ModelServer and TensorFlow versions and exits 0."""
    from soundstorm.apps.cli.main import main
    assert main(["serve", "--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("TensorFlow ModelServer: ")
    assert lines[1] == f"TensorFlow Library: {tf.__version__}"


def _serve(base, port, *flags):
    return subprocess.Popen(
        [sys.executable, "-m", "soundstorm.apps.cli", "serve", f"--model_base_path={base}",
         "--model_name=soundstorm", f"--port={port}", "--host=127.0.0.1", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_busy_port_is_one_line_and_a_non_zero_exit_before_any_load(served_version, tmp_path):
    """The port is bound exclusively before the models load: a second server on a port in
    use exits at once (no SO_REUSEPORT: it can never take part of the first one's traffic)."""
    shutil.copytree(served_version, tmp_path / "m" / "1")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        for flags in ((), (f"--port={_free_port()}", f"--rest_api_port={busy}")):
            started = time.monotonic()
            process = _serve(tmp_path / "m", busy if not flags else _free_port(), *flags[1:])
            out, err = process.communicate(timeout=120)
            assert process.returncode == 4  # UNAVAILABLE: exit_codes.SERVER
            lines = err.strip().splitlines()  # nothing else: no TensorFlow start-up lines
            assert len(lines) == 1 and lines[0].startswith("soundstorm serve: error: "), err
            assert str(busy) in lines[0], err
            assert "Traceback" not in err and "version 1 available" not in err  # no load
            assert time.monotonic() - started < 60


def test_two_servers_never_share_one_grpc_port(served_version, tmp_path):
    """With a first server listening, a second on its port fails to bind; every fresh
    connection reaches the first (the reported 13 of 20 reached an empty second one)."""
    shutil.copytree(served_version, tmp_path / "m" / "1")
    first = ModelServer(single_model_config("soundstorm", tmp_path / "m"), ServerOptions(
        host="127.0.0.1", port=0, poll_seconds=0), log=lambda message: None).start()
    try:
        empty = tmp_path / "empty"
        empty.mkdir()
        second = ModelServer(single_model_config("soundstorm", empty), ServerOptions(
            host="127.0.0.1", port=first.grpc_port, poll_seconds=0), log=lambda message: None)
        from soundstorm.protos.status import StatusError
        with pytest.raises(StatusError) as caught:
            second.start()
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        for _ in range(20):
            with grpc.insecure_channel(f"127.0.0.1:{first.grpc_port}") as channel:
                status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                    get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "soundstorm"}),
                    timeout=30)
                assert [s.version for s in status.model_version_status] == [1]
    finally:
        first.stop(1)


def test_a_version_copied_in_two_steps_loads_on_a_retry(served_version, tmp_path):
    """saved_model.pb first, variables/ later: the first load fails, a retry
    --load_retry_interval_micros later succeeds (LoaderHarness::Load, util/retrier.cc)."""
    base = tmp_path / "m"
    base.mkdir()
    server = ModelServer(single_model_config("soundstorm", base), ServerOptions(
        host="127.0.0.1", port=0, poll_seconds=0.1, load_retry_interval_s=2.0,
        max_num_load_retries=5), log=lambda message: None).start()
    try:
        staging = tmp_path / "staging"
        shutil.copytree(served_version, staging)
        (base / "1").mkdir()
        shutil.copy2(staging / "saved_model.pb", base / "1" / "saved_model.pb")
        deadline = time.monotonic() + 60
        while not any(s.status.error_code for s in _statuses(server)):
            assert time.monotonic() < deadline, "the half-copied version never failed a load"
            time.sleep(0.05)
        for name in ("variables", "assets", "assets.extra", "fingerprint.pb"):
            source = staging / name
            if source.is_dir():
                shutil.copytree(source, base / "1" / name)
            elif source.exists():
                shutil.copy2(source, base / "1" / name)
        while server.manager.available() != {"soundstorm": [1]}:
            assert time.monotonic() < deadline, _statuses(server)
            time.sleep(0.05)
        assert [(s.version, s.state, s.status.error_code) for s in _statuses(server)] == \
            [(1, 30, 0)]
    finally:
        server.stop(1)


def _statuses(server):
    try:
        return server.manager.status("soundstorm")
    except Exception:
        return []


def test_a_version_folder_named_0002_loads_and_serves_as_version_2(served_version, tmp_path):
    """file_system_storage_path_source.cc: the folder name parses as 2 (absl::SimpleAtoi) and
    the version loads from the folder as listed, `0002/`."""
    shutil.copytree(served_version, tmp_path / "m" / "0002")
    server = ModelServer(single_model_config("soundstorm", tmp_path / "m"), ServerOptions(
        host="127.0.0.1", port=0, poll_seconds=0), log=lambda message: None).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                _predict_request(version=2, output_filter=["lengths"]), timeout=120)
        assert reply.model_spec.version.value == 2
        assert server.manager.resolve("soundstorm", 2).path == tmp_path / "m" / "0002"
    finally:
        server.stop(1)


def _one_signature_saved_model(version_dir, method_name):
    """A TF1 SavedModel whose serving_default adds one to an int32 vector and is declared
    with `method_name`."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        x = tf.compat.v1.placeholder(tf.int32, [None], name="x")
        y = tf.identity(x + 1, name="y")
        signature = tf.compat.v1.saved_model.build_signature_def(
            {"x": tf.compat.v1.saved_model.build_tensor_info(x)},
            {"y": tf.compat.v1.saved_model.build_tensor_info(y)}, method_name)
        builder = tf.compat.v1.saved_model.Builder(str(version_dir))
        builder.add_meta_graph_and_variables(session, ["serve"],
                                             signature_def_map={"serving_default": signature})
        builder.save()


@pytest.mark.parametrize("checked", [False, True])
def test_the_signature_method_name_is_checked_only_with_its_flag(tmp_path, checked):
    """--enable_signature_method_name_check (default false, main.cc): Predict on a signature
    whose method_name is not predict, classify or regress is INTERNAL, "Expected prediction
    signature method_name to be one of {...}. Was: ..." (VerifySignature, predict_util.cc);
    without the flag it runs."""
    _one_signature_saved_model(tmp_path / "m" / "1", "custom/method")
    server = ModelServer(single_model_config("m", tmp_path / "m"), ServerOptions(
        host="127.0.0.1", port=0, poll_seconds=0, signature_method_name_check=checked),
        log=lambda message: None).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest(model_spec={"name": "m"})
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1, 2], np.int32)))
            if not checked:
                assert list(stub.Predict(request, timeout=60).outputs["y"].int_val) == [2, 3]
                return
            assert rpc_error(stub.Predict, request) == (
                grpc.StatusCode.INTERNAL,
                "Expected prediction signature method_name to be one of {"
                "tensorflow/serving/predict, tensorflow/serving/classify, "
                "tensorflow/serving/regress}. Was: custom/method")
    finally:
        server.stop(1)
