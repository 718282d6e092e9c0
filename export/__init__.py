"""jax2tf export: a trained SoundStorm -> a TF Serving SavedModel with the whole decoding loop inside.

    from soundstorm.export import ExportConfig, export_savedmodel
    export_savedmodel("runs/small-speech", "exports", ExportConfig(model_name="soundstorm"))

See docs/export.md.
"""

from soundstorm.export.config import ExportConfig, ExportError
from soundstorm.export.contract import read_contract
from soundstorm.export.savedmodel import export_savedmodel

__all__ = ["ExportConfig", "ExportError", "export_savedmodel", "read_contract"]
