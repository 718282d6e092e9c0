"""The committed generated code of protos/ is what the pinned grpcio-tools makes of the .proto files."""

from pathlib import Path

from soundstorm.protos import model_contract_pb2
from soundstorm.protos.generate import PROTO_FILES, ROOT, generate


def test_generated_code_is_current(tmp_path):
    written = generate(tmp_path)
    assert written, "no protos generated"
    for path in written:
        committed = ROOT / path.relative_to(tmp_path)
        assert committed.is_file(), f"{committed} is missing: run python -m soundstorm.protos.generate"
        assert path.read_bytes() == committed.read_bytes(), (
            f"{committed} is stale: run python -m soundstorm.protos.generate")


def test_every_proto_file_is_generated():
    assert "protos/model_contract.proto" in PROTO_FILES
    assert Path(model_contract_pb2.__file__).name == "model_contract_pb2.py"


def test_contract_round_trips_through_bytes():
    contract = model_contract_pb2.ModelContract(model_name="m", version=3, max_frames=1500,
                                                frame_buckets=[250, 1500])
    contract.signatures.add(name="serving_default", level_schedule=[16, 1, 1], num_passes=18)
    again = model_contract_pb2.ModelContract.FromString(contract.SerializeToString())
    assert again == contract and list(again.signatures[0].level_schedule) == [16, 1, 1]
