"""Reads the serialized jax2tf modules (XlaCallModule ops) out of traced functions or a SavedModel."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tensorflow.core.protobuf import saved_model_pb2

from soundstorm.runtime.savedmodel.layout import SAVED_MODEL_FILE


@dataclasses.dataclass(frozen=True)
class XlaModule:
    function: str            # the TF function (in the graph's library) that holds it
    version: int             # XlaCallModule calling-convention version
    platforms: tuple[str, ...]
    module_bytes: int        # size of the serialized StableHLO
    alias: str = ""          # its SaveOptions.function_aliases name, if any (e.g. "tpu_func")
    # Its function compiled by XLA as a whole (tf.function(jit_compile=True) sets the
    # function's `_XlaMustCompile` attribute), as jax2tf asks of a native-serialized module.
    must_compile: bool = False


def _modules_in(library, aliases=None, with_bytes=False) -> list:
    aliases = aliases or {}
    found = []
    for function in library.function:
        for node in function.node_def:
            if node.op == "XlaCallModule":
                attrs = node.attr
                module = XlaModule(
                    function=function.signature.name, version=attrs["version"].i,
                    platforms=tuple(p.decode().lower() for p in attrs["platforms"].list.s),
                    module_bytes=len(attrs["module"].s),
                    alias=aliases.get(function.signature.name, ""),
                    must_compile=("_XlaMustCompile" in function.attr
                                  and function.attr["_XlaMustCompile"].b))
                found.append((module, attrs["module"].s) if with_bytes else module)
    return found


def modules_of_concrete_function(concrete) -> list[XlaModule]:
    return _modules_in(concrete.graph.as_graph_def().library)


def _saved_model(directory: Path):
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(directory) / SAVED_MODEL_FILE).read_bytes())
    return saved


def modules_of_saved_model(directory: Path) -> list[XlaModule]:
    return [module for graph in _saved_model(directory).meta_graphs
            for module in _modules_in(graph.graph_def.library,
                                      dict(graph.meta_info_def.function_aliases))]


def serialized_modules_of_saved_model(directory: Path) -> list[tuple[XlaModule, bytes]]:
    """Each module with its serialized StableHLO (the XlaCallModule's `module` attribute)."""
    return [pair for graph in _saved_model(directory).meta_graphs
            for pair in _modules_in(graph.graph_def.library,
                                    dict(graph.meta_info_def.function_aliases), with_bytes=True)]
