"""A jax2tf module read back from a SavedModel, as a `jax.export.Exported` that JAX can compile.

An XlaCallModule op holds the StableHLO of its whole function (one module for
every lowered platform): its `main` takes the platform index (i32) first, then
the parameters, then the inputs. `jax.export.Exported` is the container JAX
calls such a module through (it picks the platform branch and refines the
shapes, as TF's XlaCallModule kernel does), so the bytes a TF Serving fleet
runs can be compiled by JAX for any lowered platform, including a TPU that is
not there (jax.experimental.topologies). Only JAX and jaxlib are imported:
this runs where TensorFlow does not.
"""

from __future__ import annotations

import jax
import numpy as np
from jax import export as jax_export
from jax._src.interpreters import mlir
from jax._src.lib import _jax
from jax._src.lib.mlir import ir

# MLIR element types of the modules we export -> NumPy dtypes.
_DTYPES = {"i1": np.bool_, "i32": np.int32, "ui32": np.uint32, "f32": np.float32,
           "bf16": jax.numpy.bfloat16}


def _main_types(module_bytes: bytes):
    """[(shape with None for dynamic dims, dtype)] of main's arguments and results."""
    with mlir.make_ir_context() as context:
        module = _jax.mlir.deserialize_portable_artifact(module_bytes, context)
        main, = [op for op in module.body.operations
                 if ir.StringAttr(op.attributes["sym_name"]).value == "main"]
        function_type = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)

        def describe(mlir_type):
            tensor = ir.RankedTensorType(mlir_type)
            shape = tuple(None if tensor.is_dynamic_dim(i) else tensor.shape[i]
                          for i in range(tensor.rank))
            return shape, _DTYPES[str(tensor.element_type)]

        return ([describe(t) for t in function_type.inputs],
                [describe(t) for t in function_type.results])


def module_text(module_bytes: bytes) -> str:
    """The module as StableHLO text (for reading, and for tests of what it computes)."""
    with mlir.make_ir_context() as context:
        return str(_jax.mlir.deserialize_portable_artifact(module_bytes, context))


def batch_polymorphic_exported(module_bytes: bytes, platforms: tuple[str, ...],
                               calling_convention_version: int,
                               name: str = "tpu_func") -> jax_export.Exported:
    """The Exported of a module whose only dynamic dimension is the batch (a TPU bucket's).

    Every dynamic dimension of its arguments and results becomes the one symbol `b`.
    Raises ValueError for a module with other dynamic dimensions (a shape-polymorphic
    signature's), whose dimensions cannot be named from the module alone.
    """
    inputs, outputs = _main_types(module_bytes)
    if len(platforms) > 1:
        inputs = inputs[1:]  # the platform index, which Exported.call supplies
    batch, = jax_export.symbolic_shape("b")

    def aval(shape, dtype):
        if None in shape[1:]:
            raise ValueError(f"{name}: a dynamic dimension other than the batch in {shape}")
        return jax.core.ShapedArray(tuple(batch if d is None else d for d in shape), dtype)

    in_avals = tuple(aval(*t) for t in inputs)
    out_avals = tuple(aval(*t) for t in outputs)
    count = len(in_avals)
    return jax_export.Exported(
        fun_name=name, in_tree=jax.tree_util.tree_structure((tuple(range(count)), {})),
        in_avals=in_avals, out_tree=jax.tree_util.tree_structure(tuple(range(len(out_avals)))),
        out_avals=out_avals, _has_named_shardings=False, _in_named_shardings=(None,) * count,
        _out_named_shardings=(None,) * len(out_avals), in_shardings_hlo=(None,) * count,
        out_shardings_hlo=(None,) * len(out_avals), nr_devices=1,
        platforms=tuple(platforms), ordered_effects=(), unordered_effects=(),
        disabled_safety_checks=(), mlir_module_serialized=module_bytes,
        calling_convention_version=calling_convention_version,
        module_kept_var_idx=tuple(range(count)), uses_global_constants=True, _get_vjp=None)


def argument_specs(exported: jax_export.Exported, batch: int, sharding=None) -> list:
    """ShapeDtypeStructs of the arguments at one batch size (for lowering without data)."""
    return [jax.ShapeDtypeStruct(tuple(batch if not isinstance(d, int) else d for d in a.shape),
                                 a.dtype, sharding=sharding) for a in exported.in_avals]
