"""TF Serving's REST API on a second port, served by waitress, plus Prometheus metrics.

    GET  /v1/models/NAME[/versions/N | /labels/L]              model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata     signatures
    POST /v1/models/NAME[/versions/N | /labels/L]:predict      json_tensor.py's request forms
    POST ...:classify | :regress                               INVALID_ARGUMENT for our signatures
    GET  <metrics path>                                         Prometheus exposition

Routing follows tensorflow/serving's model_servers/http_rest_api_util.cc and
http_rest_api_handler.cc: the path patterns match case-insensitively, but the
method and subresource are compared exactly (`:Predict` is a malformed request);
any other method or form is `Malformed request: <METHOD> <path>` (400), a path
outside `/v1/` is 404, and `GET /v1/models` is "Missing model name in request.".
Each status code maps to HTTP as ToHTTPStatusCode (http_server.cc) maps it. The
status reply lists versions newest first and ignores a label; metadata keeps the
proto field names and lists `__saved_model_init_op`. Errors are `{"error": msg}`.

waitress (a maintained WSGI server) gives keep-alive, a listen backlog of 1024
and a bounded request body (`max_message_bytes`, answered 413; TF Serving sets
no limit, a difference on purpose: one client must not exhaust the server's
memory); rest_connections.py adds a read deadline per request and a lingering
close, so that the 413 reaches a client still sending its body.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
import threading
import time
from urllib.parse import unquote

import grpc
import waitress.server
from google.protobuf import json_format
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_pb2, regression_pb2)

from soundstorm.protos.status import HTTP_STATUS, StatusError, invalid_argument
from soundstorm.runtime.savedmodel.tf_status import message_of, status_code_of
from soundstorm.runtime.serving import json_tensor
from soundstorm.runtime.serving.admission import JSON_BYTES_FACTOR
from soundstorm.runtime.serving.rest_connections import use_bounded_channels

# tensorflow/serving model_servers/http_rest_api_util.h: the predict and status patterns.
_PREDICT_PATH = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
    r":(classify|regress|predict)")
_STATUS_PATH = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
    r"(?:\/(metadata))?")
_API_PATH = re.compile(r"(?i)/v1/.*")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 409: "Conflict", 429: "Too Many Requests",
            499: "Client Closed Request", 500: "Internal Server Error", 501: "Not Implemented",
            503: "Service Unavailable", 504: "Gateway Timeout"}
# AddCORSHeaders, http_rest_api_util.cc (with --rest_api_enable_cors_support).
_CORS_HEADERS = [("Access-Control-Allow-Origin", "*"),
                 ("Access-Control-Allow-Methods", "POST, GET"),
                 ("Access-Control-Allow-Headers", "Content-Type")]
REST_IDLE_TIMEOUT_S = 30
# A POST body's accepted types: none said, JSON, and what `curl -d` sends, which TF Serving's
# own REST examples use.
_JSON_CONTENT_TYPES = ("", "application/json", "application/x-www-form-urlencoded")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
# Waitress's own log would print a traceback per dropped connection; keep it to warnings.
logging.getLogger("waitress").setLevel(logging.WARNING)


_LIBEVENT_NOT_FOUND = (b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n"
                       b"<H1>Not Found</H1>\n</BODY></HTML>\n")


class RestServer:
    """Binds its port at construction (so a busy port fails before any model loads)."""

    def __init__(self, server, host: str, port: int):
        self.server = server
        options = server.options
        threads = options.rest_threads or 4 * (os.cpu_count() or 1)
        # Runs the model calls, so a request past --rest_api_timeout_in_ms can be answered.
        self.workers = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="rest")
        try:
            self._http = waitress.server.create_server(
                _RestApp(server, self.workers), host=host, port=port, threads=threads,
                backlog=1024, max_request_body_size=options.max_message_bytes,
                # A connection idle (or sending nothing) this long is closed: a slow or
                # stalled client cannot hold a connection for ever (waitress's default: 120 s).
                channel_timeout=REST_IDLE_TIMEOUT_S,
                clear_untrusted_proxy_headers=True, ident=None)
        except OSError as error:
            self.workers.shutdown()
            raise StatusError(f"cannot bind the REST port {host}:{port}: {error.strerror}",
                              grpc.StatusCode.UNAVAILABLE) from None
        use_bounded_channels(self._http)
        self.port = self._http.effective_port
        self._thread = threading.Thread(target=self._http.run, daemon=True, name="rest")

    def start(self) -> "RestServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Closes the listening socket and every connection inside waitress's own loop (so
        its select never sees a closed descriptor), then lets running requests finish."""
        def close_all():
            for channel in list(self._http._map.values()):
                channel.close()
        if self._thread.is_alive():
            self._http.trigger.pull_trigger(close_all)
            self._thread.join(timeout=10)
        else:
            close_all()
        self._http.task_dispatcher.shutdown()
        self.workers.shutdown(wait=True)


