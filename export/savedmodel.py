"""Training run -> SavedModel in TF Serving's layout: `<base_path>/<model_name>/<version>/`.

The version is written into a hidden temporary folder beside its final place
and renamed into place when complete: a server polling the base path only ever
sees whole versions (TF Serving ignores folder names that are not integers),
and a failed export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import jax
import tensorflow as tf

from soundstorm.export.config import DEFAULT_SIGNATURE, ExportConfig, ExportError, ResolvedExport
from soundstorm.export.contract import (CONTRACT_FILE, CONTRACT_JSON_FILE, build_contract,
                             check_token_contract, contract_json)
from soundstorm.export.modules import modules_of_concrete_function
from soundstorm.export.signatures import SoundStormModule
from soundstorm.export.warmup import warmup_logs, write_warmup
from soundstorm.runtime.savedmodel.layout import ASSETS_EXTRA, WARMUP_FILE, versions_on_disk
from soundstorm.run_dir import RunDirectory

from soundstorm.export.tpu import TPU_FUNCTION_ALIAS, write_tpu_files


def _resolve_version(model_dir: Path, version: int | None) -> int:
    versions = versions_on_disk(model_dir)
    if version is None:
        return versions[-1] + 1 if versions else 1
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    if version in versions:
        raise ExportError(f"version {version} already exists at {model_dir / str(version)}; "
                          "versions are immutable: export a new one")
    return version


@contextlib.contextmanager
def _calling_convention(version: int | None):
    if version is None:
        yield
        return
    previous = jax.config.jax_export_calling_convention_version
    jax.config.update("jax_export_calling_convention_version", version)
    try:
        yield
    finally:
        jax.config.update("jax_export_calling_convention_version", previous)


def _trace(params, resolved: ResolvedExport, progress):
    """Converts every generate signature and the logits signature (jax2tf runs here)."""
    module = SoundStormModule(params, resolved)
    signatures = {}
    export_config = resolved.export
    for name, decoding in resolved.decodings.items():
        progress(f"converting {name}: schedule {decoding.level_schedule}, "
                 f"{decoding.num_passes} passes, loop {export_config.loop}")
        signatures[name] = module.generate_function(name, decoding).get_concrete_function()
    for name, frames in resolved.static_signatures.items():
        progress(f"converting {name}: TPU bucket of {frames} frames, matmul precision "
                 f"{export_config.tpu_matmul_precision}")
        signatures[name] = module.generate_function(
            name, resolved.decodings[DEFAULT_SIGNATURE], bucket=frames).get_concrete_function()
    signatures["logits"] = module.logits_function().get_concrete_function()
    return module, signatures


def export_savedmodel(workdir: Path, base_path: Path, export_config: ExportConfig = ExportConfig(),
                      *, version: int | None = None, step: int | None = None,
                      log: Callable[[str], None] | None = print) -> Path:
    """Exports a training run's checkpoint; returns the version folder written."""
    log = log or (lambda message: None)
    started = time.perf_counter()
    workdir, base_path = Path(workdir), Path(base_path)

    def progress(message: str) -> None:
        log(f"[export {time.perf_counter() - started:6.1f} s] {message}")

    run = RunDirectory(workdir)
    config, _ = run.read_config()
    data_record = run.read_data_record()
    resolved = export_config.resolve(config)
    check_token_contract(data_record, resolved)
    model_dir = base_path / export_config.model_name
    version = _resolve_version(model_dir, version)
    params, step = run.restore(step)
    progress(f"loaded step {step} of {workdir}; writing {model_dir / str(version)}")
    if data_record is None:
        progress("no data.json in the run (synthetic training data): contract codec 'none'")

    with _calling_convention(export_config.calling_convention_version):
        module, signatures = _trace(params, resolved, progress)
    xla_modules = modules_of_concrete_function(signatures[DEFAULT_SIGNATURE])
    contract = build_contract(resolved, version, data_record, step, xla_modules[0].version)
    signatures["metadata"] = module.metadata_function(
        contract.SerializeToString(), contract_json(contract)).get_concrete_function()

    created_model_dir = not model_dir.exists()
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".export-{version}-", dir=model_dir))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a server may run as another user
        progress("saving")
        # The TPU converter places the functions of this alias on the TPU: the bucket
        # signatures' compiled functions only (the shape-polymorphic ones are for CPU and GPU).
        tpu_functions = [module.compiled[name].get_concrete_function()
                         for name in resolved.static_signatures]
        options = tf.saved_model.SaveOptions(
            function_aliases={TPU_FUNCTION_ALIAS: tpu_functions} if tpu_functions else None)
        tf.saved_model.save(module, str(staging), signatures=signatures, options=options)
        extra = staging / ASSETS_EXTRA
        extra.mkdir()
        (extra / CONTRACT_FILE).write_bytes(contract.SerializeToString())
        (extra / CONTRACT_JSON_FILE).write_text(contract_json(contract) + "\n")
        logs = warmup_logs(contract, export_config.warmup_batch_sizes)
        write_warmup(staging / WARMUP_FILE, logs)
        progress(f"{len(logs)} warm-up records")
        if resolved.static_signatures:
            progress(f"TPU: converter options and {write_tpu_files(staging, contract)} "
                     "warm-up records for the converted version")
        final = model_dir / str(version)
        # rename() fails rather than merge if another export took the version meanwhile.
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_model_dir and not any(model_dir.iterdir()):
            model_dir.rmdir()
        raise
    size = sum(path.stat().st_size for path in final.rglob("*") if path.is_file())
    progress(f"done: {final} ({size / 1e6:.1f} MB)")
    return final
