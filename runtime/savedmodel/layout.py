"""TF Serving's on-disk layout of a model: `<base_path>/<version>/saved_model.pb` and friends.

The one place this convention is written; export writes it, the server and the
client read it. What TF Serving does, with its source:
- a version is a child of the base path whose name parses as a 64-bit integer
  (tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc,
  `ParseVersionNumber`, which is absl::SimpleAtoi: ASCII whitespace around the
  digits and one leading sign are allowed, so `007` is version 7); other names
  (hidden staging folders, `latest`) are ignored, and versions are compared as
  numbers, so 10 is newer than 9;
- warm-up requests are PredictionLog records in
  `<version>/assets.extra/tf_serving_warmup_requests`, of which at most 1000 are
  replayed (tensorflow_serving/servables/tensorflow/saved_model_warmup_util.h,
  `WarmupConsts::kRequestsFileName` and `kMaxNumRecords`).
Ours, beside them (docs/tpu.md): an export with TPU bucket signatures also
writes the converter's options and its TPU version's warm-up into assets.extra/;
the conversion step makes the latter the converted version's WARMUP_FILE.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from soundstorm.protos.status import StatusError

ASSETS_EXTRA = Path("assets.extra")  # files TF Serving reads beside the SavedModel
WARMUP_FILE = ASSETS_EXTRA / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000
TPU_WARMUP_FILE = ASSETS_EXTRA / "tpu_warmup_requests"
TPU_CONVERTER_OPTIONS_FILE = ASSETS_EXTRA / "tpu_converter_options.txtpb"
SAVED_MODEL_FILE = "saved_model.pb"


class ModelNotFoundError(StatusError, FileNotFoundError):
    """No SavedModel where one was named (gRPC NOT_FOUND)."""

    code = grpc.StatusCode.NOT_FOUND


_INT64 = range(-2**63, 2**63)
_ASCII_WHITESPACE = " \t\n\v\f\r"


def parse_version(name: str) -> int | None:
    """The version a folder name stands for, or None if TF Serving ignores it (SimpleAtoi)."""
    digits = name.strip(_ASCII_WHITESPACE)
    unsigned = digits[1:] if digits[:1] in ("+", "-") else digits
    if not (unsigned.isascii() and unsigned.isdigit()):
        return None
    number = int(digits)
    return number if number in _INT64 else None


def version_dirs(base_path: Path) -> dict[int, Path]:
    """Version -> its folder under a model's base path, ascending ({} when it is missing).
    Two names of one number (`7`, `007`): the first by name is kept."""
    base_path = Path(base_path)
    if not base_path.is_dir():
        return {}
    found: dict[int, Path] = {}
    for entry in sorted(base_path.iterdir()):
        version = parse_version(entry.name)
        if version is not None and entry.is_dir():
            found.setdefault(version, entry)
    return dict(sorted(found.items()))


def versions_on_disk(base_path: Path) -> list[int]:
    """The version numbers under a model's base path, ascending ([] when it is missing)."""
    return list(version_dirs(base_path))


def find_version_dir(model_dir: Path) -> Path:
    """A version folder itself, or the newest version under a model's base path.

    Raises ModelNotFoundError when neither is there.
    """
    model_dir = Path(model_dir)
    if (model_dir / SAVED_MODEL_FILE).is_file():
        return model_dir
    if not model_dir.is_dir():
        raise ModelNotFoundError(f"no model at {model_dir}")
    versions = version_dirs(model_dir)
    if not versions:
        raise ModelNotFoundError(f"no SavedModel version under {model_dir} (expected "
                                 f"{SAVED_MODEL_FILE} or integer version folders)")
    return versions[max(versions)]
