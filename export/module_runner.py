"""Runs extracted jax2tf modules (export/extract.py) with JAX alone: the SavedModel's own
StableHLO, on whatever device JAX has (a GPU machine without TensorFlow, say).

    model = ExtractedModel.load("/tmp/modules")
    tokens = model.call("serving_default", model.params, request)   # numpy inputs by name

Each module becomes a `jax.export.Exported` (export/stablehlo.py) whose argument
shapes are the symbols it was lowered with, so one Exported serves every request
shape; `call` compiles it for the shapes given (cached by jax.jit) and selects the
module's branch for the device's platform, as TF's XlaCallModule kernel does. The
parameters are passed by name: any dict {name: array} with the manifest's names
(params.npz, or a JAX model's tree flattened by `flat_parameters`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Mapping

import jax
import numpy as np

from soundstorm.export.stablehlo import polymorphic_exported
from soundstorm.config import SoundStormConfig

# The files export/extract.py writes beside the modules (named here, where both sides see them).
MANIFEST_FILE = "manifest.json"
PARAMS_FILE = "params.npz"


def flat_parameters(params) -> dict[str, np.ndarray]:
    """A parameter tree as {"a/b/kernel": array}, in JAX's flattening order (the order
    jax2tf passes them to the module): the names the manifest uses."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    return {"/".join(str(key.key) for key in path): leaf for path, leaf in leaves}


def nested_parameters(flat: Mapping[str, object]) -> dict:
    """{"a/b/kernel": array} -> {"a": {"b": {"kernel": array}}}: the tree `decode` takes."""
    tree: dict = {}
    for name, array in flat.items():
        *parents, leaf = name.split("/")
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = array
    return tree


@dataclasses.dataclass
class ExtractedModel:
    folder: Path
    manifest: dict

    @classmethod
    def load(cls, folder: Path | str) -> "ExtractedModel":
        """Reads `folder`'s manifest. Raises FileNotFoundError when it has none."""
        folder = Path(folder)
        manifest_file = folder / MANIFEST_FILE
        if not manifest_file.is_file():
            raise FileNotFoundError(f"no {MANIFEST_FILE} in {folder}: write one with "
                                    "python -m soundstorm.export.extract VERSION_DIR FOLDER")
        return cls(folder, json.loads(manifest_file.read_text()))

    @property
    def config(self) -> SoundStormConfig:
        return SoundStormConfig(**self.manifest["model_config"])

    @property
    def signatures(self) -> list[str]:
        return sorted(self.manifest["modules"])

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The SavedModel's parameters (float32 numpy, by name) from params.npz."""
        with np.load(self.folder / PARAMS_FILE) as stored:
            return {name: stored[name] for name in stored.files}

    def exported(self, signature: str) -> jax.export.Exported:
        """The Exported of one signature's module (raises KeyError for an unknown one)."""
        entry = self.manifest["modules"][signature]
        return polymorphic_exported(
            (self.folder / entry["file"]).read_bytes(), tuple(entry["platforms"]),
            entry["calling_convention_version"],
            num_parameters=len(self.manifest["parameters"]),
            input_shapes=tuple(entry["input_shapes"]),
            output_shapes=tuple(entry["output_shapes"]), constraints=tuple(entry["constraints"]), name=signature)

    def function(self, signature: str):
        """jit(fn)(params_list, *inputs) -> the module's outputs, for `signature`."""
        exported = self.exported(signature)
        return jax.jit(lambda params, *inputs: exported.call(*params, *inputs))

    def arguments(self, signature: str, params: Mapping[str, object],
                  inputs: Mapping[str, object]) -> tuple[list, list]:
        """(parameters in the module's order, inputs in its order) from dicts by name.

        Raises KeyError naming a missing parameter or input, ValueError for extra ones.
        """
        entry, names = self.manifest["modules"][signature], self.manifest["parameters"]
        missing = [n for n in names if n not in params] + [n for n in entry["inputs"]
                                                            if n not in inputs]
        if missing:
            raise KeyError(f"{signature}: missing {missing[:5]}"
                           f"{' and more' if len(missing) > 5 else ''}")
        extra = sorted(set(params) - set(names)) + sorted(set(inputs) - set(entry["inputs"]))
        if extra:
            raise ValueError(f"{signature}: unknown parameters or inputs {extra[:5]}")
        return [params[n] for n in names], [inputs[n] for n in entry["inputs"]]

    def call(self, signature: str, params: Mapping[str, object],
             inputs: Mapping[str, object]):
        """One call of a signature's module on JAX's default device; its outputs as arrays.

        `inputs` by name as the SavedModel's signature takes them (int32/float32 numpy,
        batch first), unchecked: the SavedModel's in-graph checks are TF ops outside the
        module, so give valid requests (runtime/ or the signature's checks validate them).
        """
        ordered_params, ordered_inputs = self.arguments(signature, params, inputs)
        return self.function(signature)(ordered_params, *ordered_inputs)
