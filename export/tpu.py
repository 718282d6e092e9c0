"""The TPU path: what the Cloud TPU Inference Converter is told, and a converted version's warm-up.

Google serves JAX models on TPU through TF Serving after a conversion step: the
converter rewrites the functions of one `SaveOptions.function_aliases` name into
TPUPartitionedCall ops and writes a meta graph tagged "tpu", "serve"
(TF Serving's TPU build loads those tags by default: model_servers/main.cc).
Our export aliases the compiled function of every bucket signature (static
shapes except the batch, export/signatures.py), so the set of TPU programs is
bucket signatures x allowed batch sizes, all compiled at warm-up.

The options are text of the converter's ConverterOptionsV2 message; Google does
not ship its schema in a package, but orbax-export carries a copy
(orbax/export/bfloat16_toolkit/converter_options_v2.proto), which
tests/test_export.py parses them with. docs/tpu.md walks the whole path.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from soundstorm.export.warmup import tpu_warmup_logs, write_warmup
from soundstorm.protos import model_contract_pb2
from soundstorm.runtime.savedmodel.layout import (ASSETS_EXTRA, TPU_CONVERTER_OPTIONS_FILE, TPU_WARMUP_FILE,
                                       WARMUP_FILE)

# The alias the converter is pointed at (the name Google's converter guide uses).
TPU_FUNCTION_ALIAS = "tpu_func"
# The meta graph a converted version is loaded by.
TPU_SAVED_MODEL_TAGS = ("tpu", "serve")


@dataclasses.dataclass(frozen=True)
class ConverterBatching:
    """In-graph batching the converter adds in front of the TPU functions (BatchOptionsV2).

    The allowed batch sizes are the export's (contract.export_info.tpu_batch_sizes): the
    converter pads each batch up to the next one, so no other size reaches the TPU.
    """
    # Batches run at once: 4, as Google's examples set (a v4 2x2x1 host has 4 chips).
    num_batch_threads: int = 4
    # A call takes seconds; waiting 10 ms for a fuller batch costs nothing in comparison.
    batch_timeout_micros: int = 10_000
    # Queue bound (in batches): beyond it a request is refused (UNAVAILABLE) instead of
    # waiting behind minutes of work.
    max_enqueued_batches: int = 16


def converter_options(contract: model_contract_pb2.ModelContract,
                      batching: ConverterBatching = ConverterBatching()) -> str:
    """ConverterOptionsV2 as text format for `--converter_options_string`.

    - tpu_functions: the alias of the bucket signatures' compiled functions.
    - batch_options: one entry without a component applies to every TPU function.
    - bfloat16_optimization DISABLED: the schema says it defaults to disabled for models
      with XlaCallModule; said explicitly, so that no converter version rounds the TPU
      functions to bfloat16 behind the export's back (contract.export_info
      .tpu_matmul_precision chose the numerics; docs/tpu.md bounds the alternatives).
    Raises ValueError when the export has no bucket signatures (nothing to convert).
    """
    sizes = list(contract.export_info.tpu_batch_sizes)
    if not sizes or not any(signature.fixed_frames for signature in contract.signatures):
        raise ValueError(f"version {contract.version} has no TPU bucket signatures: export "
                         "with --static-buckets")
    return "\n".join([
        f'tpu_functions {{ function_alias: "{TPU_FUNCTION_ALIAS}" }}',
        "batch_options {",
        f"  num_batch_threads: {batching.num_batch_threads}",
        f"  max_batch_size: {sizes[-1]}",
        f"  batch_timeout_micros: {batching.batch_timeout_micros}",
        *(f"  allowed_batch_sizes: {size}" for size in sizes),
        f"  max_enqueued_batches: {batching.max_enqueued_batches}",
        "}",
        "bfloat16_optimization: DISABLED",
    ]) + "\n"


def write_tpu_files(version_dir: Path, contract: model_contract_pb2.ModelContract) -> int:
    """Writes the converter's options and the TPU version's warm-up into a version's
    assets.extra/ (the export does, when it has bucket signatures); returns the records.

    The warm-up has one record per TPU program; the export's own records cover CPU shapes
    (serving_default at its buckets), which on a TPU host would run on its CPU while the
    TPU programs compiled on first use. Raises ValueError (converter_options) for an export
    without bucket signatures.
    """
    version_dir = Path(version_dir)
    (version_dir / TPU_CONVERTER_OPTIONS_FILE).write_text(converter_options(contract))
    logs = tpu_warmup_logs(contract)
    write_warmup(version_dir / TPU_WARMUP_FILE, logs)
    return len(logs)


def finish_conversion(version_dir: Path, converted_dir: Path) -> None:
    """Gives a converter's output the export's assets.extra/, the TPU warm-up as its warm-up.

    What serving_configs/kubernetes/tpu/convert-job.yaml does with `cp` and `mv`.
    Raises FileNotFoundError when the export has no TPU files.
    """
    source, target = Path(version_dir) / ASSETS_EXTRA, Path(converted_dir) / ASSETS_EXTRA
    if not (Path(version_dir) / TPU_WARMUP_FILE).is_file():
        raise FileNotFoundError(f"{version_dir} has no {TPU_WARMUP_FILE}: export with "
                                "--static-buckets")
    shutil.copytree(source, target, dirs_exist_ok=True)
    (Path(converted_dir) / TPU_WARMUP_FILE).replace(Path(converted_dir) / WARMUP_FILE)
