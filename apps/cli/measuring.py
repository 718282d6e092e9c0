"""`soundstorm bench` and `soundstorm eval`: speed and quality figures of a model."""

from __future__ import annotations

from pathlib import Path

from soundstorm.apps.cli.arguments import choice_temperature_argument
from soundstorm.apps.cli.speech import add_client_options, client_from_args
from soundstorm.validation import InputError


def _add_bench(subparsers) -> None:
    from soundstorm.apps.bench.config import SECTIONS, BenchConfig
    defaults = BenchConfig()
    parser = subparsers.add_parser(
        "bench", help="measure speed: audio s/s, FLOP/s, vs autoregressive, vs the peer, "
                      "SavedModel vs JAX, gRPC vs embedded, batch throughput",
        description="Runs the benchmark sections on one machine in one run (medians of "
                    "--repeats), prints a table per section and writes report.md and "
                    "bench.json to --out (docs/benchmarks.md). With --server, only the "
                    "end-to-end timings, through that server.")
    parser.add_argument("--voice", type=Path, default=None,
                        help="voice prompt audio (default: an espeak-ng sentence)")
    parser.add_argument("--out", type=Path, default=None, help="report folder")
    parser.add_argument("--seconds", type=float, nargs="+", default=list(defaults.seconds),
                        help="end-to-end audio lengths")
    parser.add_argument("--compare-seconds", type=float, nargs="+",
                        default=list(defaults.compare_seconds),
                        help="lengths of SavedModel vs JAX and FLOP/s")
    parser.add_argument("--ar-seconds", type=float, nargs="+",
                        default=list(defaults.autoregressive_seconds),
                        help="lengths of the autoregressive comparison")
    parser.add_argument("--peer-seconds", type=float, nargs="+",
                        default=list(defaults.peer_seconds),
                        help="lengths of the soundstorm-pytorch comparison")
    parser.add_argument("--clients", type=int, nargs="+", default=list(defaults.clients),
                        help="concurrent clients of the throughput section")
    parser.add_argument("--request-seconds", type=float, default=defaults.request_seconds,
                        help="length of one gRPC / batching request")
    parser.add_argument("--prompt-seconds", type=float, default=defaults.prompt_seconds,
                        help="prompt within each direct model request (at most the model's "
                             "prompt budget)")
    parser.add_argument("--repeats", type=int, default=defaults.repeats,
                        help="timed repeats per measure (medians)")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS,
                        help="which measures to run")
    add_client_options(parser)
    parser.set_defaults(handler=_bench)


def _bench(args) -> int:
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.server:
        return _bench_server(args)
    from soundstorm.apps.bench.config import BenchConfig
    from soundstorm.apps.bench.suite import run_bench
    config = BenchConfig(seconds=tuple(args.seconds), compare_seconds=tuple(args.compare_seconds),
                         autoregressive_seconds=tuple(args.ar_seconds),
                         peer_seconds=tuple(args.peer_seconds), clients=tuple(args.clients),
                         request_seconds=args.request_seconds,
                         prompt_seconds=args.prompt_seconds, repeats=args.repeats,
                         sections=tuple(args.sections))
    run_bench(args.model, config, voice=args.voice, out_dir=args.out,
              log=lambda message: print(message, flush=True))
    if args.out is not None:
        print(f"report: {args.out / 'report.md'}")
    return 0


def _bench_server(args) -> int:
    """End-to-end timings through a running server (no local SavedModel to compare with)."""
    from soundstorm.apps.bench.client_timing import server_report
    if args.voice is None:
        raise InputError("bench --server needs --voice")
    print(server_report(client_from_args(args), args.voice, args.seconds, args.seed,
                        server=args.server))
    return 0


def _add_eval(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate an exported model on held-out sentences and speakers (offline)",
        description="Word and character error rates (Whisper tiny.en), speaker similarity to "
                    "the voice prompt (Resemblyzer) and DNSMOS of generated speech beside the codec's "
                    "resynthesis (ceiling) and the raw espeak-ng audio, plus long-form voice "
                    "consistency; writes report.md, metrics.json and plots to --out.")
    parser.add_argument("--data", type=Path, required=True, help="corpus folder")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--split", default="eval_unseen_speakers",
                        help="corpus split of the evaluation utterances")
    parser.add_argument("--utterances", type=int, default=8, help="utterances evaluated")
    parser.add_argument("--long-form-seconds", type=float, default=60.0,
                        help="length of the long-form (windowed) sample")
    parser.add_argument("--choice-temperature", type=choice_temperature_argument, default=None,
                        help="confidence-choice temperature (default: the model's contract)")
    add_client_options(parser)
    parser.set_defaults(handler=_eval)


def _eval(args) -> int:
    import json
    from soundstorm.data.loader import SpeechCorpus
    from soundstorm.apps.evaluation.harness import EvalConfig, evaluate
    corpus = SpeechCorpus(args.data)
    if args.utterances < 1 or args.long_form_seconds <= 0:
        raise InputError("--utterances must be >= 1 and --long-form-seconds > 0")
    metrics = evaluate(client_from_args(args), corpus, args.out,
                       EvalConfig(split=args.split, num_utterances=args.utterances,
                                  long_form_seconds=args.long_form_seconds, seed=args.seed,
                                  temperature=args.temperature,
                                  choice_temperature=args.choice_temperature))
    print(json.dumps({key: value.get("mean", value) for key, value in metrics.items()}, indent=1))
    print(f"report: {args.out / 'report.md'}")
    return 0


def add_commands(subparsers) -> None:
    _add_bench(subparsers)
    _add_eval(subparsers)
