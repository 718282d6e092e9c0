"""The `soundstorm` command line. Each subcommand is a thin shell over a library call."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from soundstorm.config import PRESETS, ConfigError, get_preset
from soundstorm.validation import InputError


def _add_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model (resumes from the run directory's latest checkpoint)",
        description="Train SoundStorm on a token source. Re-running the same command in the "
                    "same --workdir resumes from its latest checkpoint.")
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS),
                        help="model preset (default: small)")
    parser.add_argument("--workdir", type=Path, required=True,
                        help="run directory: checkpoints, metrics.jsonl, loss_curve.png")
    parser.add_argument("--data", default="synthetic", choices=["synthetic"],
                        help="token source (the speech corpus arrives with the data issue)")
    parser.add_argument("--steps", type=int, default=1000, help="total training steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="longest example, in seconds of audio")
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help="default: 5%% of --steps")
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--bf16", action="store_true", help="bfloat16 compute")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=_train)


def _train(args) -> int:
    from soundstorm.synthetic import synthetic_batches
    from soundstorm.train import TrainConfig, Trainer

    config = get_preset(args.preset)
    if args.bf16:
        config = dataclasses.replace(config, compute_dtype="bfloat16")
    train_config = TrainConfig(
        batch_size=args.batch_size, total_steps=args.steps,
        peak_learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps if args.warmup_steps is not None else args.steps // 20,
        checkpoint_every=args.checkpoint_every, seed=args.seed)
    num_semantic = max(1, round(args.seconds * config.semantic_rate_hz))
    batches = synthetic_batches(config, args.batch_size, num_semantic, seed=args.seed)
    result = Trainer(config, train_config, args.workdir).run(batches)
    print(f"trained to step {result.step}; final loss {result.metrics[-1]['loss']:.3f}; "
          f"loss curve: {args.workdir / 'loss_curve.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundstorm", description="SoundStorm: train, export, serve and synthesize.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, InputError, FileNotFoundError) as error:
        print(f"soundstorm {args.command}: error: {error}", file=sys.stderr)
        return 2
