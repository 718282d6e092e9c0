"""The model server: TF Serving's gRPC services over a ModelManager, with batching and metrics.

`ModelServer` holds the logic (resolve a ModelSpec, check and run a request,
report status and metadata) in plain methods; the gRPC servicers and the REST
handler (rest.py) only translate to and from their wire formats, so both
answer alike.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import threading
import time
import logging
from pathlib import Path
from typing import Callable

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import any_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_management_pb2, model_service_pb2,
                                     model_service_pb2_grpc, predict_pb2, prediction_service_pb2,
                                     prediction_service_pb2_grpc, status_pb2)
from tensorflow_serving.config import model_server_config_pb2

from soundstorm.runtime.serving.admission import DEFAULT_MAX_INFLIGHT_BYTES, InflightBudget
from soundstorm.runtime.serving.batching import Batcher, BatchingOptions
from soundstorm.protos.status import StatusError, invalid_argument, not_found
from soundstorm.runtime.savedmodel.tf_status import message_of, status_code_of
from soundstorm.runtime.serving.manager import ModelManager
from soundstorm.runtime.serving.metrics import ServerMetrics
from soundstorm.runtime.savedmodel.servable import Servable
from soundstorm.runtime.serving.tensors import declared_bytes, parse_tensor, tensor_proto

# 64 MiB: a 60 s request of the paper's model is ~100 KB, its answer ~150 KB; far past that
# is a mistake or an attack, answered RESOURCE_EXHAUSTED by gRPC itself.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Timestamped lines through `logging` (soundstorm serve configures the format).
LOG = logging.getLogger("runtime.serving")
# gRPC logs a five-line traceback for every request it cannot deserialize (and answers it
# INTERNAL itself): one client could fill the log with garbage bytes. Every other exception
# of a call is caught and answered in _serve, so this logger has nothing else to say.
logging.getLogger("grpc._server").setLevel(logging.CRITICAL)


@dataclasses.dataclass
class ServerOptions:
    host: str = "0.0.0.0"
    port: int = 8500
    rest_api_port: int = 0           # 0: no REST (as in TF Serving)
    poll_seconds: float = 1.0        # --file_system_poll_wait_seconds
    batching: BatchingOptions | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    grpc_threads: int = 32
    metrics_path: str = ""           # REST path of Prometheus metrics; "" disables
    ssl: object | None = None        # tf_serving_config_pb2.SSLConfig
    rest_timeout_seconds: float = 30.0  # --rest_api_timeout_in_ms; <= 0: none
    rest_threads: int = 0            # --rest_api_num_threads; 0: 4 per CPU, as TF Serving
    rest_cors: bool = False          # --rest_api_enable_cors_support
    grpc_healthcheck: bool = False   # --enable_grpc_healthcheck_service
    serialization_as_tensor_content: bool = False  # --enable_serialization_as_tensor_content
    signature_method_name_check: bool = False  # --enable_signature_method_name_check
    max_num_load_retries: int = 5    # --max_num_load_retries
    load_retry_interval_s: float = 60.0  # --load_retry_interval_micros / 1e6
    allow_version_labels_for_unavailable_models: bool = False
    grpc_socket_path: str = ""       # --grpc_socket_path: also listen on this Unix socket
    grpc_channel_arguments: tuple = ()  # --grpc_channel_arguments, parsed: (name, value)
    warm_up: bool = True             # --enable_model_warmup
    session_threads: tuple[int, int] = (0, 0)  # intra-op, inter-op (0: TensorFlow's choice)
    # --reload_config_allowed_roots: folders the reload RPC may serve base paths from;
    # empty: the RPC is refused (PERMISSION_DENIED).
    reload_config_roots: tuple[Path, ...] = ()
    # --max_request_batch_size (ours): the largest batch one request may ask for, over gRPC
    # and REST, checked before the model runs (decoding memory grows with it).
    max_request_batch_size: int = 64
    # --max_inflight_bytes (ours): what all requests in flight may hold together (admission.py).
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES


def check_reload_allowed(config: model_server_config_pb2.ModelServerConfig,
                         roots: tuple[Path, ...]) -> None:
    """Raises PERMISSION_DENIED unless reloads are enabled and each base path, with symlinks
    and `..` resolved, is one of `roots` or lies under one."""
    if not roots:
        raise StatusError("HandleReloadConfigRequest is disabled on this server; the operator "
                          "enables it with --reload_config_allowed_roots=DIR[,DIR]",
                          grpc.StatusCode.PERMISSION_DENIED)
    allowed = [Path(os.path.realpath(root)) for root in roots]
    for model in config.model_config_list.config:
        base = Path(os.path.realpath(model.base_path))
        if not any(base == root or root in base.parents for root in allowed):
            raise StatusError(f"base path {model.base_path} of model {model.name} is outside "
                              f"--reload_config_allowed_roots "
                              f"({','.join(str(root) for root in roots)})",
                              grpc.StatusCode.PERMISSION_DENIED)


class ModelServer:
    def __init__(self, config: model_server_config_pb2.ModelServerConfig,
                 options: ServerOptions = ServerOptions(),
                 log: Callable[[str], None] = LOG.info):
        self.options, self.log = options, log
        self.metrics = ServerMetrics()
        self.inflight = InflightBudget(options.max_inflight_bytes)
        self.health = health.HealthServicer()
        self._batchers: dict[tuple, tuple[Servable, Batcher]] = {}
        self._batchers_lock = threading.Lock()
        self.manager = ModelManager(config, log=log, on_change=self._on_models_changed,
                                    max_num_load_retries=options.max_num_load_retries,
                                    load_retry_interval_s=options.load_retry_interval_s,
                                    allow_version_labels_for_unavailable_models=(
                                        options.allow_version_labels_for_unavailable_models),
                                    warm_up=options.warm_up,
                                    session_threads=options.session_threads)
        self._grpc: grpc.Server | None = None
        self._rest = None
        self.grpc_port = self.rest_port = 0

    # The API, independent of the wire

    def resolve(self, spec) -> Servable:
        version = spec.version.value if spec.HasField("version") else None
        return self.manager.resolve(spec.name, version, spec.version_label)

    def predict(self, request: predict_pb2.PredictRequest,
                timeout_ms: int | None = None) -> predict_pb2.PredictResponse:
        """TF Serving's Predict: servable, then signature, inputs and output_filter, all
        checked before the model runs; only the filtered outputs are fetched
        (PredictWithModelSpec, predict_impl.cc; RunPredict, predict_util.cc). `timeout_ms`
        bounds the run as a gRPC deadline does in TF Serving (prediction_service_impl.cc)."""
        _require_model_spec(request)
        servable = self.resolve(request.model_spec)
        signature = servable.check_signature(request.model_spec.signature_name)
        # PreProcessPrediction's order: the method name (when checked), input names,
        # output_filter, then each tensor's parse.
        if self.options.signature_method_name_check:
            servable.check_method_name(signature)
        servable.check_input_names(signature, list(request.inputs))
        wanted = servable.check_output_filter(signature, request.output_filter)
        # Every input's declared size counts against one request's budget, and the request
        # (its message and its arrays) against the server's, before any array is built.
        cost, budget = request.ByteSize(), self.options.max_message_bytes
        specs = servable.input_specs(signature)
        for key, proto in request.inputs.items():
            # The dtype first: a 15-byte string tensor declaring millions of elements would
            # otherwise be built (TF Serving builds it, then fails the run).
            servable.check_dtype(key, proto.dtype, specs[key][0])
            size = declared_bytes(proto, key, budget)
            budget, cost = budget - size, cost + size
        with self.inflight.hold(cost, "this request"):
            inputs = {key: parse_tensor(proto, key, self.options.max_message_bytes)
                      for key, proto in request.inputs.items()}
            outputs = self.run(servable, signature, inputs, wanted, timeout_ms)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature
        as_content = self.options.serialization_as_tensor_content
        for key in wanted:
            response.outputs[key].CopyFrom(tensor_proto(outputs[key], as_content))
        return response

    def run(self, servable: Servable, signature: str, inputs: dict[str, np.ndarray],
            outputs: list[str] | None = None,
            timeout_ms: int | None = None) -> dict[str, np.ndarray]:
        """Checks and runs one request, through the signature's batcher when batching is on
        (a batch runs every output and has no single deadline)."""
        servable.check_inputs(signature, inputs)
        limit = self.options.max_request_batch_size
        for key, array in inputs.items():  # gRPC and REST alike, before the model runs
            if array.ndim and array.shape[0] > limit:
                raise StatusError(f"input {key} has a batch of {array.shape[0]}; one request may "
                                  f"ask for at most {limit} (--max_request_batch_size)",
                                  grpc.StatusCode.RESOURCE_EXHAUSTED)
        if self.options.batching is None:
            return servable.run(signature, inputs, outputs, timeout_ms)
        return self._batcher(servable, signature).submit(inputs)

    def _batcher(self, servable: Servable, signature: str) -> Batcher:
        key = (servable.name, servable.version, signature)
        with self._batchers_lock:
            current = self._batchers.get(key)
            if current is None or current[0] is not servable:
                batcher = Batcher(lambda inputs: servable.run(signature, inputs),
                                  self.options.batching, self.metrics.observe_batch)
                self._batchers[key] = current = (servable, batcher)
            return current[1]

    def check_classify_or_regress(self, request, method: str):
        """Classify and Regress as TF Serving answers them for this project's models, whose
        signatures are all predict signatures: the signature's own checks fail first, with
        INVALID_ARGUMENT and TF Serving's words (GetClassificationSignature, classifier.cc;
        GetRegressionSignature, regressor.cc). Past them (a true classify or regress
        signature, which no SoundStorm export has) the call is UNIMPLEMENTED here."""
        _require_model_spec(request)
        servable = self.resolve(request.model_spec)
        name = request.model_spec.signature_name or "serving_default"
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise invalid_argument(f"No signature was found with the name: {name}")
        if len(signature.inputs) != 1:
            raise invalid_argument("Expected one input Tensor.")
        if method == "classify":
            if len(signature.outputs) not in (1, 2):
                raise invalid_argument(f"Expected one or two output Tensors, found "
                                       f"{len(signature.outputs)}")
            if "inputs" not in signature.inputs:
                raise invalid_argument(f"No classification inputs found in SignatureDef: "
                                       f"{signature}")
            if not {"classes", "scores"} & set(signature.outputs):
                raise invalid_argument('Expected classification signature outputs to contain at '
                                       'least one of "classes" or "scores". Signature was: '
                                       f"{signature}")
        else:
            if len(signature.outputs) != 1:
                raise invalid_argument("Expected one output Tensor.")
            if "inputs" not in signature.inputs:
                raise invalid_argument(f"No regression inputs found in SignatureDef: {signature}")
            if "outputs" not in signature.outputs:
                raise invalid_argument(f"No regression outputs found in SignatureDef: "
                                       f"{signature}")
        raise StatusError(f"{method} signatures (tf.Example inputs) are not served by this "
                          "server", grpc.StatusCode.UNIMPLEMENTED)

    def check_multi_inference(self, request):
        """MultiInference's tasks are classify and regress tasks: each fails on SoundStorm's
        predict signatures as Classify and Regress do (INVALID_ARGUMENT); no tasks is
        INVALID_ARGUMENT too (servables/tensorflow/multi_inference.cc)."""
        from tensorflow_serving.apis import classification_pb2, regression_pb2
        if not request.tasks:
            raise invalid_argument("Empty tasks")
        for task in request.tasks:
            method = {"tensorflow/serving/classify": "classify",
                      "tensorflow/serving/regress": "regress"}.get(task.method_name)
            if method is None:
                raise invalid_argument(f"Unsupported signature method_name: {task.method_name}")
            single = (classification_pb2.ClassificationRequest() if method == "classify"
                      else regression_pb2.RegressionRequest())
            single.model_spec.CopyFrom(task.model_spec)
            self.check_classify_or_regress(single, method)

    def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest
                 ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """Every SignatureDef, `__saved_model_init_op` included, packed in an Any; the
        fields are checked before the model is looked up (get_model_metadata_impl.cc)."""
        _require_model_spec(request)
        if not request.metadata_field:
            raise invalid_argument("GetModelMetadataRequest must specify at least one "
                                   "metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise invalid_argument(f"Metadata field {field} is not supported")
        servable = self.resolve(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in servable.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature_def)
        packed = any_pb2.Any()
        packed.Pack(signature_map)
        response.metadata["signature_def"].CopyFrom(packed)
        return response

    def model_status(self, request: get_model_status_pb2.GetModelStatusRequest
                     ) -> get_model_status_pb2.GetModelStatusResponse:
        """A version's status, or every version's newest first; a version label is ignored,
        as TF Serving's GetModelStatusWithModelSpec reads only `version`."""
        _require_model_spec(request)
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        return get_model_status_pb2.GetModelStatusResponse(
            model_version_status=self.manager.status(spec.name, version))

    def reload_config(self, request: model_management_pb2.ReloadConfigRequest
                      ) -> model_management_pb2.ReloadConfigResponse:
        """HandleReloadConfigRequest, for the operator only: refused (PERMISSION_DENIED,
        nothing changed) unless every base path lies under --reload_config_allowed_roots."""
        check_reload_allowed(request.config, self.options.reload_config_roots)
        self.manager.reload_config(request.config)
        return model_management_pb2.ReloadConfigResponse(status=status_pb2.StatusProto())

    def _on_models_changed(self) -> None:
        available = self.manager.available()
        for name, versions in available.items():
            self.metrics.set_versions_available(name, len(versions))
        with self._batchers_lock:  # drop batchers of versions no longer loaded
            for key in [k for k in self._batchers if k[1] not in available.get(k[0], [])]:
                self._batchers.pop(key)[1].close()

    # Lifecycle

    def start(self) -> "ModelServer":
        """Checks the ports, loads the models, then binds and serves.

        The ports are checked first, so a busy port fails at once with UNAVAILABLE naming
        it, not after minutes of loading; they open only once the models have loaded, as
        TF Serving's do (ServerCore::Create comes before the gRPC address in
        Server::BuildAndStart), so nothing connects to a server that cannot answer yet.
        The gRPC port is exclusive (no SO_REUSEPORT): a second server can never take part
        of the first one's traffic (a deliberate difference: TF Serving leaves it on).
        """
        for what, port in (("gRPC", self.options.port), ("REST", self.options.rest_api_port)):
            _check_port_free(self.options.host, port, what)
        self.manager.poll()  # load what is there before taking traffic
        limit = self.options.max_message_bytes
        # RPCs past twice the threads are refused at once (RESOURCE_EXHAUSTED, "Concurrent RPC
        # limit exceeded!") instead of queueing without bound, each holding its message: the
        # memory of requests in flight is at most 2 x grpc_threads x max_message_bytes.
        self._grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(self.options.grpc_threads),
            maximum_concurrent_rpcs=2 * self.options.grpc_threads,
            options=[("grpc.max_receive_message_length", limit),
                     ("grpc.max_send_message_length", limit), ("grpc.so_reuseport", 0),
                     *self.options.grpc_channel_arguments])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self), self._grpc)
        services = [prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]
                    .full_name, model_service_pb2.DESCRIPTOR.services_by_name["ModelService"]
                    .full_name, reflection.SERVICE_NAME]
        if self.options.grpc_healthcheck:
            # --enable_grpc_healthcheck_service: gRPC's default health service, with these two
            # short names marked SERVING once, never updated (server.cc BuildAndStart).
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
            for name in ("ModelService", "PredictionService"):
                self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
            services.append(health.SERVICE_NAME)
        # Server reflection, on in TF Serving since 2.15.1 (grpc++_reflection linked in).
        reflection.enable_server_reflection(services, self._grpc)
        address = f"{self.options.host}:{self.options.port}"
        try:
            if self.options.ssl is not None:
                self.grpc_port = self._grpc.add_secure_port(address,
                                                            _credentials(self.options.ssl))
            else:
                self.grpc_port = self._grpc.add_insecure_port(address)
        except RuntimeError:
            self.grpc_port = 0
        if not self.grpc_port:
            raise StatusError(f"cannot bind the gRPC port {address}: it is in use or not "
                              "available to this process", grpc.StatusCode.UNAVAILABLE)
        if self.options.grpc_socket_path:
            try:
                bound = self._grpc.add_insecure_port(f"unix:{self.options.grpc_socket_path}")
            except RuntimeError:
                bound = 0
            if not bound:
                raise StatusError(f"cannot listen on the Unix socket "
                                  f"{self.options.grpc_socket_path}", grpc.StatusCode.UNAVAILABLE)
        if self.options.rest_api_port or self.options.rest_api_port == -1:
            from soundstorm.runtime.serving.rest import RestServer
            self._rest = RestServer(self, self.options.host, max(self.options.rest_api_port, 0))
            self.rest_port = self._rest.port
        self.manager.start_polling(self.options.poll_seconds)
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
        self.log(f"gRPC on {self.options.host}:{self.grpc_port}"
                 + (f", REST on {self.rest_port}" if self._rest else "")
                 + f"; serving {self.manager.available()}")
        return self

    def stop(self, grace_seconds: float = 30.0) -> None:
        """Graceful: stop accepting, let in-flight requests finish (up to the grace)."""
        if self.options.grpc_healthcheck:
            self.health.enter_graceful_shutdown()
        if self._rest is not None:
            self._rest.stop()
        if self._grpc is not None:
            self._grpc.stop(grace_seconds).wait()
        self.manager.stop()
        with self._batchers_lock:
            for _, batcher in self._batchers.values():
                batcher.close()
            self._batchers.clear()

    def wait(self) -> None:
        self._grpc.wait_for_termination()


