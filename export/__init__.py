"""jax2tf export: a trained SoundStorm -> a TF Serving SavedModel with the whole decoding loop inside.

    from soundstorm.export import ExportConfig, export_savedmodel
    export_savedmodel("runs/small-speech", "exports", ExportConfig(model_name="soundstorm"))

See docs/export.md. The names below load on first use, so that the JAX-only modules of
this package (stablehlo, module_runner, shapes) import where TensorFlow is not installed
(a GPU machine running the extracted modules: docs/benchmarks.md).
"""

import importlib

_LAZY = {"ExportConfig": "soundstorm.export.config", "ExportError": "soundstorm.export.config",
         "read_contract": "soundstorm.export.contract",
         "export_savedmodel": "soundstorm.export.savedmodel"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
