"""Regenerates the Python code of the project's protos with the pinned grpcio-tools.

    python -m protos.generate            # rewrite protos/*_pb2.py
    python -m protos.generate --out DIR  # write elsewhere (the currency test does)

The generated files are committed; tests/test_protos.py fails when they are
stale. grpcio-tools is pinned in pyproject.toml so the output is reproducible.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_FILES = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "protos").glob("*.proto"))


def generate(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    # A child process: grpc_tools' protoc crashes inside a process that has TensorFlow's
    # protobuf runtime loaded (as the test process has).
    done = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT}",
                           f"--python_out={out}", f"--pyi_out={out}",
                           *(str(ROOT / name) for name in PROTO_FILES)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed ({done.returncode}): {done.stderr.strip()}")
    return [out / name.replace(".proto", suffix)
            for name in PROTO_FILES for suffix in ("_pb2.py", "_pb2.pyi")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT,
                        help="root to write protos/*_pb2.py under (default: the repository)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
