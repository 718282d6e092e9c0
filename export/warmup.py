"""TF Serving warm-up records: assets.extra/tf_serving_warmup_requests.

TF Serving replays these PredictionLog records when it loads a version, before
the version takes traffic, so the first real request of each (bucket, batch
size) does not pay for XLA compilation. Our model server replays the same file.
Its place and record limit: runtime.savedmodel.layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from export.config import ResolvedExport

def warmup_inputs(resolved: ResolvedExport, frames: int, batch: int) -> dict[str, np.ndarray]:
    """A valid generate request of `frames` total frames, full-length prompt, for compiling."""
    config = resolved.model
    return {
        "semantic_tokens": np.zeros((batch, frames // config.frames_per_semantic_token), np.int32),
        "prompt_tokens": np.zeros((batch, resolved.max_prompt_frames, config.num_levels), np.int32),
        "prompt_lengths": np.full((batch,), resolved.max_prompt_frames, np.int32),
        "lengths": np.full((batch,), frames, np.int32),
        "seeds": np.arange(batch, dtype=np.int32),
        "temperature": np.full((batch,), resolved.export.default_temperature, np.float32),
        "choice_temperature": np.full((batch,), resolved.export.default_choice_temperature,
                                      np.float32),
    }


def warmup_logs(resolved: ResolvedExport) -> list[prediction_log_pb2.PredictionLog]:
    """One record per (generate signature, bucket, batch size)."""
    shapes = [(name, frames) for name in resolved.decodings for frames in resolved.frame_buckets]
    shapes += list(resolved.static_signatures.items())
    logs = []
    for name, frames in shapes:
        for batch in resolved.export.warmup_batch_sizes:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = resolved.export.model_name
            request.model_spec.signature_name = name
            for key, array in warmup_inputs(resolved, frames, batch).items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
            logs.append(prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup(path: Path, logs) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def read_warmup(path: Path) -> list[prediction_log_pb2.PredictionLog]:
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(path))]