class _RestApp:
    """The WSGI application: routes a request, runs it, writes TF Serving's reply."""

    def __init__(self, server, workers):
        self.server, self.workers = server, workers

    def __call__(self, environ, start_response):
        reply = self._answer(environ, start_response)
        # A HEAD reply has the headers of the GET reply and no body (RFC 9110, 9.3.2).
        return [] if environ["REQUEST_METHOD"] == "HEAD" else reply

    def _answer(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        # TF Serving matches the request URI as sent: percent-escapes and the query included.
        path = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        options = self.server.options
        if method == "GET" and options.metrics_path and path == options.metrics_path:
            return self._reply(start_response, 200, self.server.metrics.exposition(),
                               "text/plain; version=0.0.4")
        if method == "OPTIONS":
            return self._preflight(environ, start_response)
        if not _API_PATH.fullmatch(path):
            # TF Serving's HTTP server has no handler for it: libevent's error page
            # (evhttp_send_error with no reason, libevent http.c; evhttp_server.cc).
            return self._reply(start_response, 404, _LIBEVENT_NOT_FOUND,
                               "text/html; charset=ISO-8859-1")
        started, code = time.perf_counter(), grpc.StatusCode.OK
        seen = {"model": "", "api": ""}  # filled in by _route as soon as it knows them
        try:
            self._check_origin(environ)
            # Waitress has already read the whole body (at most max_message_bytes, de-chunked):
            # read it all, whatever Content-Length says or whether it says anything.
            body = environ["wsgi.input"].read()
            if "gzip" in environ.get("HTTP_CONTENT_ENCODING", ""):
                body = _gunzip(body, self.server.options.max_message_bytes)
            # The body, its parse and its arrays count against the server's in-flight budget.
            with self.server.inflight.hold(JSON_BYTES_FACTOR * len(body), "this request"):
                reply = json.dumps(self._route(method, path, body, seen), indent=4).encode()
            status = 200
        except Exception as error:  # the server stays up whatever a request does
            code = status_code_of(error)
            reply = json.dumps({"error": message_of(error)}, indent=4).encode()
            status = HTTP_STATUS.get(code, 500)
        finally:
            self.server.metrics.observe(seen["model"], "", seen["api"], code.name,
                                        time.perf_counter() - started, entrypoint="REST")
        return self._reply(start_response, status, reply)

    def _reply(self, start_response, status: int, body: bytes,
               content_type: str = "application/json"):
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if self.server.options.rest_cors:
            headers += _CORS_HEADERS
        start_response(f"{status} {_REASONS.get(status, '')}", headers)
        return [body]

    def _check_origin(self, environ) -> None:
        """Refuses what only a web page would send (ours; TF Serving checks none of it): a
        POST whose Content-Type is not JSON's (a page's text/plain or multipart form), a
        cross-origin request (an Origin header) unless --rest_api_enable_cors_support, and,
        on a loopback-only server, a Host that is not loopback (DNS rebinding)."""
        content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if environ["REQUEST_METHOD"] == "POST" and content_type not in _JSON_CONTENT_TYPES:
            raise invalid_argument(f"Content-Type {content_type} refused: the body must be JSON "
                                   "(application/json)")
        if environ.get("HTTP_ORIGIN") and not self.server.options.rest_cors:
            raise StatusError(f"cross-origin request from {environ['HTTP_ORIGIN']} refused: "
                              "start the server with --rest_api_enable_cors_support to allow "
                              "browsers", grpc.StatusCode.PERMISSION_DENIED)
        if self.server.options.host in _LOOPBACK_HOSTS:
            host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
            if host not in _LOOPBACK_HOSTS:
                raise StatusError(f"Host {environ.get('HTTP_HOST', '')!r} refused: this server "
                                  "listens on loopback only", grpc.StatusCode.PERMISSION_DENIED)

    def _preflight(self, environ, start_response):
        """CORS preflight (http_server.cc): 200 for an http(s) Origin, else 400; no body."""
        ok = re.search(r"https?://", environ.get("HTTP_ORIGIN", "")) is not None
        headers = [("Content-Length", "0")] + (_CORS_HEADERS if self.server.options.rest_cors
                                               else [])
        start_response("200 OK" if ok else "400 Bad Request", headers)
        return [b""]

    def _route(self, method: str, path: str, body: bytes, seen: dict) -> dict:
        """The reply; raises StatusError as ProcessRequest does. Records the model and API
        in `seen` for the metrics, before anything can fail."""
        malformed = invalid_argument(f"Malformed request: {method} {path}")
        if method == "POST":
            match = _PREDICT_PATH.fullmatch(path)
            if match is None or match.group(4) not in ("predict", "classify", "regress"):
                raise malformed
            seen.update(model=unquote(match.group(1)), api=match.group(4))
            spec = _model_spec(*match.groups()[:3])
            if match.group(4) == "predict":
                return self._predict(spec, body)
            return self._classify_or_regress(spec, body, match.group(4))
        if method == "GET":
            match = _STATUS_PATH.fullmatch(path)
            if match is None:
                raise malformed
            if not match.group(1):
                raise invalid_argument("Missing model name in request.")
            # GET requests carry no method: TF Serving's API label is empty for them.
            seen.update(model=unquote(match.group(1)), api="")
            spec = _model_spec(*match.groups()[:3])
            return self._metadata(spec) if match.group(4) == "metadata" else self._status(spec)
        raise malformed

    def _status(self, spec) -> dict:
        response = self.server.model_status(
            get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
        return json_format.MessageToDict(response, always_print_fields_with_no_presence=True)

    def _metadata(self, spec) -> dict:
        response = self.server.metadata(get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=["signature_def"]))
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        as_dict = lambda message: json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        # The Any is unpacked and printed in place, not as {"@type": ...} (ToJsonString,
        # http_rest_api_util.cc), so signature_def appears twice on the way down.
        return {"model_spec": as_dict(response.model_spec),
                "metadata": {"signature_def": as_dict(signature_map)}}

    def _predict(self, spec, body: bytes) -> dict:
        document = json_tensor.parse_json(body)
        signature_name = json_tensor.signature_name_of(document) or "serving_default"
        servable = self.server.resolve(spec)
        if signature_name not in servable.signature_defs:
            raise invalid_argument(f'Serving signature name: "{signature_name}" not found in '
                                   "signature def")
        specs = {alias: dtype for alias, (dtype, _) in servable.input_specs(signature_name)
                 .items()}
        inputs, row_format = json_tensor.request_tensors(document, specs)
        # --rest_api_timeout_in_ms bounds the run; past it the answer is DEADLINE_EXCEEDED
        # (HttpRestApiHandler sets RunOptions.timeout_in_ms when the flag is > 0).
        timeout = self.server.options.rest_timeout_seconds
        timeout_ms = timeout * 1000 if timeout > 0 else None
        future = self.workers.submit(self.server.run, servable, signature_name, inputs, None,
                                     timeout_ms)
        try:
            outputs = future.result(timeout=timeout if timeout > 0 else None)
        except concurrent.futures.TimeoutError:
            raise StatusError(f"prediction took longer than the REST timeout of {timeout:g} s",
                              grpc.StatusCode.DEADLINE_EXCEEDED) from None
        return json_tensor.response_json(outputs, row_format)

    def _classify_or_regress(self, spec, body: bytes, method: str) -> dict:
        """The JSON's `examples` are checked first, then the signature (which fails for every
        SoundStorm signature), as FillClassifyRegressRequestFromJson and then the
        classifier / regressor do."""
        document = json_tensor.parse_json(body)
        signature_name = json_tensor.signature_name_of(document)
        examples = document.get("examples")
        if examples is None:
            raise invalid_argument(f"JSON Value: {json_tensor.debug_string(document)} When "
                                   "method is classify, key 'examples' is expected and was not "
                                   "found")
        if not isinstance(examples, list):
            raise invalid_argument(f"JSON Value: {json_tensor.debug_string(document)} "
                                   "Expecting 'examples' value to be an list/array")
        if not examples:
            raise invalid_argument(f"JSON Value: {json_tensor.debug_string(document)} "
                                   "'examples' value is an empty array")
        request = (classification_pb2.ClassificationRequest() if method == "classify"
                   else regression_pb2.RegressionRequest())
        request.model_spec.CopyFrom(spec)
        request.model_spec.signature_name = signature_name
        return self.server.check_classify_or_regress(request, method)


def _gunzip(body: bytes, limit: int) -> bytes:
    """A gzip-encoded body, decompressed as libevent's request does for TF Serving, and
    bounded: more than `limit` bytes once inflated is RESOURCE_EXHAUSTED."""
    import zlib
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise invalid_argument(f"the request body is not valid gzip: {error}") from None
    if len(data) > limit:
        raise StatusError(f"the request body inflates to more than {limit} bytes",
                          grpc.StatusCode.RESOURCE_EXHAUSTED)
    return data


def _model_spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
    """The ModelSpec of a path's captures: percent-decoded name and label, int64 version
    (ParseModelInfo, http_rest_api_util.cc)."""
    spec = model_pb2.ModelSpec(name=unquote(name or ""))
    if version is not None:
        number = int(version)
        if number >= 2**63:
            raise invalid_argument(f"Failed to convert version: {version} to numeric.")
        spec.version.value = number
    if label is not None:
        spec.version_label = unquote(label)
    return spec
