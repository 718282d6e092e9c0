"""TF Serving warm-up records: assets.extra/tf_serving_warmup_requests.

TF Serving replays these PredictionLog records when it loads a version, before
the version takes traffic, so the first real request of each (bucket, batch
size) does not pay for XLA compilation. Our model server replays the same file.
Its place and record limit: runtime.savedmodel.layout. Everything here is read
from the model contract; the export writes both sets, its own and the TPU
version's (export/tpu.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from soundstorm.protos import model_contract_pb2


def warmup_inputs(contract: model_contract_pb2.ModelContract, frames: int,
                  batch: int) -> dict[str, np.ndarray]:
    """A valid generate request of `frames` total frames, full-length prompt, for compiling:
    semantic_tokens int32 [batch, frames / frames_per_token], prompt_tokens int32
    [batch, max_prompt_frames, Q], the per-example vectors [batch] (int32; float32
    temperatures at the contract's defaults)."""
    prompt_frames, levels = contract.max_prompt_frames, contract.acoustic.num_levels
    return {
        "semantic_tokens": np.zeros((batch, frames // contract.semantic.frames_per_token),
                                    np.int32),
        "prompt_tokens": np.zeros((batch, prompt_frames, levels), np.int32),
        "prompt_lengths": np.full((batch,), prompt_frames, np.int32),
        "lengths": np.full((batch,), frames, np.int32),
        "seeds": np.arange(batch, dtype=np.int32),
        "temperature": np.full((batch,), contract.default_temperature, np.float32),
        "choice_temperature": np.full((batch,), contract.default_choice_temperature, np.float32),
    }


def _logs(contract, shapes: Iterable[tuple[str, int, int]]) -> list:
    logs = []
    for name, frames, batch in shapes:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = contract.model_name
        request.model_spec.signature_name = name
        for key, array in warmup_inputs(contract, frames, batch).items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def warmup_logs(contract: model_contract_pb2.ModelContract,
                batch_sizes: Iterable[int]) -> list[prediction_log_pb2.PredictionLog]:
    """The export's records: one per (shape-polymorphic generate signature, bucket, batch size).

    The TPU bucket signatures are left to the converted version's records (tpu_warmup_logs):
    a CPU or GPU server serves serving_default, and compiling one more decoding program per
    bucket at every load would double its start-up for signatures it is not sent.
    """
    return _logs(contract, [(signature.name, frames, batch) for signature in contract.signatures
                            if not signature.fixed_frames for frames in contract.frame_buckets
                            for batch in batch_sizes])


def tpu_warmup_logs(contract: model_contract_pb2.ModelContract) -> list:
    """A TPU version's records: every TPU program, i.e. each bucket signature at each of the
    converter's allowed batch sizes (contract.export_info.tpu_batch_sizes)."""
    return _logs(contract, [(signature.name, signature.fixed_frames, batch)
                            for signature in contract.signatures if signature.fixed_frames
                            for batch in contract.export_info.tpu_batch_sizes])


def write_warmup(path: Path, logs) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def read_warmup(path: Path) -> list[prediction_log_pb2.PredictionLog]:
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(path))]
