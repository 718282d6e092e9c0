"""numpy arrays to TensorProto as TF Serving writes a response's outputs.

By default tensorflow_model_server fills the typed repeated field of each dtype
(`Tensor::AsProtoField`: `float_val`, `int_val`, ...), and writes the packed
`tensor_content` only with `--enable_serialization_as_tensor_content`
(PostProcessPredictionResult, servables/tensorflow/predict_util.cc). Clients
that read `.int_val` depend on the first; `tf.make_ndarray` reads both.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

# dtype -> the TensorProto field Tensor::AsProtoField fills (tensorflow/core/framework/tensor.cc).
_TYPED_FIELD = {
    tf.float32: "float_val", tf.float64: "double_val",
    tf.int32: "int_val", tf.int16: "int_val", tf.int8: "int_val", tf.uint8: "int_val",
    tf.uint16: "int_val", tf.int64: "int64_val", tf.uint32: "uint32_val",
    tf.uint64: "uint64_val", tf.bool: "bool_val", tf.string: "string_val",
}


def tensor_proto(array: np.ndarray, as_content: bool = False) -> tensor_pb2.TensorProto:
    """`array` as a TensorProto: typed fields (default) or `tensor_content` (`as_content`).

    Raises ValueError for a dtype TF Serving has no typed field for here (half and
    bfloat16 go in `half_val` as bit patterns; complex types are not served).
    """
    array = np.asarray(array)
    dtype = tf.string if array.dtype.kind in "SUO" else tf.as_dtype(array.dtype)
    proto = tensor_pb2.TensorProto(
        dtype=dtype.as_datatype_enum,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape]))
    flat = array.reshape(-1)
    if as_content and dtype != tf.string:  # Tensor::AsProtoTensorContent: the raw bytes
        proto.tensor_content = np.ascontiguousarray(flat).astype(
            array.dtype.newbyteorder("<")).tobytes()
        return proto
    if dtype in (tf.float16, tf.bfloat16):
        proto.half_val.extend(flat.view(np.uint16).astype(np.int32).tolist())
    elif dtype == tf.string:
        proto.string_val.extend(value if isinstance(value, bytes) else str(value).encode()
                                for value in flat)
    elif dtype in _TYPED_FIELD:
        getattr(proto, _TYPED_FIELD[dtype]).extend(flat.tolist())
    else:
        raise ValueError(f"no typed TensorProto field for {dtype.name}")
    return proto
