"""The model server: TF Serving's gRPC services over a ModelManager, with batching and metrics.

`ModelServer` holds the logic (resolve a ModelSpec, check and run a request,
report status and metadata) in plain methods; the gRPC servicers and the REST
handler (rest.py) only translate to and from their wire formats, so both
answer alike.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import time
from pathlib import Path
from typing import Callable

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import any_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_management_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, status_pb2)
from tensorflow_serving.config import model_server_config_pb2

from runtime.serving.batching import Batcher, BatchingOptions
from protos.status import invalid_argument, not_found
from runtime.savedmodel.tf_status import message_of, status_code_of
from runtime.serving.manager import ModelManager
from runtime.serving.metrics import ServerMetrics
from runtime.savedmodel.servable import Servable

# 64 MiB: a 60 s request of the paper's model is ~100 KB, its answer ~150 KB; far past that
# is a mistake or an attack, answered RESOURCE_EXHAUSTED by gRPC itself.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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
    rest_timeout_seconds: float = 600.0


class ModelServer:
    def __init__(self, config: model_server_config_pb2.ModelServerConfig,
                 options: ServerOptions = ServerOptions(), log: Callable[[str], None] = print):
        self.options, self.log = options, log
        self.metrics = ServerMetrics()
        self.health = health.HealthServicer()
        self._batchers: dict[tuple, tuple[Servable, Batcher]] = {}
        self._batchers_lock = threading.Lock()
        self.manager = ModelManager(config, log=log, on_change=self._on_models_changed)
        self._grpc: grpc.Server | None = None
        self._rest = None
        self.grpc_port = self.rest_port = 0

    # The API, independent of the wire

    def resolve(self, spec) -> Servable:
        version = spec.version.value if spec.HasField("version") else None
        return self.manager.resolve(spec.name, version, spec.version_label)

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        servable = self.resolve(request.model_spec)
        signature = servable.check_signature(request.model_spec.signature_name)
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        outputs = self.run(servable, signature, inputs)
        wanted = list(request.output_filter) or list(outputs)
        unknown = set(wanted) - set(outputs)
        if unknown:
            raise invalid_argument(f"output_filter names {sorted(unknown)}, not outputs of "
                                   f"signature {signature} ({sorted(outputs)})")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature
        for key in wanted:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
        return response

    def run(self, servable: Servable, signature: str,
            inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        servable.check_inputs(signature, inputs)
        if self.options.batching is None:
            return servable.run(signature, inputs)
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

    def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest
                 ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        fields = list(request.metadata_field) or ["signature_def"]
        if fields != ["signature_def"]:
            raise invalid_argument(f"metadata_field must be ['signature_def'], got {fields}")
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
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        if spec.version_label:
            version = self.resolve(spec).version
        return get_model_status_pb2.GetModelStatusResponse(
            model_version_status=self.manager.status(spec.name, version))

    def reload_config(self, request: model_management_pb2.ReloadConfigRequest
                      ) -> model_management_pb2.ReloadConfigResponse:
        self.manager.reload_config(request.config)
        return model_management_pb2.ReloadConfigResponse(status=status_pb2.StatusProto())

    def _on_models_changed(self) -> None:
        available = self.manager.available()
        for name, versions in available.items():
            self.metrics.versions_available.labels(name).set(len(versions))
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING if versions
                            else health_pb2.HealthCheckResponse.NOT_SERVING)
        self.health.set("", health_pb2.HealthCheckResponse.SERVING
                        if available and all(available.values())
                        else health_pb2.HealthCheckResponse.NOT_SERVING)
        with self._batchers_lock:  # drop batchers of versions no longer loaded
            for key in [k for k in self._batchers if k[1] not in available.get(k[0], [])]:
                self._batchers.pop(key)[1].close()

    # Lifecycle

    def start(self) -> "ModelServer":
        self.manager.poll()  # load what is there before taking traffic
        self.manager.start_polling(self.options.poll_seconds)
        limit = self.options.max_message_bytes
        self._grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(self.options.grpc_threads),
            options=[("grpc.max_receive_message_length", limit),
                     ("grpc.max_send_message_length", limit)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self), self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        address = f"{self.options.host}:{self.options.port}"
        if self.options.ssl is not None:
            self.grpc_port = self._grpc.add_secure_port(address, _credentials(self.options.ssl))
        else:
            self.grpc_port = self._grpc.add_insecure_port(address)
        self._grpc.start()
        if self.options.rest_api_port or self.options.rest_api_port == -1:
            from runtime.serving.rest import RestServer
            self._rest = RestServer(self, self.options.host,
                                    max(self.options.rest_api_port, 0)).start()
            self.rest_port = self._rest.port
        self.log(f"[serve] gRPC on {self.options.host}:{self.grpc_port}"
                 + (f", REST on {self.rest_port}" if self._rest else "")
                 + f"; serving {self.manager.available()}")
        return self

    def stop(self, grace_seconds: float = 30.0) -> None:
        """Graceful: stop accepting, let in-flight requests finish (up to the grace)."""
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


def _credentials(ssl_config) -> grpc.ServerCredentials:
    """TF Serving's SSLConfig holds PEM contents (not paths)."""
    return grpc.ssl_server_credentials(
        [(ssl_config.server_key.encode(), ssl_config.server_cert.encode())],
        root_certificates=ssl_config.custom_ca.encode() or None,
        require_client_auth=ssl_config.client_verify)


def _serve(server: ModelServer, api: str, context, call, request):
    """Runs one RPC: errors become the status TF Serving would give; metrics recorded."""
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
        server.metrics.observe(model, version, api, code.name, time.perf_counter() - started)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, server: ModelServer):
        self.server = server

    def Predict(self, request, context):
        return _serve(self.server, "predict", context, self.server.predict, request)

    def GetModelMetadata(self, request, context):
        return _serve(self.server, "metadata", context, self.server.metadata, request)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, server: ModelServer):
        self.server = server

    def GetModelStatus(self, request, context):
        return _serve(self.server, "status", context, self.server.model_status, request)

    def HandleReloadConfigRequest(self, request, context):
        return _serve(self.server, "reload", context, self.server.reload_config, request)


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
