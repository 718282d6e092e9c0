"""TensorProtos: a request's inputs parsed within bounds, and outputs written as TF Serving does.

By default tensorflow_model_server fills the typed repeated field of each dtype
(`Tensor::AsProtoField`: `float_val`, `int_val`, ...), and writes the packed
`tensor_content` only with `--enable_serialization_as_tensor_content`
(PostProcessPredictionResult, servables/tensorflow/predict_util.cc). Clients
that read `.int_val` depend on the first; `tf.make_ndarray` reads both.
"""

from __future__ import annotations

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

from soundstorm.protos.status import StatusError, invalid_argument

# What one element of a string tensor costs once built (numpy object array: an 8-byte pointer
# and a 33-byte bytes object at least), counted before anything is built.
STRING_ELEMENT_BYTES = 48

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


def declared_bytes(proto: tensor_pb2.TensorProto, key: str, max_bytes: int) -> int:
    """The bytes the array of a request's TensorProto will take, from its declared dtype and
    shape alone (nothing allocated).

    Raises INVALID_ARGUMENT "tensor parsing error: KEY" (TF Serving's words for a failed
    Tensor::FromProto, predict_util.cc) for an unknown dtype, a negative dimension, or
    `tensor_content` whose length does not match the shape; RESOURCE_EXHAUSTED naming the
    input for more than `max_bytes`. TensorFlow would otherwise build the declared shape
    from a few bytes: typed fields shorter than the shape repeat their last value
    (Tensor::FromProto's fill).
    """
    dims = [dim.size for dim in proto.tensor_shape.dim]
    try:
        dtype = tf.as_dtype(proto.dtype)
        # A string element is a Python object in the array built from it: at least a
        # pointer and a bytes header, however short the string.
        itemsize = (STRING_ELEMENT_BYTES if dtype == tf.string
                    else np.dtype(dtype.as_numpy_dtype).itemsize)
    except Exception:  # TypeError, ValueError, and KeyError for resource and variant dtypes
        raise invalid_argument(f"tensor parsing error: {key}") from None
    if any(size < 0 for size in dims):
        raise invalid_argument(f"tensor parsing error: {key}")
    count = 1
    for size in dims:
        count *= size  # Python ints: no overflow, whatever the declared shape
    nbytes = count * itemsize
    if nbytes > max_bytes:
        raise StatusError(f"input {key} declares shape {dims} ({nbytes} bytes); one "
                          f"request may carry at most {max_bytes} (--max_message_bytes)",
                          grpc.StatusCode.RESOURCE_EXHAUSTED)
    if proto.tensor_content and len(proto.tensor_content) != nbytes:
        raise invalid_argument(f"tensor parsing error: {key}")
    return nbytes


def parse_tensor(proto: tensor_pb2.TensorProto, key: str, max_bytes: int) -> np.ndarray:
    """A request's TensorProto as an array, its cost bounded before anything is allocated
    (declared_bytes's checks and errors); content TensorFlow cannot read as the declared
    tensor is INVALID_ARGUMENT "tensor parsing error: KEY"."""
    declared_bytes(proto, key, max_bytes)
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError):
        raise invalid_argument(f"tensor parsing error: {key}") from None
