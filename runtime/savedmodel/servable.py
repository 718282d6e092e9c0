"""One loaded model version: its SavedModel's signatures, callable with numpy inputs."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow.python.util import deprecation

from soundstorm.protos.status import StatusError, invalid_argument
from soundstorm.runtime.savedmodel.layout import MAX_WARMUP_RECORDS, SAVED_MODEL_FILE, WARMUP_FILE
from soundstorm.runtime.savedmodel.tf_status import message_of, status_code_of


def read_signature_defs(version_dir: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """Every SignatureDef of the "serve" meta graph, `__saved_model_init_op` included, as
    TF Serving's GetModelMetadata reports them (SavedModelGetSignatureDef,
    servables/tensorflow/get_model_metadata_impl.cc, copies the map unfiltered)."""
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString((version_dir / SAVED_MODEL_FILE).read_bytes())
    except DecodeError:
        # TensorFlow's words and code (ReadBinaryProto, tsl/platform/env.cc).
        raise StatusError(f"Can't parse {version_dir / SAVED_MODEL_FILE} as binary proto",
                          grpc.StatusCode.DATA_LOSS) from None
    for graph in saved.meta_graphs:
        if "serve" in graph.meta_info_def.tags:
            return dict(graph.signature_def)
    # TF answers NOT_FOUND here too (tensorflow/cc/saved_model/reader.cc, FindMetaGraphDef).
    raise StatusError(f"{version_dir} has no meta graph tagged 'serve'", grpc.StatusCode.NOT_FOUND)


# TF's internal entry for the SavedModel's initialiser: listed in metadata, not a model API.
INIT_OP_SIGNATURE = "__saved_model_init_op"
# signature_constants.py: the method names Predict accepts when the check is on.
PREDICT_METHOD_NAMES = ("tensorflow/serving/predict", "tensorflow/serving/classify",
                        "tensorflow/serving/regress")


class Servable:
    """A SavedModel version loaded in this process the way tensorflow_model_server loads it:
    a TF1 Session over the "serve" meta graph (its init op run at load), each request one
    `Session.run` that feeds the SignatureDef's input tensors and fetches only the outputs
    asked for (servables/tensorflow/predict_util.cc, RunPredict).

    Loading raises StatusError for a version that cannot serve: DATA_LOSS for a corrupt
    saved_model.pb, NOT_FOUND without a "serve" meta graph, and TensorFlow's own code for
    variables or ops it cannot load.
    """

    def __init__(self, name: str, version: int | None, version_dir: Path,
                 intra_op_threads: int = 0, inter_op_threads: int = 0):
        self.name, self.version, self.path = name, version, Path(version_dir)
        self.signature_defs = read_signature_defs(self.path)
        # 0 lets TensorFlow choose (--tensorflow_intra_op_parallelism and inter_op in TF Serving).
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra_op_threads,
                                          inter_op_parallelism_threads=inter_op_threads)
        self._session = tf.compat.v1.Session(graph=tf.Graph(), config=config)
        try:
            # The TF1 loader is TF Serving's path; TF marks it deprecated in favour of TF2's.
            with deprecation.silence():
                tf.compat.v1.saved_model.loader.load(self._session, ["serve"], str(self.path))
        except tf.errors.OpError as error:  # missing or corrupt variables, unknown ops
            self._session.close()
            cause = message_of(error)
            if isinstance(error, (tf.errors.OutOfRangeError, tf.errors.DataLossError)):
                # The restore op read past the end of, or failed the checksum of, a shard.
                cause = f"variables/ is truncated or corrupt ({cause})"
            raise StatusError(f"{self.path}: {cause}", status_code_of(error)) from None

    def input_specs(self, signature: str) -> dict[str, tuple[tf.DType, list[int] | None]]:
        """Alias -> (dtype, shape with -1 for any size; None for unknown rank)."""
        specs = {}
        for alias, info in self.signature_defs[signature].inputs.items():
            shape = (None if info.tensor_shape.unknown_rank
                     else [dim.size for dim in info.tensor_shape.dim])
            specs[alias] = (tf.as_dtype(info.dtype), shape)
        return specs

    def check_signature(self, signature: str) -> str:
        """The signature a request names ("" is serving_default); FAILED_PRECONDITION when
        the model has no such signature (internal::RunPredict, predict_util.cc)."""
        signature = signature or "serving_default"
        if signature not in self.signature_defs or signature == INIT_OP_SIGNATURE:
            raise StatusError(f'Serving signature key "{signature}" not found.',
                              grpc.StatusCode.FAILED_PRECONDITION)
        return signature

    def check_method_name(self, signature: str) -> None:
        """With TF Serving's --enable_signature_method_name_check: INTERNAL unless the
        signature is a predict, classify or regress one (VerifySignature, predict_util.cc)."""
        method = self.signature_defs[signature].method_name
        if method not in PREDICT_METHOD_NAMES:
            raise StatusError(
                "Expected prediction signature method_name to be one of {"
                f"{', '.join(PREDICT_METHOD_NAMES)}}}. Was: {method}", grpc.StatusCode.INTERNAL)

    def check_output_filter(self, signature: str, output_filter) -> list[str]:
        """The outputs to fetch: all for an empty filter; INVALID_ARGUMENT for an alias the
        signature lacks or one named twice (PreProcessPrediction, predict_util.cc)."""
        outputs = self.signature_defs[signature].outputs
        seen = set()
        for alias in output_filter:
            if alias not in outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected to "
                    f"be in the set {{{','.join(sorted(outputs))}}}.")
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        return list(output_filter) or sorted(outputs)

    def check_input_names(self, signature: str, names: list[str]) -> None:
        """INVALID_ARGUMENT unless `names` are the signature's inputs, in TF Serving's words
        (VerifyRequestInputsSize, servables/tensorflow/predict_util.cc)."""
        specs = self.signature_defs[signature].inputs
        missing, extra = set(specs) - set(names), set(names) - set(specs)
        if missing or extra:
            raise invalid_argument(
                f"input size does not match signature: {len(names)}!={len(specs)} "
                f"len({{{','.join(sorted(names))}}}) != len({{{','.join(sorted(specs))}}}). "
                f"Sent extra: {{{','.join(sorted(extra))}}}. "
                f"Missing but required: {{{','.join(sorted(missing))}}}.")

    @staticmethod
    def check_dtype(key: str, dtype_enum: int, want: tf.DType) -> None:
        """INVALID_ARGUMENT unless a request's input has the signature's dtype, in the words
        check_inputs uses; an enum that is no dtype at all is "tensor parsing error: KEY"."""
        try:
            got = tf.as_dtype(dtype_enum)
        except Exception:
            raise invalid_argument(f"tensor parsing error: {key}") from None
        if got != want:
            raise invalid_argument(f"Expects input '{key}' to be {want.name} but {got.name} "
                                   "is provided")

    def check_inputs(self, signature: str, inputs: dict[str, np.ndarray]) -> None:
        """Names (TF Serving's VerifyRequestInputsSize words), dtypes and shapes (which the
        placeholders check at run time in C++; Python's Session.run would raise ValueError)."""
        specs = self.input_specs(signature)
        self.check_input_names(signature, list(inputs))
        for key, (dtype, shape) in specs.items():
            array = inputs[key]
            if tf.as_dtype(array.dtype) != dtype:
                raise invalid_argument(f"Expects input '{key}' to be {dtype.name} but "
                                       f"{tf.as_dtype(array.dtype).name} is provided")
            if shape is not None and (len(shape) != array.ndim or any(
                    want not in (-1, got) for want, got in zip(shape, array.shape))):
                raise invalid_argument(f"input '{key}' has shape {list(array.shape)}, the "
                                       f"signature wants {shape} (-1 = any)")

    def run(self, signature: str, inputs: dict[str, np.ndarray],
            outputs: list[str] | None = None,
            timeout_ms: int | None = None) -> dict[str, np.ndarray]:
        """One Session.run: feeds the inputs, fetches `outputs` (default: all). The
        SavedModel's own checks raise InvalidArgumentError; a run past `timeout_ms` raises
        DeadlineExceededError (RunOptions.timeout_in_ms, as TF Serving passes a deadline)."""
        signature_def = self.signature_defs[signature]
        wanted = outputs if outputs is not None else sorted(signature_def.outputs)
        fetches = {alias: signature_def.outputs[alias].name for alias in wanted}
        feeds = {signature_def.inputs[alias].name: value for alias, value in inputs.items()}
        options = (tf.compat.v1.RunOptions(timeout_in_ms=max(1, int(timeout_ms)))
                   if timeout_ms is not None else None)
        return self._session.run(fetches, feed_dict=feeds, options=options)

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
