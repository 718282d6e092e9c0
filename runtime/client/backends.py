"""Where generation runs: a SavedModel in this process, or a TF Serving endpoint over gRPC.

Both take the same batch-first numpy inputs of a generate signature and return
its outputs, and both read the model contract from the `metadata` signature,
so `Client` works the same against either (and against the real TF Serving).
"""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np

from soundstorm.protos import model_contract_pb2
from soundstorm.protos.status import StatusError
from soundstorm.runtime.client.errors import ClientError
from soundstorm.runtime.savedmodel.layout import find_version_dir

DEFAULT_RETRIES = 3
DEFAULT_DEADLINE_SECONDS = 600.0
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# How long the first call waits for a server to accept a connection before UNAVAILABLE:
# a server that is up answers in milliseconds; a wrong address should not cost the deadline.
DEFAULT_CONNECT_SECONDS = 20.0


def is_target(target) -> bool:
    """A gRPC target the client can dial: HOST:PORT, [IPv6]:PORT (port 1-65535), or a URI
    such as dns:///NAME:PORT or unix:PATH."""
    if not isinstance(target, str):
        return False
    if "://" in target or target.startswith(("unix:", "unix-abstract:")):
        return True
    host, _, port = target.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536
# Keepalive that a server with gRPC's default enforcement accepts (doc/keepalive.md in
# grpc/grpc; TF Serving's server.cc leaves these at their defaults): a server takes a ping
# as abuse when it comes within GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS
# (300 s) of the last, or with no call in flight (GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS 0),
# and after two such strikes closes the connection (GOAWAY "too_many_pings"). So: pings only
# while a call is in flight (a generation can be silent for minutes), 6 minutes apart.
KEEPALIVE_TIME_MS = 360_000
KEEPALIVE_TIMEOUT_MS = 20_000