def _check_port_free(host: str, port: int, what: str) -> None:
    """UNAVAILABLE naming the port when something listens on it (0 and -1: any port)."""
    if port <= 0:
        return
    import socket
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the servers bind: SO_REUSEADDR, so only a live listener (not TIME_WAIT) blocks.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StatusError(f"cannot bind the {what} port {host}:{port}: {error.strerror}",
                              grpc.StatusCode.UNAVAILABLE) from None


def _require_model_spec(request) -> None:
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")


def _credentials(ssl_config) -> grpc.ServerCredentials:
    """TF Serving's SSLConfig holds PEM contents (not paths)."""
    return grpc.ssl_server_credentials(
        [(ssl_config.server_key.encode(), ssl_config.server_cert.encode())],
        root_certificates=ssl_config.custom_ca.encode() or None,
        require_client_auth=ssl_config.client_verify)


def _serve(server: ModelServer, api: str, context, call, request):
    """Runs one RPC: errors become the status TF Serving would give; metrics recorded under
    `api` ("" for the calls TF Serving does not count)."""
    started = time.perf_counter()
    model = request.model_spec.name if hasattr(request, "model_spec") else ""
    version, code = "", grpc.StatusCode.OK
    try:
        response = call(request)
        if hasattr(response, "model_spec") and response.model_spec.HasField("version"):
            version = str(response.model_spec.version.value)
        return response
    except Exception as error:  # never let a request take the server down
        code = status_code_of(error)
        context.abort(code, message_of(error))
    finally:
        if api:  # TF Serving counts Predict, Classify and Regress (prediction_service_impl.cc)
            server.metrics.observe(model, version, api, code.name,
                                   time.perf_counter() - started)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, server: ModelServer):
        self.server = server

    def Predict(self, request, context):
        # The deadline bounds the run (RunOptions.timeout_in_ms, prediction_service_impl.cc).
        remaining = context.time_remaining()
        timeout_ms = None if remaining is None or remaining > 1e8 else remaining * 1000
        return _serve(self.server, "Predict", context,
                      lambda r: self.server.predict(r, timeout_ms), request)

    def Classify(self, request, context):
        return _serve(self.server, "Classify", context,
                      lambda r: self.server.check_classify_or_regress(r, "classify"), request)

    def Regress(self, request, context):
        return _serve(self.server, "Regress", context,
                      lambda r: self.server.check_classify_or_regress(r, "regress"), request)

    def MultiInference(self, request, context):
        return _serve(self.server, "", context, self.server.check_multi_inference, request)

    def GetModelMetadata(self, request, context):
        return _serve(self.server, "", context, self.server.metadata, request)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, server: ModelServer):
        self.server = server

    def GetModelStatus(self, request, context):
        return _serve(self.server, "", context, self.server.model_status, request)

    def HandleReloadConfigRequest(self, request, context):
        return _serve(self.server, "", context, self.server.reload_config, request)


def single_model_config(name: str, base_path: Path) -> model_server_config_pb2.ModelServerConfig:
    """The config `--model_name/--model_base_path` stand for."""
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name, model.base_path, model.model_platform = name, str(Path(base_path).resolve()), \
        "tensorflow"
    return config


def read_model_config(path: Path) -> model_server_config_pb2.ModelServerConfig:
    """A `--model_config_file`: ModelServerConfig in text format, parsed by TF Serving's classes."""
    from google.protobuf import text_format
    path = Path(path)
    if not path.is_file():
        raise not_found(f"no model config file at {path}")
    try:
        config = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise invalid_argument(f"{path} is not a ModelServerConfig text proto: {error}") from None
    return config
