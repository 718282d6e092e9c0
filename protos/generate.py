"""Regenerates the Python code of the project's protos with the pinned grpcio-tools.

    python -m soundstorm.protos.generate            # rewrite protos/*_pb2.py
    python -m soundstorm.protos.generate --out DIR  # write elsewhere (the currency test does)

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
    """Writes protos/*_pb2.py(i) under `out`. The modules are generated as
    soundstorm.protos.* (their import name, pyproject.toml's package-dir), from a temporary
    tree where protos/ appears as soundstorm/protos/."""
    import shutil
    import tempfile
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "soundstorm").mkdir()
        (scratch / "soundstorm" / "protos").symlink_to(ROOT / "protos")
        generated = scratch / "out"
        generated.mkdir()
        # A child process: grpc_tools' protoc crashes inside a process that has TensorFlow's
        # protobuf runtime loaded (as the test process has).
        done = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{scratch}",
                               f"--python_out={generated}", f"--pyi_out={generated}",
                               *(f"soundstorm/{name}" for name in PROTO_FILES)],
                              capture_output=True, text=True, cwd=scratch)
        if done.returncode != 0:
            raise RuntimeError(f"protoc failed ({done.returncode}): {done.stderr.strip()}")
        written = []
        for name in PROTO_FILES:
            for suffix in ("_pb2.py", "_pb2.pyi"):
                target = out / name.replace(".proto", suffix)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(generated / "soundstorm" / name.replace(".proto", suffix), target)
                written.append(target)
    return written


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
