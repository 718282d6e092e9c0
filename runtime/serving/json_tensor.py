"""JSON <-> tensors for TF Serving's REST API, as tensorflow/serving's util/json_tensor.cc does it.

Requests: a JSON object with an optional `signature_name` and exactly one of
`instances` (row format: one item per example, stacked on a new first axis) or
`inputs` (columnar: each input's whole tensor). A bare value or list stands for
the only input of a one-input signature; `{"b64": "..."}` is a string tensor's
bytes. Every value must already have the input's type: an int32 takes integer
tokens that fit, never `1.5`, `1.0`, `"7"` or `true` (AddValueToTensor). Every
error is INVALID_ARGUMENT with TF Serving's words (UNIMPLEMENTED for a dtype JSON
cannot carry), so a client sees what tensorflow_model_server would say.

Responses: row format gives `{"predictions": [...]}`, one item per example, the
bare value when the signature has one output and an object keyed by output
alias otherwise (MakeRowFormatJsonFromTensors); columnar gives `{"outputs": ...}`
the same way (MakeColumnarFormatJsonFromTensors). String outputs whose alias
ends in `_bytes` are `{"b64": ...}` (IsNamedTensorBytes); NaN and infinities are
written as the bare tokens NaN and Infinity, as TF Serving writes them.
"""

from __future__ import annotations

import base64
import binascii
import json

import grpc
import numpy as np
import tensorflow as tf

from soundstorm.protos.status import StatusError, invalid_argument

# TF's DataTypeString names, which TF Serving's messages use (tensorflow/core/framework/types.cc).
_DTYPE_NAMES = {tf.float32: "float", tf.float64: "double", tf.int32: "int32", tf.uint8: "uint8",
                tf.int16: "int16", tf.int8: "int8", tf.string: "string", tf.int64: "int64",
                tf.bool: "bool", tf.uint16: "uint16", tf.uint32: "uint32", tf.uint64: "uint64",
                tf.float16: "half", tf.bfloat16: "bfloat16"}
# JsonValueToDebugString cuts a value's text at this many bytes (kMaxJsonDebugStringBytes).
_DEBUG_STRING_BYTES = 256
# AddValueToTensor's range test per integer dtype (rapidjson's IsInt / IsInt64 / IsUint / IsUint64).
_INTEGER_RANGES = {tf.int32: (-2**31, 2**31 - 1), tf.int16: (-2**31, 2**31 - 1),
                   tf.int8: (-2**31, 2**31 - 1), tf.uint8: (-2**31, 2**31 - 1),
                   tf.int64: (-2**63, 2**63 - 1), tf.uint32: (0, 2**32 - 1),
                   tf.uint64: (0, 2**64 - 1), tf.uint16: (-2**31, 2**31 - 1)}


def dtype_name(dtype: tf.DType) -> str:
    return _DTYPE_NAMES.get(dtype, dtype.name)


def debug_string(value) -> str:
    """A JSON value as TF Serving quotes it in errors: its JSON text, at most 256 bytes."""
    text = json.dumps(value, allow_nan=True)
    return text.encode()[:_DEBUG_STRING_BYTES].decode(errors="ignore")


def _json_type(value) -> str:
    """rapidjson's type names: Null, False, True, Object, Array, String, Number."""
    if value is None:
        return "Null"
    if value is True or value is False:
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _type_error(value, dtype: tf.DType) -> StatusError:
    return invalid_argument(f"JSON Value: {debug_string(value)} Type: {_json_type(value)} is "
                            f"not of expected type: {dtype_name(dtype)}")


