"""One loaded model version: its SavedModel's signatures, callable with numpy inputs."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from protos.status import StatusError, invalid_argument
from runtime.savedmodel.layout import MAX_WARMUP_RECORDS, SAVED_MODEL_FILE, WARMUP_FILE
from runtime.savedmodel.tf_status import message_of, status_code_of


def read_signature_defs(version_dir: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the "serve" meta graph, as GetModelMetadata reports them
    (without `__saved_model_init_op`, TF's internal initialiser entry)."""
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString((version_dir / SAVED_MODEL_FILE).read_bytes())
    except DecodeError:
        # TensorFlow's words and code (ReadBinaryProto, tsl/platform/env.cc).
        raise StatusError(f"Can't parse {version_dir / SAVED_MODEL_FILE} as binary proto",
                          grpc.StatusCode.DATA_LOSS) from None
    for graph in saved.meta_graphs:
        if "serve" in graph.meta_info_def.tags:
            return {name: signature for name, signature in graph.signature_def.items()
                    if not name.startswith("__")}
    # TF answers NOT_FOUND here too (tensorflow/cc/saved_model/reader.cc, FindMetaGraphDef).
    raise StatusError(f"{version_dir} has no meta graph tagged 'serve'", grpc.StatusCode.NOT_FOUND)


class Servable:
    """A SavedModel version loaded in this process.

    Loading raises StatusError for a version that cannot serve: DATA_LOSS for a corrupt
    saved_model.pb or missing signatures, NOT_FOUND without a "serve" meta graph, and
    TensorFlow's own code for variables or ops it cannot load.
    """

    def __init__(self, name: str, version: int, version_dir: Path):
        self.name, self.version, self.path = name, version, Path(version_dir)
        self.signature_defs = read_signature_defs(self.path)
        try:
            self._model = tf.saved_model.load(str(self.path))
        except tf.errors.OpError as error:  # missing or corrupt variables, unknown ops
            raise StatusError(f"{self.path}: {message_of(error)}", status_code_of(error)) from None
        self._functions = dict(self._model.signatures)
        missing = set(self.signature_defs) - set(self._functions)
        if missing:
            raise StatusError(f"{self.path}: signatures {sorted(missing)} listed but not loadable",
                              grpc.StatusCode.DATA_LOSS)

    def input_specs(self, signature: str) -> dict[str, tf.TensorSpec]:
        return self._functions[signature].structured_input_signature[1]

    def check_signature(self, signature: str) -> str:
        signature = signature or "serving_default"
        if signature not in self._functions:
            raise invalid_argument(f'Serving signature key "{signature}" not found. '
                                   f"The model has {sorted(self._functions)}")
        return signature

    def check_inputs(self, signature: str, inputs: dict[str, np.ndarray]) -> None:
        """Names, dtypes and ranks against the signature, with TF Serving-like messages."""
        specs = self.input_specs(signature)
        missing, extra = set(specs) - set(inputs), set(inputs) - set(specs)
        if missing or extra:
            raise invalid_argument(
                f"input tensors do not match signature '{signature}': missing {sorted(missing)}, "
                f"unexpected {sorted(extra)}; expected {sorted(specs)}")
        for key, spec in specs.items():
            array = inputs[key]
            if tf.as_dtype(array.dtype) != spec.dtype:
                raise invalid_argument(f"Expects input '{key}' to be {spec.dtype.name} but "
                                       f"{tf.as_dtype(array.dtype).name} is provided")
            if not spec.shape.is_compatible_with(array.shape):
                raise invalid_argument(f"input '{key}' has shape {list(array.shape)}, the "
                                       f"signature wants {spec.shape.as_list()} (None = any)")

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs a signature; the SavedModel's own checks raise InvalidArgumentError."""
        outputs = self._functions[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    def warm_up(self) -> tuple[int, float]:
        """Replays assets.extra/tf_serving_warmup_requests as TF Serving does at load."""
        from tensorflow_serving.apis import prediction_log_pb2

        path = self.path / WARMUP_FILE
        if not path.is_file():
            return 0, 0.0
        started, count = time.perf_counter(), 0
        for record in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            request = log.predict_log.request
            signature = self.check_signature(request.model_spec.signature_name)
            self.run(signature, {key: tf.make_ndarray(proto)
                                 for key, proto in request.inputs.items()})
            count += 1
        return count, time.perf_counter() - started
