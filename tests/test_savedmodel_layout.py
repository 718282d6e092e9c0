"""runtime/savedmodel/layout.py: TF Serving's on-disk layout, as its source reads it."""

import grpc
import pytest

from soundstorm.protos.status import StatusError
from soundstorm.runtime.savedmodel.layout import (MAX_WARMUP_RECORDS, WARMUP_FILE, ModelNotFoundError,
                                       find_version_dir, parse_version, version_dirs,
                                       versions_on_disk)


@pytest.mark.parametrize("name, version", [
    # absl::SimpleAtoi (file_system_storage_path_source.cc, ParseVersionNumber): ASCII
    # whitespace around, one sign, leading zeros; the value must fit int64.
    ("7", 7), ("007", 7), (" 8\n", 8), ("+9", 9), ("-1", -1),
    ("9223372036854775807", 2**63 - 1),
    ("9223372036854775808", None), ("1a", None), ("", None), ("+", None), ("1.0", None),
    ("٣", None),  # an Arabic-Indic digit: Python's int() takes it, SimpleAtoi does not
    ("latest", None), (".export-3-abc", None), ("1 2", None), ("--1", None),
])
def test_a_folder_name_is_a_version_as_tf_serving_parses_it(name, version):
    assert parse_version(name) == version


def test_versions_are_ordered_as_numbers_and_files_are_not_versions(tmp_path):
    for name in ("9", "10", "100", "2", "007"):
        (tmp_path / name).mkdir()
    (tmp_path / "3").write_text("")  # a file, not a folder
    (tmp_path / ".export-11-x").mkdir()
    assert versions_on_disk(tmp_path) == [2, 7, 9, 10, 100]
    assert version_dirs(tmp_path)[7] == tmp_path / "007"
    assert versions_on_disk(tmp_path / "missing") == []


def test_the_newest_version_or_the_folder_itself_is_found(tmp_path):
    for name in ("9", "10"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    assert find_version_dir(tmp_path) == tmp_path / "10"
    assert find_version_dir(tmp_path / "9") == tmp_path / "9"


@pytest.mark.parametrize("make", [lambda path: None, lambda path: path.mkdir()])
def test_no_model_is_not_found_with_its_path(tmp_path, make):
    make(tmp_path / "m")
    with pytest.raises(ModelNotFoundError, match=str(tmp_path / "m")) as raised:
        find_version_dir(tmp_path / "m")
    # One error type with a code (the CLI catches StatusError); still a FileNotFoundError.
    assert isinstance(raised.value, StatusError) and isinstance(raised.value, FileNotFoundError)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND


def test_the_warmup_file_and_limit_are_tf_servings():
    # saved_model_warmup_util.h: WarmupConsts::kRequestsFileName, kMaxNumRecords.
    assert WARMUP_FILE.as_posix() == "assets.extra/tf_serving_warmup_requests"
    assert MAX_WARMUP_RECORDS == 1000


def test_a_version_that_cannot_serve_is_a_status_error_with_a_code(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    from soundstorm.runtime.savedmodel.servable import Servable
    garbage = tmp_path / "1"
    garbage.mkdir()
    (garbage / "saved_model.pb").write_bytes(b"\x00not a protobuf\xff" * 3)
    with pytest.raises(StatusError, match="Can't parse .*saved_model.pb as binary proto") as raised:
        Servable("m", 1, garbage)
    assert raised.value.code == grpc.StatusCode.DATA_LOSS
    untagged = tmp_path / "2"
    untagged.mkdir()
    saved = saved_model_pb2.SavedModel()
    saved.meta_graphs.add().meta_info_def.tags.append("train")
    (untagged / "saved_model.pb").write_bytes(saved.SerializeToString())
    with pytest.raises(StatusError, match="no meta graph tagged 'serve'") as raised:
        Servable("m", 2, untagged)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND
