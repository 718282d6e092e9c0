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

import dataclasses

import jax
import numpy as np
from jax import export as jax_export
from jax._src.interpreters import mlir
from jax._src.lib import _jax
from jax._src.lib.mlir import ir

_ShapedArray = getattr(jax.core, "ShapedArray", None) or __import__(
    "jax._src.core", fromlist=["ShapedArray"]).ShapedArray

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


def _exported(in_avals, out_avals, module_bytes: bytes, platforms: tuple[str, ...],
              calling_convention_version: int, name: str) -> jax_export.Exported:
    """An Exported of `module_bytes` with these argument and result avals.

    Built by exporting a stand-in of the same avals with the running JAX and swapping in
    the module, so that the Exported's other fields (which change between JAX versions)
    get that version's own values; only the module, its platforms and calling
    convention, and the argument bookkeeping are ours.
    """
    def stand_in(*args):
        return tuple(jax.numpy.zeros(aval.shape, aval.dtype) for aval in out_avals)

    specs = [jax.ShapeDtypeStruct(aval.shape, aval.dtype) for aval in in_avals]
    template = jax_export.export(jax.jit(stand_in), platforms=tuple(platforms))(*specs)
    return dataclasses.replace(
        template, fun_name=name, mlir_module_serialized=module_bytes, platforms=tuple(platforms),
        calling_convention_version=calling_convention_version,
        module_kept_var_idx=tuple(range(len(in_avals))), uses_global_constants=True)


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
        return _ShapedArray(tuple(batch if d is None else d for d in shape), dtype)

    in_avals = tuple(aval(*t) for t in inputs)
    out_avals = tuple(aval(*t) for t in outputs)
    return _exported(in_avals, out_avals, module_bytes, platforms, calling_convention_version,
                     name)


def argument_specs(exported: jax_export.Exported, batch: int, sharding=None) -> list:
    """ShapeDtypeStructs of the arguments at one batch size (for lowering without data)."""
    return [jax.ShapeDtypeStruct(tuple(batch if not isinstance(d, int) else d for d in a.shape),
                                 a.dtype, sharding=sharding) for a in exported.in_avals]


def _symbolic_shape(spec: str, static: tuple, scope) -> tuple:
    """jax2tf's polymorphic shape spec ("(b, s)", "(b, _, _)") with "_" read from the module."""
    dims = [d.strip() for d in spec.strip().strip("()").split(",") if d.strip()]
    if len(dims) != len(static):
        raise ValueError(f"shape {spec} does not have the module's rank {len(static)}")
    return jax_export.symbolic_shape(
        ", ".join(str(s) if d == "_" else d for d, s in zip(dims, static)), scope=scope)


def polymorphic_exported(module_bytes: bytes, platforms: tuple[str, ...],
                         calling_convention_version: int, *, num_parameters: int,
                         input_shapes: tuple[str, ...], output_shapes: tuple[str, ...],
                         constraints: tuple[str, ...] = (),
                         name: str = "main") -> jax_export.Exported:
    """The Exported of a jax2tf module of (parameters..., inputs...) with the symbolic input
    and output shapes it was lowered with (export/shapes.py); parameters are static.

    Raises ValueError when the module's arguments are not `num_parameters` plus one per
    input shape, or its results not one per output shape (a module jax2tf pruned unused
    arguments from, or another signature's manifest entry).
    """
    inputs, outputs = _main_types(module_bytes)
    if len(platforms) > 1:
        inputs = inputs[1:]  # the platform index, which Exported.call supplies
    if len(inputs) != num_parameters + len(input_shapes) or len(outputs) != len(output_shapes):
        raise ValueError(f"{name}: the module takes {len(inputs)} arguments and gives "
                         f"{len(outputs)} results, not {num_parameters} parameters + "
                         f"{len(input_shapes)} inputs and {len(output_shapes)} results")
    scope = jax_export.SymbolicScope(constraints)
    in_avals = [_ShapedArray(shape, dtype) for shape, dtype in inputs[:num_parameters]]
    in_avals += [_ShapedArray(_symbolic_shape(spec, shape, scope), dtype)
                 for spec, (shape, dtype) in zip(input_shapes, inputs[num_parameters:])]
    out_avals = [_ShapedArray(_symbolic_shape(spec, shape, scope), dtype)
                 for spec, (shape, dtype) in zip(output_shapes, outputs)]
    return _exported(in_avals, out_avals, module_bytes, platforms, calling_convention_version,
                     name)