def retry_service_config(retries: int) -> str:
    """gRPC's own retry policy (gRFC A6) for every PredictionService call, as a service
    config: up to `retries` more attempts on UNAVAILABLE only (a server starting, restarting
    or shedding load; any other code is an answer), backing off 0.5 s, 1 s, 2 s ... (at most
    8 s, with gRPC's jitter). The call's deadline bounds all attempts together."""
    import json
    policy = {"maxAttempts": retries + 1, "initialBackoff": "0.5s", "maxBackoff": "8s",
              "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
    return json.dumps({"methodConfig": [{
        "name": [{"service": "tensorflow.serving.PredictionService"}],
        **({"retryPolicy": policy} if retries > 0 else {})}]})


def _contract_from(outputs: dict[str, np.ndarray]) -> model_contract_pb2.ModelContract:
    return model_contract_pb2.ModelContract.FromString(bytes(outputs["contract"][0]))


class EmbeddedBackend:
    """The SavedModel loaded in this process (TensorFlow runs the decoding loop), through the
    same Servable the model server uses (runtime.savedmodel).

    `path` is the version folder loaded (the newest under a base path); `version` its number,
    or None for a SavedModel folder outside TF Serving's layout.
    """

    def __init__(self, model_dir: Path):
        from soundstorm.runtime.savedmodel.layout import parse_version
        from soundstorm.runtime.savedmodel.servable import Servable
        self.path = find_version_dir(model_dir)
        self.version = parse_version(self.path.name)
        self._servable = Servable(self.path.parent.name, self.version, self.path)

    def generate(self, inputs: dict[str, np.ndarray], signature: str = "serving_default"
                 ) -> dict[str, np.ndarray]:
        from soundstorm.runtime.savedmodel.tf_status import message_of, status_code_of
        try:
            signature = self._servable.check_signature(signature)
            self._servable.check_inputs(signature, inputs)
            return self._servable.run(signature, inputs)
        except StatusError as error:
            raise ClientError(error.code, error.message) from None
        except Exception as error:  # TF's errors (the SavedModel's checks) keep their code
            import tensorflow as tf
            if isinstance(error, tf.errors.OpError):
                raise ClientError(status_code_of(error), message_of(error)) from None
            raise

    def warm_up(self) -> tuple[int, float]:
        """Replays the export's warm-up records (compiles every bucket), as TF Serving does."""
        return self._servable.warm_up()

    def contract(self) -> model_contract_pb2.ModelContract:
        return _contract_from(self.generate({"probe": np.zeros(1, np.int32)}, "metadata"))

    def close(self) -> None:
        pass


class GrpcBackend:
    """A TF Serving endpoint (ours or tensorflow_model_server), with the stubs of
    tensorflow-serving-api. `target` may be `dns:///name:port` for a fleet: the channel
    balances round-robin over every address the name resolves to."""

    def __init__(self, target: str, model_name: str = "soundstorm", *, version: int | None = None,
                 version_label: str = "", deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
                 retries: int = DEFAULT_RETRIES, root_certificates: bytes | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 connect_seconds: float | None = None):
        import math
        import numbers

        def refuse(message: str) -> ClientError:
            return ClientError(grpc.StatusCode.INVALID_ARGUMENT, message)
        if not is_target(target):
            raise refuse(f"target must be 'HOST:PORT' (or dns:///NAME:PORT, unix:PATH), got "
                         f"{target!r}")
        if not isinstance(model_name, str) or not model_name:
            raise refuse(f"model_name must be a non-empty str, got {model_name!r}")
        if version is not None and not (isinstance(version, numbers.Integral)
                                        and not isinstance(version, bool) and version >= 0):
            raise refuse(f"version must be an int >= 0 or None, got {version!r}")
        if not isinstance(version_label, str):
            raise refuse(f"version_label must be a str, got {type(version_label).__name__}")
        if root_certificates is not None and not isinstance(root_certificates, bytes):
            raise refuse(f"root_certificates must be PEM bytes, got "
                         f"{type(root_certificates).__name__}")
        if not (isinstance(max_message_bytes, numbers.Integral)
                and not isinstance(max_message_bytes, bool) and 0 < max_message_bytes < 2**31):
            raise refuse(f"max_message_bytes must be an int in [1, 2^31), got "
                         f"{max_message_bytes!r}")
        if not (isinstance(retries, numbers.Integral) and not isinstance(retries, bool)
                and 0 <= retries <= 4):  # gRPC caps maxAttempts at 5
            raise refuse(f"retries must be an int in [0, 4], got {retries!r}")
        for name, value in (("deadline_seconds", deadline_seconds),
                            ("connect_seconds", connect_seconds)):
            if value is not None and not (isinstance(value, (int, float))
                                          and not isinstance(value, bool)
                                          and math.isfinite(value) and value > 0):
                raise refuse(f"{name} must be a finite number > 0, got {value!r}")
        # Imported after the checks: it loads TensorFlow (seconds), which a bad argument
        # should not wait for.
        from tensorflow_serving.apis import prediction_service_pb2_grpc
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
                   ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
                   ("grpc.keepalive_permit_without_calls", 0),
                   ("grpc.enable_retries", 1),
                   ("grpc.service_config", retry_service_config(retries)),
                   ("grpc.lb_policy_name", "round_robin")]
        if root_certificates is not None:
            self._channel = grpc.secure_channel(
                target, grpc.ssl_channel_credentials(root_certificates), options)
        else:
            self._channel = grpc.insecure_channel(target, options)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.target, self.model_name = target, model_name
        self.version, self.version_label = version, version_label
        self.deadline_seconds, self.retries = deadline_seconds, retries
        self.connect_seconds = min(connect_seconds or DEFAULT_CONNECT_SECONDS, deadline_seconds)

    def _request(self, inputs: dict[str, np.ndarray], signature: str):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature
        if self.version is not None:
            request.model_spec.version.value = self.version
        elif self.version_label:
            request.model_spec.version_label = self.version_label
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        return request

    def generate(self, inputs: dict[str, np.ndarray], signature: str = "serving_default"
                 ) -> dict[str, np.ndarray]:
        """One Predict call (retried by gRPC on UNAVAILABLE within the deadline); raises
        ClientError with the server's code and message."""
        import tensorflow as tf
        request = self._request(inputs, signature)
        try:
            response = self._stub.Predict(request, timeout=self.deadline_seconds)
        except grpc.RpcError as error:
            raise ClientError(error.code(), f"{self.target}: {error.details()}") from None
        return {key: tf.make_ndarray(proto) for key, proto in response.outputs.items()}

    def contract(self) -> model_contract_pb2.ModelContract:
        """The model's contract (its metadata signature): the first call, so it first waits
        (up to the deadline) for the channel to connect, and names an unreachable target
        as such (UNAVAILABLE) rather than as the deadline that retries against it ran into."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.connect_seconds)
        except grpc.FutureTimeoutError:
            raise ClientError(grpc.StatusCode.UNAVAILABLE,
                              f"{self.target}: no server answers there (waited "
                              f"{self.connect_seconds:g} s to connect)") from None
        return _contract_from(self.generate({"probe": np.zeros(1, np.int32)}, "metadata"))

    def close(self) -> None:
        self._channel.close()
