"""The JAX side of an export: its model config and parameters, read back from the SavedModel.

Benchmarks and parity checks of a shipped model need the JAX model beside the
SavedModel, and a fresh clone has only the SavedModel. Its variables hold the
parameters in the checkpoint's tree (export/signatures.py); bfloat16 storage is
widened to float32, as the graph does before computing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from soundstorm.export.contract import read_contract
from soundstorm.config import SoundStormConfig


def _plain(tree):
    """TF's tracked dict/list wrappers -> dicts of float32 numpy arrays."""
    if hasattr(tree, "items"):
        return {key: _plain(value) for key, value in tree.items()}
    return np.asarray(tree.numpy(), np.float32)


def load_jax_model(version_dir: Path) -> tuple[SoundStormConfig, dict]:
    """(config, params) of an exported version directory (BASE/NAME/VERSION)."""
    import tensorflow as tf
    version_dir = Path(version_dir)
    contract = read_contract(version_dir)
    config = SoundStormConfig(**json.loads(contract.export_info.model_config_json))
    loaded = tf.saved_model.load(str(version_dir))
    return config, _plain(loaded.params)
