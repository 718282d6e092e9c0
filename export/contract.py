"""The model contract (protos/model_contract.proto) of an export: what a client configures from."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import tensorflow as tf
from google.protobuf import json_format

from soundstorm.export.config import DEFAULT_SIGNATURE, ResolvedExport
from soundstorm.protos import model_contract_pb2
from soundstorm.runtime.savedmodel.layout import ASSETS_EXTRA, ModelNotFoundError
from soundstorm.config import ConfigError

# In assets.extra/ of every export, beside TF Serving's warm-up records.
CONTRACT_FILE = "model_contract.pb"
CONTRACT_JSON_FILE = "model_contract.json"


def check_token_contract(data_record: dict | None, resolved: ResolvedExport) -> None:
    """The run's data.json (codec and semantic settings of its corpus) agrees with its config."""
    if data_record is None:
        return
    config = resolved.model
    codec, semantic = data_record["codec"], data_record["semantic"]
    expected = {"codec num_levels": (codec["num_levels"], config.num_levels),
                "codec codebook_size": (codec["codebook_size"], config.codebook_size),
                "codec frame_rate_hz": (codec["frame_rate_hz"], config.frame_rate_hz),
                "semantic rate_hz": (semantic["rate_hz"], config.semantic_rate_hz)}
    for name, (recorded, configured) in expected.items():
        if recorded != configured:
            raise ConfigError(f"config mismatch: data.json says {name} = {recorded} but the "
                              f"model config has {configured}")
    if semantic["vocabulary_size"] > config.semantic_vocab_size:
        raise ConfigError(f"config mismatch: data.json vocabulary has {semantic['vocabulary_size']} "
                          f"symbols, the model only {config.semantic_vocab_size}")


def build_contract(resolved: ResolvedExport, version: int, data_record: dict | None,
                   checkpoint_step: int, calling_convention_version: int
                   ) -> model_contract_pb2.ModelContract:
    config, export = resolved.model, resolved.export
    contract = model_contract_pb2.ModelContract(
        model_name=export.model_name, version=version, max_frames=resolved.max_frames,
        max_prompt_frames=resolved.max_prompt_frames, frame_buckets=resolved.frame_buckets,
        default_temperature=export.default_temperature,
        default_choice_temperature=export.default_choice_temperature)
    if data_record is not None:
        codec, semantic = data_record["codec"], data_record["semantic"]
        contract.codec.CopyFrom(model_contract_pb2.CodecSpec(
            name=codec["name"], sample_rate=codec["sample_rate"],
            native_levels=codec["lyra_levels"], group_size=codec["group_size"]))
        vocabulary = f"espeak-phonemes-{semantic['vocabulary_version']}"
    else:
        # Trained on synthetic tokens: no codec can turn its output into audio.
        contract.codec.name = "none"
        vocabulary = "synthetic"
    contract.semantic.CopyFrom(model_contract_pb2.SemanticSpec(
        vocabulary=vocabulary, vocabulary_size=config.semantic_vocab_size,
        rate_hz=config.semantic_rate_hz, unknown_id=config.semantic_unknown_id,
        frames_per_token=config.frames_per_semantic_token))
    contract.acoustic.CopyFrom(model_contract_pb2.AcousticSpec(
        num_levels=config.num_levels, codebook_size=config.codebook_size,
        frame_rate_hz=config.frame_rate_hz))
    for name, decoding in resolved.decodings.items():
        contract.signatures.add(name=name, level_schedule=decoding.level_schedule,
                                num_passes=decoding.num_passes)
    default = resolved.decodings[DEFAULT_SIGNATURE]
    for name, frames in resolved.static_signatures.items():
        contract.signatures.add(name=name, level_schedule=default.level_schedule,
                                num_passes=default.num_passes, fixed_frames=frames)
    contract.export_info.CopyFrom(model_contract_pb2.ExportInfo(
        jax_version=jax.__version__, tensorflow_version=tf.__version__,
        calling_convention_version=calling_convention_version, platforms=export.platforms,
        checkpoint_step=checkpoint_step, loop=export.loop,
        variables_dtype=export.variables_dtype,
        tpu_batch_sizes=export.tpu_batch_sizes if resolved.static_signatures else (),
        tpu_matmul_precision=export.tpu_matmul_precision if resolved.static_signatures else "",
        model_config_json=json.dumps(dataclasses.asdict(config), sort_keys=True)))
    return contract


def contract_json(contract: model_contract_pb2.ModelContract) -> str:
    return json_format.MessageToJson(contract, indent=1, sort_keys=True,
                                   preserving_proto_field_name=True)


def read_contract(model_dir: Path) -> model_contract_pb2.ModelContract:
    """The contract of an exported version directory, from assets.extra/."""
    path = Path(model_dir) / ASSETS_EXTRA / CONTRACT_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"no model contract at {path}: not a SoundStorm export")
    return model_contract_pb2.ModelContract.FromString(path.read_bytes())
