"""`soundstorm export`: a training run's checkpoint -> a SavedModel version in TF Serving's
layout."""

from __future__ import annotations

from pathlib import Path

from soundstorm.apps.cli.arguments import (choice_temperature_argument, float_list, int_list,
                                           named_schedule, temperature_argument)


def _add_export(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a training run as a TF Serving SavedModel (jax2tf)",
        description="Converts a run's checkpoint with jax2tf into a SavedModel whose "
                    "serving_default signature runs the whole decoding loop, written atomically "
                    "to BASE_PATH/MODEL_NAME/VERSION (docs/export.md).")
    parser.add_argument("--workdir", type=Path, required=True, help="training run directory")
    parser.add_argument("--base-path", type=Path, required=True,
                        help="TF Serving model base path; the version goes under MODEL_NAME/")
    parser.add_argument("--model-name", default="soundstorm",
                        help="model name: the folder under --base-path and the name servers "
                             "answer to")
    parser.add_argument("--version", type=int, default=None,
                        help="integer version (default: one past the newest; existing = error)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--schedule", type=int_list, default=None,
                        help="iterations per level for serving_default, e.g. 16,1,1,1,1,1,1,1 "
                             "(default: the paper's 16 then 1 per level)")
    parser.add_argument("--extra-schedule", type=named_schedule, action="append", default=[],
                        help="a further signature, e.g. generate_fast=8,1,1,1,1,1,1,1 (repeatable)")
    parser.add_argument("--max-seconds", type=float, default=30.0,
                        help="longest total length per call (default 30)")
    parser.add_argument("--prompt-seconds", type=float, default=3.0,
                        help="longest voice prompt (default 3)")
    parser.add_argument("--buckets", type=float_list, default=(5.0, 10.0, 20.0, 30.0),
                        help="length buckets in seconds (default 5,10,20,30)")
    parser.add_argument("--static-buckets", action="store_true",
                        help="also export one TPU signature per bucket, static but for the batch, "
                             "with the converter's options and TPU warm-up (docs/tpu.md)")
    parser.add_argument("--tpu-batch-sizes", type=int_list, default=(1, 2, 4, 8, 16),
                        help="batch sizes a TPU compiles per bucket (default 1,2,4,8,16)")
    parser.add_argument("--tpu-matmul-precision", default="highest",
                        choices=("default", "high", "highest"),
                        help="XLA matmul precision of the TPU signatures (default highest: "
                             "float32 as on the CPU; docs/tpu.md)")
    parser.add_argument("--compute-dtype", default=None, choices=("float32", "bfloat16"),
                        help="activations and matmuls of every signature (default: the run's; "
                             "logits and sampling stay float32)")
    parser.add_argument("--platforms", default="cpu,cuda,tpu",
                        help="jax2tf lowering platforms (default cpu,cuda,tpu)")
    parser.add_argument("--loop", default="scan", choices=("scan", "unrolled"),
                        help="decoding loop inside the module (default scan; docs/export.md)")
    parser.add_argument("--variables-dtype", default="float32", choices=("float32", "bfloat16"),
                        help="storage of the parameters (bfloat16 halves the size; computation "
                             "stays float32)")
    parser.add_argument("--calling-convention", type=int, default=None,
                        help="XlaCallModule version to write (default: JAX's current, 10); 9 "
                             "alone does not make TF Serving <= 2.19 run the export (docs/tpu.md)")
    parser.add_argument("--warmup-batch-sizes", type=int_list, default=(1,),
                        help="batch sizes to write warm-up records for (default 1)")
    parser.add_argument("--default-temperature", type=temperature_argument, default=1.0,
                        help="sampling temperature the contract records for clients (default 1)")
    parser.add_argument("--default-choice-temperature",
                        type=choice_temperature_argument, default=4.5,
                        help="confidence-choice temperature the contract records (default 4.5, "
                             "MaskGIT's)")
    parser.set_defaults(handler=_export)


def _export(args) -> int:
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter
    from soundstorm.export import ExportConfig, export_savedmodel

    export_config = ExportConfig(
        model_name=args.model_name, level_schedule=args.schedule,
        extra_schedules=tuple(args.extra_schedule), max_seconds=args.max_seconds,
        max_prompt_seconds=args.prompt_seconds, bucket_seconds=tuple(args.buckets),
        static_buckets=args.static_buckets, tpu_batch_sizes=tuple(args.tpu_batch_sizes),
        tpu_matmul_precision=args.tpu_matmul_precision, compute_dtype=args.compute_dtype,
        platforms=tuple(args.platforms.split(",")),
        loop=args.loop, warmup_batch_sizes=tuple(args.warmup_batch_sizes),
        calling_convention_version=args.calling_convention,
        variables_dtype=args.variables_dtype, default_temperature=args.default_temperature,
        default_choice_temperature=args.default_choice_temperature)
    path = export_savedmodel(args.workdir, args.base_path, export_config, version=args.version,
                             step=args.step)
    print(path)
    return 0


def add_commands(subparsers) -> None:
    _add_export(subparsers)
