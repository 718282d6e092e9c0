"""Converts an exported version for TPU serving with Google's converter image, beside the CPU one.

    .venv/bin/python tools/tpu_convert.py models/soundstorm/4 /models-tpu --image IMAGE [--dry-run]

Runs the Cloud TPU Inference Converter (Docker) on VERSION_DIR with the options the
export wrote to assets.extra/tpu_converter_options.txtpb, then gives the result
the export's assets.extra/ with the TPU warm-up as its warm-up
(export/tpu.py finish_conversion), and moves it to TPU_BASE/<model>/<version>
only when complete. --dry-run prints the docker command and does nothing.
serving_configs/kubernetes/tpu/convert-job.yaml is the same step as a Job.
Exit 2 with one line for an export without TPU signatures or a missing docker.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# As Google's converter guide names it; unverified here (docs/tpu.md): pin the digest you pull.
DEFAULT_IMAGE = "us-docker.pkg.dev/cloud-tpu-images/inference/tpu-inference-converter-cli:latest"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version_dir", type=Path, help="an exported version (--static-buckets)")
    parser.add_argument("tpu_base", type=Path, help="base path of the converted models")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="converter image (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the command only")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from soundstorm.export.contract import read_contract
    from soundstorm.export.tpu import finish_conversion
    from soundstorm.runtime.savedmodel.layout import TPU_CONVERTER_OPTIONS_FILE

    version_dir = args.version_dir.resolve()
    options_file = version_dir / TPU_CONVERTER_OPTIONS_FILE
    if not options_file.is_file():
        print(f"tpu_convert: {version_dir} has no {TPU_CONVERTER_OPTIONS_FILE}: export with "
              "--static-buckets", file=sys.stderr)
        return 2
    contract = read_contract(version_dir)
    model_dir = args.tpu_base.resolve() / contract.model_name
    final, staging = model_dir / version_dir.name, model_dir / f".convert-{version_dir.name}"
    # As this user, so that the finishing step can write into what the converter wrote.
    command = ["docker", "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}",
               "--mount", f"type=bind,source={version_dir},target=/tmp/input,readonly",
               "--mount", f"type=bind,source={model_dir},target=/tmp/output",
               args.image, "--input_model_dir=/tmp/input",
               f"--output_model_dir=/tmp/output/{staging.name}",
               f"--converter_options_string={options_file.read_text()}"]
    print(f"mkdir -p {shlex.quote(str(model_dir))}\n{shlex.join(command)}")
    if args.dry_run:
        return 0
    if final.exists():
        print(f"tpu_convert: {final} exists; versions are immutable", file=sys.stderr)
        return 2
    if shutil.which("docker") is None:
        print("tpu_convert: docker is not installed (or use the Kubernetes Job)", file=sys.stderr)
        return 2
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    if subprocess.run(command).returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        print("tpu_convert: the converter failed (its output is above)", file=sys.stderr)
        return 1
    try:
        finish_conversion(version_dir, staging)
        staging.rename(final)
    except OSError as error:
        print(f"tpu_convert: finishing {staging} failed: {error}", file=sys.stderr)
        return 1
    print(f"converted: {final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
