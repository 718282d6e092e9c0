"""The decoding loop inside the SavedModel: lax.scan against straight-line (unrolled) code.

    .venv/bin/python benchmarks/export_loop.py [--workdir runs/small-speech] [--seconds 10]

For each loop form, in one run on the same request: export time, size of the
serialized StableHLO (serving_default, all platforms) and of saved_model.pb,
and in a fresh process the first call (XLA compile + run) and the median of
`--repeats` further calls. The same for JAX's own jit of `decode` (compile via
lower().compile(), then runs). The export's default loop was chosen from these
figures (docs/export.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from soundstorm.apps.bench.export_timing import ensure_run, random_request, run_child, timed


def child_jax(workdir: str, seconds: float, loop: str, repeats: int) -> dict:
    import jax
    from soundstorm.decoding import DecodingConfig, check_decode_inputs, decode
    from soundstorm.run_dir import RunDirectory

    config, params = RunDirectory(Path(workdir)).load()
    paper = DecodingConfig.paper(config)
    decoding = DecodingConfig(paper.level_schedule,
                              scan_unroll=paper.num_passes if loop == "unrolled" else 1)
    inputs = check_decode_inputs(config, *random_request(config, seconds).values())
    compile_s, compiled = timed(lambda: decode.lower(
        params, *inputs, config=config, decoding=decoding).compile())
    times = [timed(lambda: jax.block_until_ready(compiled(params, *inputs)))[0]
             for _ in range(repeats + 1)][1:]
    return {"compile_s": compile_s, "run_s": statistics.median(times)}


def child_savedmodel(model_dir: str, workdir: str, seconds: float, repeats: int) -> dict:
    import tensorflow as tf
    from soundstorm.run_dir import RunDirectory

    config, _ = RunDirectory(Path(workdir)).read_config()
    serving = tf.saved_model.load(model_dir).signatures["serving_default"]
    tensors = {key: tf.constant(value) for key, value in random_request(config, seconds).items()}
    first_s, _ = timed(lambda: serving(**tensors))
    times = [timed(lambda: serving(**tensors))[0] for _ in range(repeats)]
    return {"first_s": first_s, "run_s": statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/small-speech"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "jax":
            result = child_jax(args.child[1], args.seconds, args.child[2], args.repeats)
        else:
            result = child_savedmodel(args.child[1], args.child[2], args.seconds, args.repeats)
        print(json.dumps(result))
        return

    from soundstorm.export import ExportConfig, export_savedmodel
    from soundstorm.export.modules import modules_of_saved_model
    workdir = ensure_run(args.workdir)
    # A throwaway export first: the first one in a process also pays for imports and
    # first-time tracing, which would otherwise be charged to whichever loop goes first.
    export_savedmodel(workdir, Path(tempfile.mkdtemp(prefix="export-loop-warm-")),
                      ExportConfig(max_seconds=args.seconds, bucket_seconds=(args.seconds,)),
                      log=None)
    rows = {}
    for loop in ("scan", "unrolled"):
        base = Path(tempfile.mkdtemp(prefix=f"export-loop-{loop}-"))
        config = ExportConfig(max_seconds=args.seconds, bucket_seconds=(args.seconds,), loop=loop)
        export_s, model_dir = timed(lambda: export_savedmodel(workdir, base, config, log=None))
        # serving_default's module: the larger of the two (the decoding loop holds the network
        # and the sampling around it; `logits` holds the network alone).
        module = max(modules_of_saved_model(model_dir), key=lambda m: m.module_bytes)
        common = ["--seconds", str(args.seconds), "--repeats", str(args.repeats)]
        rows[loop] = {
            "export_s": export_s, "module_mb": module.module_bytes / 1e6,
            "pb_mb": (model_dir / "saved_model.pb").stat().st_size / 1e6,
            "tf": run_child(__file__, ["--child", "savedmodel", str(model_dir), str(workdir),
                                       *common]),
            "jax": run_child(__file__, ["--child", "jax", str(workdir), loop, *common]),
        }
        print(f"{loop}: {json.dumps(rows[loop])}", file=sys.stderr)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; run {workdir}; "
          f"{args.seconds:g} s of audio, 3 s prompt, batch 1, paper schedule; "
          f"medians of {args.repeats}")
    print(f"{'loop':9} {'export s':>9} {'StableHLO MB':>13} {'saved_model.pb MB':>18} "
          f"{'TF 1st call s':>14} {'TF run s':>9} {'JAX compile s':>14} {'JAX run s':>10}")
    for loop, row in rows.items():
        print(f"{loop:9} {row['export_s']:9.1f} {row['module_mb']:13.2f} {row['pb_mb']:18.2f} "
              f"{row['tf']['first_s']:14.2f} {row['tf']['run_s']:9.2f} "
              f"{row['jax']['compile_s']:14.2f} {row['jax']['run_s']:10.2f}")


if __name__ == "__main__":
    main()