def is_b64_object(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def parse_json(body: bytes) -> dict:
    """The request document: NaN and Infinity accepted, bytes after the root value ignored
    (ParseJson's rapidjson flags); the root must be an object. Nesting is limited by
    Python's parser (about 1,000 levels; rapidjson's iterative parser has no limit)."""
    text = body.decode("utf-8", errors="replace").lstrip()
    if not text:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        document, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as error:
        raise invalid_argument(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: nested too deeply") from None
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {debug_string(document)} Is not object")
    return document


def signature_name_of(document: dict) -> str:
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument(f"JSON Value: {debug_string(document)} not formatted correctly. "
                               "'signature_name' key must be a string value.")
    return name


def _element(value, dtype: tf.DType):
    """One JSON scalar as a value of `dtype`, or TF Serving's error (AddValueToTensor)."""
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode()
        if is_b64_object(value) and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise invalid_argument("Unable to base64 decode") from None
        if isinstance(value, dict) and "b64" in value:
            raise invalid_argument(f"JSON Value: {debug_string(value)} not formatted correctly "
                                   "for base64 data")
        raise _type_error(value, dtype)
    if dtype == tf.bool:
        if value is True or value is False:
            return value
        raise _type_error(value, dtype)
    if dtype in (tf.float32, tf.float64):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _type_error(value, dtype)
    if dtype in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[dtype]
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        raise _type_error(value, dtype)
    raise StatusError(f"Conversion of JSON Value: {debug_string(value)} to type: "
                      f"{dtype_name(dtype)}", grpc.StatusCode.UNIMPLEMENTED)


def _shape_of(value) -> list[int]:
    """The shape read from the first element at each level (FillTensorProto)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def to_array(value, dtype: tf.DType) -> np.ndarray:
    """A JSON value (scalar or nested lists) as an array of `dtype`; ragged lists and values
    at the wrong depth are INVALID_ARGUMENT with TF Serving's words."""
    shape = _shape_of(value)
    flat: list = []

    def fill(item, level: int) -> None:
        if isinstance(item, list):
            if level >= len(shape):
                raise invalid_argument(f"Encountered list at unexpected level: {level} "
                                       f"expected < {len(shape)}")
            if len(item) != shape[level]:
                raise invalid_argument(f"Encountered list at unexpected size: {len(item)} at "
                                       f"level: {level} expected size: {shape[level]}")
            for child in item:
                fill(child, level + 1)
            return
        if level != len(shape):
            raise invalid_argument(f"JSON Value: {debug_string(item)} found at incorrect level: "
                                   f"{level + 1} in the JSON DOM. Expected at level: "
                                   f"{len(shape)}")
        flat.append(_element(item, dtype))

    if len(shape) > 32:  # TensorShape's limit is 254 dims; numpy's 64; no model takes this
        raise invalid_argument(f"JSON Value nests {len(shape)} lists deep: more dimensions "
                               "than any input of this model has")
    fill(value, 0)
    if dtype == tf.string:
        return np.array(flat, dtype=object).reshape(shape)
    if dtype in (tf.int8, tf.int16, tf.uint8, tf.uint16):
        # Any int32 is taken and narrowed as C++ narrows it (no range check in TF Serving).
        return np.array(flat, np.int64).astype(dtype.as_numpy_dtype).reshape(shape)
    return np.array(flat, dtype=dtype.as_numpy_dtype).reshape(shape)


def _stack(items: list[np.ndarray]) -> np.ndarray:
    first = items[0]
    for item in items[1:]:
        if item.size != first.size:
            raise invalid_argument(f"Expecting tensor size: {first.size} but got: {item.size}")
        if item.shape != first.shape:
            raise invalid_argument(f"Expecting shape {list(first.shape)} but got: "
                                   f"{list(item.shape)}")
    return np.stack(items)


def _wrapped(index: int, key: str | None, error: StatusError) -> StatusError:
    where = f"key: {key} " if key is not None else ""
    return StatusError(f"Failed to process element: {index} {where}of 'instances' list. Error: "
                       f"{error.code.name}: {error.message}", error.code)


def _from_instances(document: dict, specs: dict[str, tf.DType]) -> dict[str, np.ndarray]:
    rows = document["instances"]
    if not isinstance(rows, list):
        raise invalid_argument(f"JSON Value: {debug_string(document)} Expecting 'instances' to "
                               "be an list/array")
    if not rows:
        raise invalid_argument(f"JSON Value: {debug_string(document)} No values in 'instances' "
                               "array")
    named = isinstance(rows[0], dict) and not is_b64_object(rows[0])
    if not named:
        if len(specs) > 1:
            raise invalid_argument("instances is a plain list, but expecting list of objects as "
                                   "multiple input tensors required as per tensorinfo_map")
        (alias, dtype), = specs.items()
        items = []
        for index, row in enumerate(rows):
            if isinstance(row, dict) and not is_b64_object(row):
                raise invalid_argument(f"Expecting value/list but got object at item {index} "
                                       "of input list")
            try:
                items.append(to_array(row, dtype))
            except StatusError as error:
                raise _wrapped(index, None, error) from None
        return {alias: _stack(items)}
    columns: dict[str, list[np.ndarray]] = {alias: [] for alias in specs}
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or is_b64_object(row):
            raise invalid_argument(f"Expecting object but got list at item {index} of input "
                                   "list")
        for key, value in row.items():
            if key not in specs:
                raise _wrapped(index, key, invalid_argument(
                    f"JSON object: does not have named input: {key}"))
            try:
                columns[key].append(to_array(value, specs[key]))
            except StatusError as error:
                raise _wrapped(index, key, error) from None
        if len(row) != len(specs):
            raise invalid_argument(f"Failed to process element: {index} of 'instances' list. "
                                   f"JSON object: {debug_string(row)} keys must be equal to: "
                                   f"{','.join(sorted(specs))}")
    return {alias: _stack(items) for alias, items in columns.items()}


def _from_inputs(document: dict, specs: dict[str, tf.DType]) -> dict[str, np.ndarray]:
    value = document["inputs"]
    if not isinstance(value, dict) or is_b64_object(value):
        if len(specs) > 1:
            raise invalid_argument("inputs is a plain value/list, but expecting an object as "
                                   "multiple input tensors required as per tensorinfo_map")
        (alias, dtype), = specs.items()
        return {alias: to_array(value, dtype)}
    inputs = {}
    for alias, dtype in specs.items():  # keys the signature lacks are ignored, as in TF Serving
        if alias not in value:
            raise invalid_argument(f"Missing named input: {alias} in 'inputs' object.")
        inputs[alias] = to_array(value[alias], dtype)
    return inputs


def request_tensors(document: dict, specs: dict[str, tf.DType]
                    ) -> tuple[dict[str, np.ndarray], bool]:
    """(inputs by alias, whether the request used the row format) from a predict request.

    `specs`: the signature's input dtypes by alias. Raises StatusError (INVALID_ARGUMENT,
    or UNIMPLEMENTED for a dtype JSON cannot carry) as FillPredictRequestFromJson does.
    """
    if "instances" in document and "inputs" in document:
        raise invalid_argument(f"JSON Value: {debug_string(document)} Not formatted correctly "
                               "expecting only one of 'inputs' or 'instances' keys to exist ")
    if "instances" in document:
        return _from_instances(document, specs), True
    if "inputs" in document:
        return _from_inputs(document, specs), False
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _jsonable(value, as_b64: bool):
    if isinstance(value, np.ndarray):
        return [_jsonable(item, as_b64) for item in value] if value.ndim else \
            _jsonable(value[()], as_b64)
    if isinstance(value, bytes):
        if as_b64:
            return {"b64": base64.b64encode(value).decode("ascii")}
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.floating):
        # float32 as its shortest text (0.1, not 0.10000000149011612), as WriteDecimal does.
        return float(str(value)) if value.dtype == np.float32 and np.isfinite(value) else \
            float(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def response_json(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    """The predict response body for `outputs` (by alias)."""
    encoded = {alias: (value, alias.endswith("_bytes")) for alias, value in outputs.items()}
    if not row_format:
        if len(encoded) == 1:
            (value, as_b64), = encoded.values()
            return {"outputs": _jsonable(value, as_b64)}
        return {"outputs": {alias: _jsonable(value, as_b64)
                            for alias, (value, as_b64) in encoded.items()}}
    batch = None
    for alias, (value, _) in encoded.items():
        if value.ndim == 0:
            raise invalid_argument(f"Tensor name: {alias} has no shape information ")
        if batch is None:
            batch = value.shape[0]
        elif value.shape[0] != batch:
            raise invalid_argument(f"Tensor name: {alias} has inconsistent batch size: "
                                   f"{value.shape[0]} expecting: {batch}")
    if len(encoded) == 1:
        (value, as_b64), = encoded.values()
        return {"predictions": [_jsonable(row, as_b64) for row in value]}
    return {"predictions": [{alias: _jsonable(value[i], as_b64)
                             for alias, (value, as_b64) in encoded.items()}
                            for i in range(batch or 0)]}
