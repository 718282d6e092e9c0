"""Compiles every TPU program of an export for TPU v4 on this CPU host, and prints their cost.

    .venv/bin/python tools/tpu_compile_check.py models/soundstorm/4 [--topology v4:2x2x1]
        [--batch-sizes 1,2,4,8,16] [--json reports/tpu/compile.json]

A TPU program is one bucket signature (export --static-buckets) at one of the
converter's allowed batch sizes (the contract's tpu_batch_sizes): the module read
back from saved_model.pb, the exact bytes a TPU fleet converts, compiled by libtpu
for a compile-only device. Prints compile time, generated code, and memory per
program against one TensorCore's share of a v4 chip's HBM; exits 1 if any program
fails to compile or does not fit. libtpu comes from .tpu-check/ (tools/setup.sh),
kept out of .venv because with it installed every JAX start probes for a TPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="an exported version folder")
    parser.add_argument("--topology", default="v4:2x2x1", help="TPU slice (default v4:2x2x1)")
    parser.add_argument("--batch-sizes", default=None,
                        help="comma-separated (default: the contract's tpu_batch_sizes)")
    parser.add_argument("--libtpu-dir", type=Path, default=ROOT / ".tpu-check",
                        help="where tools/setup.sh installed libtpu (default .tpu-check/)")
    parser.add_argument("--json", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    # Compile-only devices need libtpu, not a TPU: keep JAX's own backend on the CPU.
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow reads saved_model.pb
    # libtpu takes a lock file so that two processes do not drive one chip; compile-only
    # devices drive nothing, and two checks (parallel test runs) may well run at once.
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    sys.path.insert(0, str(args.libtpu_dir))
    from soundstorm.export.contract import read_contract
    from soundstorm.export.modules import serialized_modules_of_saved_model
    from soundstorm.export.tpu import TPU_FUNCTION_ALIAS
    from soundstorm.export.stablehlo import batch_polymorphic_exported
    from soundstorm.export.tpu_compile import TPU_V4_HBM_BYTES_PER_CORE, compile_program, tpu_devices

    try:
        contract = read_contract(args.model_dir)
        sizes = ([int(size) for size in args.batch_sizes.split(",")] if args.batch_sizes
                 else list(contract.export_info.tpu_batch_sizes))
        programs = []  # (bucket frames, Exported)
        for module, data in serialized_modules_of_saved_model(args.model_dir):
            if module.alias == TPU_FUNCTION_ALIAS:
                exported = batch_polymorphic_exported(data, module.platforms, module.version)
                # Its bucket: the static semantic length (the 7th input from the end).
                frames = exported.in_avals[-7].shape[1] * contract.semantic.frames_per_token
                programs.append((frames, exported))
    except (OSError, ValueError, KeyError) as error:  # not an export, a bad size, an old alias
        print(f"tpu_compile_check: {args.model_dir}: {error}", file=sys.stderr)
        return 2
    if not programs or not sizes:
        print(f"tpu_compile_check: {args.model_dir} has no TPU bucket signatures "
              "(export with --static-buckets)", file=sys.stderr)
        return 2
    try:
        device = tpu_devices(args.topology)[0]
    except Exception as error:  # libtpu missing or refusing the topology: one line, exit 2
        print(f"tpu_compile_check: no TPU compiler ({error}); run tools/setup.sh, which "
              f"installs libtpu into {args.libtpu_dir}", file=sys.stderr)
        return 2
    print(f"{len(programs)} TPU functions x batch sizes {sizes} on {device.device_kind} "
          f"({args.topology}), one TensorCore's HBM share {TPU_V4_HBM_BYTES_PER_CORE / 2**30:.0f} GiB")
    print(f"{'program':<16} {'batch':>5} {'compile s':>9} {'code MB':>8} {'args MB':>8} "
          f"{'temp MB':>8} {'out MB':>7} {'% HBM':>6}", flush=True)
    rows, failed = [], 0
    for frames, exported in sorted(programs, key=lambda item: item[0]):
        name = f"generate_{frames}"
        for batch in sizes:
            try:
                report = compile_program(exported, batch, device)
            except Exception as error:  # reported per program; the exit status says it failed
                failed += 1
                print(f"{name:<16} {batch:>5} FAILED: {str(error).splitlines()[0]}", flush=True)
                continue
            share = report.memory_bytes / TPU_V4_HBM_BYTES_PER_CORE
            failed += share > 1
            print(f"{name:<16} {batch:>5} {report.compile_seconds:>9.1f} "
                  f"{report.code_bytes / 1e6:>8.2f} {report.argument_bytes / 1e6:>8.1f} "
                  f"{report.temp_bytes / 1e6:>8.1f} {report.output_bytes / 1e6:>7.2f} "
                  f"{share:>6.1%}", flush=True)
            rows.append({"signature": name, "batch": batch,
                         "compile_seconds": report.compile_seconds,
                         "code_bytes": report.code_bytes, "argument_bytes": report.argument_bytes,
                         "temp_bytes": report.temp_bytes, "output_bytes": report.output_bytes,
                         "memory_bytes": report.memory_bytes, "hbm_share": share})
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model_dir": str(args.model_dir),
                                         "topology": args.topology, "device": device.device_kind,
                                         "programs": rows}, indent=1) + "\n")
    print(f"{len(rows)} of {len(rows) + failed} programs compile and fit" if not failed
          else f"{failed} programs failed to compile or do not fit")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
