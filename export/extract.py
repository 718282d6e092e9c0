"""Extracts a SavedModel's jax2tf modules, with what a runner without TensorFlow needs to call them.

    python -m soundstorm.export.extract models/soundstorm/4 /tmp/modules [--signatures ...]

For each signature that computes through one XlaCallModule op (every generate
signature and `logits`; `metadata` has none), the op is found by following the
signature's function calls in the meta graph's library, and its serialized StableHLO
(the `module` attribute: the bytes TF Serving runs, for every lowered platform) is
written as `<signature>.stablehlo`. Beside them:

- `params.npz`: the SavedModel's parameters as float32 (bfloat16 storage widened, as
  the graph does), one array per parameter named by its path in the checkpoint's tree
  (`conformer/layer_0/...`);
- `manifest.json`: the model config, and per module its file, platforms, calling
  convention, the parameter names in the order of the module's arguments (the tree's
  flattening order, as jax2tf passed them), the input names, the symbolic input and
  output shapes and constraints it was lowered with (export/shapes.py) and its level
  schedule.

export/module_runner.py reads the folder with JAX alone (docs/benchmarks.md, GPU).
Needs TensorFlow (to read the variables).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from soundstorm.export.contract import read_contract
from soundstorm.export.module_runner import MANIFEST_FILE, PARAMS_FILE, flat_parameters
from soundstorm.export.modules import _saved_model
from soundstorm.export.shapes import bucket_generate_shapes, generate_shapes, logits_shapes
from soundstorm.export.signatures import GENERATE_INPUTS

MODULE_SUFFIX = ".stablehlo"
LOGITS_INPUTS = ("semantic_tokens", "acoustic_tokens", "lengths", "levels")


def _called_functions(node_defs) -> set[str]:
    """Names of the library functions the nodes call (function-valued attributes)."""
    called = set()
    for node in node_defs:
        for value in node.attr.values():
            if value.HasField("func"):
                called.add(value.func.name)
            called.update(f.name for f in value.list.func)
    return called


def signature_modules(meta_graph) -> dict[str, tuple[str, bytes, int, tuple[str, ...]]]:
    """Signature name -> (function, module bytes, calling convention, platforms) of the one
    XlaCallModule op its outputs are computed through. Signatures with none are left out;
    raises ValueError for a signature that reaches several."""
    library = {f.signature.name: f for f in meta_graph.graph_def.library.function}
    graph_nodes = {node.name: node for node in meta_graph.graph_def.node}
    found = {}
    for name, signature in meta_graph.signature_def.items():
        pending = set()
        for tensor in signature.outputs.values():
            pending |= _called_functions([graph_nodes[tensor.name.split(":")[0]]])
        seen, modules = set(), []
        while pending:
            function = pending.pop()
            if function in seen or function not in library:
                continue
            seen.add(function)
            nodes = library[function].node_def
            modules += [(function, node) for node in nodes if node.op == "XlaCallModule"]
            pending |= _called_functions(nodes)
        if len(modules) > 1:
            raise ValueError(f"signature {name} reaches {len(modules)} XlaCallModule ops")
        if modules:
            function, node = modules[0]
            found[name] = (function, node.attr["module"].s, node.attr["version"].i,
                           tuple(p.decode().lower() for p in node.attr["platforms"].list.s))
    return found


def extract_modules(version_dir: Path, out_dir: Path,
                    signatures: tuple[str, ...] | None = None) -> dict:
    """Writes the modules, parameters and manifest of a version folder; returns the manifest.

    `signatures`: the ones to extract (default: all that have a module). Raises ValueError
    for a named signature without one.
    """
    from soundstorm.export.reload import load_jax_model
    version_dir, out_dir = Path(version_dir), Path(out_dir)
    contract = read_contract(version_dir)
    config, params = load_jax_model(version_dir)
    meta_graph, = [g for g in _saved_model(version_dir).meta_graphs
                   if set(g.meta_info_def.tags) == {"serve"}]
    modules = signature_modules(meta_graph)
    wanted = tuple(signatures) if signatures else tuple(sorted(modules))
    missing = [name for name in wanted if name not in modules]
    if missing:
        raise ValueError(f"no jax2tf module in signature(s) {missing} of {version_dir}; "
                         f"these have one: {sorted(modules)}")
    schedules = {s.name: list(s.level_schedule) for s in contract.signatures}
    buckets = {s.name for s in contract.signatures if s.fixed_frames}
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"source": str(version_dir), "model_config": dataclasses.asdict(config),
                "max_frames": contract.max_frames, "max_prompt_frames": contract.max_prompt_frames,
                "parameters": list(flat_parameters(params)),
                "modules": {}}
    for name in wanted:
        function, module_bytes, version, platforms = modules[name]
        if name == "logits":
            inputs, shapes = LOGITS_INPUTS, logits_shapes(config, contract.max_frames)
        elif name in buckets:
            inputs, shapes = GENERATE_INPUTS, bucket_generate_shapes()
        else:
            inputs, shapes = GENERATE_INPUTS, generate_shapes(config, contract.max_frames)
        file = f"{name}{MODULE_SUFFIX}"
        (out_dir / file).write_bytes(module_bytes)
        manifest["modules"][name] = {
            "file": file, "function": function, "platforms": list(platforms),
            "calling_convention_version": version, "inputs": list(inputs),
            "input_shapes": list(shapes.inputs), "output_shapes": list(shapes.outputs),
            "constraints": list(shapes.constraints),
            "level_schedule": schedules.get(name)}
    np.savez(out_dir / PARAMS_FILE, **{name: np.asarray(leaf, np.float32)
                                       for name, leaf in flat_parameters(params).items()})
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version_dir", type=Path, help="BASE/NAME/VERSION of an export")
    parser.add_argument("out_dir", type=Path, help="folder to write (created)")
    parser.add_argument("--signatures", nargs="+", help="default: every one with a module")
    args = parser.parse_args(argv)
    manifest = extract_modules(args.version_dir, args.out_dir, args.signatures)
    for name, module in manifest["modules"].items():
        size = (args.out_dir / module["file"]).stat().st_size
        print(f"{name}: {module['file']} ({size / 1e6:.2f} MB, platforms "
              f"{', '.join(module['platforms'])}, calling convention "
              f"{module['calling_convention_version']})")
    print(f"{len(manifest['parameters'])} parameters -> {args.out_dir / PARAMS_FILE}")


if __name__ == "__main__":
    main()
