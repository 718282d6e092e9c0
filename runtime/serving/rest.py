"""TF Serving's REST API on a second port, plus Prometheus metrics.

    GET  /v1/models/NAME[/versions/N | /labels/L]            model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   signatures
    POST /v1/models/NAME[/versions/N | /labels/L]:predict    {"signature_name", "instances" | "inputs"}
    GET  <metrics path>                                       Prometheus exposition

Request values are cast to the signature's input dtypes (JSON has no int32);
bytes outputs come back as text when they are UTF-8, else as {"b64": ...}, as
TF Serving encodes binary strings.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_status_pb2

from protos.status import StatusError, invalid_argument, not_found
from runtime.savedmodel.tf_status import message_of, status_code_of

_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<suffix>/metadata|:predict)?$")
_HTTP_STATUS = {grpc.StatusCode.OK: 200, grpc.StatusCode.INVALID_ARGUMENT: 400,
                grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
                grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504}
_STATE_NAMES = get_model_status_pb2.ModelVersionStatus.State


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value] if value.ndim else _jsonable(value.item())
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.generic):
        return value.item()
    return value


class RestServer:
    def __init__(self, server, host: str, port: int):
        self.server = server
        self.workers = concurrent.futures.ThreadPoolExecutor(server.options.grpc_threads,
                                                             thread_name_prefix="rest")
        handler = type("Handler", (_Handler,), {"model_server": server,
                                                "rest_workers": self.workers})
        self._http = ThreadingHTTPServer((host, port), handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True,
                                        name="rest")

    def start(self) -> "RestServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self.workers.shutdown(wait=True)


class _Handler(BaseHTTPRequestHandler):
    model_server = None  # set per server by RestServer
    rest_workers = None
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: metrics count requests
        pass

    def do_GET(self):
        if self.model_server.options.metrics_path and self.path == \
                self.model_server.options.metrics_path:
            self._reply(200, self.model_server.metrics.exposition(), "text/plain; version=0.0.4")
            return
        self._handle(lambda match, body: self._status_or_metadata(match))

    def do_POST(self):
        self._handle(self._predict)

    def _handle(self, action):
        started = time.perf_counter()
        match = _MODEL_PATH.match(self.path)
        code, api = grpc.StatusCode.OK, "rest"
        try:
            if match is None:
                raise not_found(f"no such path {self.path!r}; see TF Serving's REST API")
            length = int(self.headers.get("Content-Length") or 0)
            if length > self.model_server.options.max_message_bytes:
                raise StatusError(f"request of {length} bytes is over the limit of "
                                  f"{self.model_server.options.max_message_bytes}",
                                  grpc.StatusCode.RESOURCE_EXHAUSTED)
            body = self.rfile.read(length) if length else b""
            self._reply(200, json.dumps(action(match, body)).encode())
        except Exception as error:  # the server stays up whatever a request does
            code = status_code_of(error)
            self._reply(_HTTP_STATUS.get(code, 500),
                        json.dumps({"error": message_of(error)}).encode())
        finally:
            name = match.group("name") if match else ""
            self.model_server.metrics.observe(name, (match.group("version") or "") if match
                                              else "", api, code.name,
                                              time.perf_counter() - started)

    def _reply(self, status: int, body: bytes, content_type: str = "application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _spec(self, match):
        from tensorflow_serving.apis import model_pb2
        spec = model_pb2.ModelSpec(name=match.group("name"))
        if match.group("version"):
            spec.version.value = int(match.group("version"))
        if match.group("label"):
            spec.version_label = match.group("label")
        return spec

    def _status_or_metadata(self, match):
        from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2
        spec = self._spec(match)
        if match.group("suffix") == ":predict":
            raise invalid_argument("predict takes POST")
        if match.group("suffix") == "/metadata":
            request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec,
                                                                     metadata_field=["signature_def"])
            response = self.model_server.metadata(request)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signature_map)
            return {"model_spec": json.loads(json_format.MessageToJson(response.model_spec)),
                    "metadata": {"signature_def": json.loads(
                        json_format.MessageToJson(signature_map))}}
        status = self.model_server.model_status(get_model_status_pb2.GetModelStatusRequest(
            model_spec=spec))
        return {"model_version_status": [
            {"version": str(s.version), "state": _STATE_NAMES.Name(s.state),
             "status": {"error_code": grpc.StatusCode.OK.name if not s.status.error_code else
                        next(c.name for c in grpc.StatusCode if c.value[0] == s.status.error_code),
                        "error_message": s.status.error_message}}
            for s in status.model_version_status]}

    def _predict(self, match, body: bytes):
        if match.group("suffix") != ":predict":
            raise invalid_argument("POST is for :predict")
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError as error:
            raise invalid_argument(f"request body is not JSON: {error}") from None
        servable = self.model_server.resolve(self._spec(match))
        signature = servable.check_signature(request.get("signature_name", ""))
        specs = servable.input_specs(signature)
        if ("instances" in request) == ("inputs" in request):
            raise invalid_argument('the body needs exactly one of "instances" (rows) or '
                                   '"inputs" (columns)')
        if "instances" in request:
            rows = request["instances"]
            if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
                raise invalid_argument('"instances" must be a non-empty list of objects '
                                       "keyed by input name")
            columns = {key: [row.get(key) for row in rows] for key in specs}
        else:
            columns = request["inputs"]
            if not isinstance(columns, dict):
                raise invalid_argument('"inputs" must be an object keyed by input name')
        inputs = {}
        for key, values in columns.items():
            if key not in specs:
                raise invalid_argument(f"unknown input {key!r}; signature {signature} takes "
                                       f"{sorted(specs)}")
            try:
                inputs[key] = np.asarray(values, dtype=specs[key].dtype.as_numpy_dtype)
            except (TypeError, ValueError) as error:
                raise invalid_argument(f"input {key!r} is not a {specs[key].dtype.name} "
                                       f"array: {error}") from None
        # --rest_api_timeout_in_ms: answer DEADLINE_EXCEEDED (the computation itself cannot
        # be interrupted and finishes in the background, as in TF Serving).
        future = self.rest_workers.submit(self.model_server.run, servable, signature, inputs)
        try:
            outputs = future.result(timeout=self.model_server.options.rest_timeout_seconds)
        except concurrent.futures.TimeoutError:
            raise StatusError(f"prediction took longer than the REST timeout of "
                              f"{self.model_server.options.rest_timeout_seconds:g} s",
                              grpc.StatusCode.DEADLINE_EXCEEDED) from None
        if "instances" in request:
            count = len(request["instances"])
            return {"predictions": [{key: _jsonable(value[i]) for key, value in outputs.items()}
                                    for i in range(count)]}
        return {"outputs": {key: _jsonable(value) for key, value in outputs.items()}}
