"""The `soundstorm` command line. Each subcommand is a thin shell over a library call."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from runtime.codec.base import CodecError
from runtime.frontend.errors import FrontendError
from soundstorm.config import PRESETS, ConfigError, get_preset
from soundstorm.evaluation.asr import RecognizerError
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
    parser.add_argument("--data", default="synthetic",
                        help="'synthetic', or the folder of a corpus built by `soundstorm data "
                             "build` (the model then takes the corpus's token settings)")
    parser.add_argument("--steps", type=int, default=1000, help="total training steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=None,
                        help="longest example, in seconds of audio (default: 4 synthetic, "
                             "10 for a corpus: prompt + target)")
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help="default: 5%% of --steps")
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--bf16", action="store_true", help="bfloat16 compute")
    parser.add_argument("--level-weights", type=float, nargs="+", default=None,
                        help="relative odds of training each RVQ level, one per level "
                             "(default: uniform, the paper)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=_train)


def _train(args) -> int:
    from soundstorm.train import TrainConfig, Trainer

    config = get_preset(args.preset)
    if args.bf16:
        config = dataclasses.replace(config, compute_dtype="bfloat16")
    train_config = TrainConfig(
        batch_size=args.batch_size, total_steps=args.steps,
        peak_learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps if args.warmup_steps is not None else args.steps // 20,
        checkpoint_every=args.checkpoint_every, seed=args.seed,
        level_weights=tuple(args.level_weights) if args.level_weights else None)
    baselines = None
    if args.data == "synthetic":
        from soundstorm.synthetic import synthetic_batches
        seconds = args.seconds if args.seconds is not None else 4.0
        num_semantic = max(1, round(seconds * config.semantic_rate_hz))
        batches = synthetic_batches(config, args.batch_size, num_semantic, seed=args.seed)
    else:
        from soundstorm.data.loader import SpeechCorpus, training_batches, unigram_entropy
        corpus = SpeechCorpus(args.data)
        config = corpus.model_config(config)
        examples = corpus.examples("train")
        baselines = {"unigram entropy of the corpus":
                     unigram_entropy(examples, config.num_levels, config.codebook_size)}
        print(f"corpus {args.data}: {len(examples)} training utterances; model {config}")
        seconds = args.seconds if args.seconds is not None else 10.0
        bucket = BUCKET_SECONDS * config.frame_rate_hz
        max_frames = max(bucket, int(seconds * config.frame_rate_hz) // bucket * bucket)
        batches = training_batches(examples, config, args.batch_size, seed=args.seed,
                                   max_frames=max_frames, bucket_frames=bucket)
        corpus.record_token_contract(args.workdir)
    result = Trainer(config, train_config, args.workdir, loss_baselines=baselines).run(batches)
    print(f"trained to step {result.step}; final loss {result.metrics[-1]['loss']:.3f}; "
          f"loss curve: {args.workdir / 'loss_curve.png'}")
    return 0


# Corpus batches are padded to whole multiples of this many seconds.
BUCKET_SECONDS = 1


def _add_data(subparsers) -> None:
    from soundstorm.data.corpus import SPEAKER_SETS, TEXT_SOURCES, CorpusConfig
    defaults = CorpusConfig()
    parser = subparsers.add_parser(
        "data", help="build the speech corpus (espeak-ng speakers x English sentences, Lyra tokens)")
    actions = parser.add_subparsers(dest="action", required=True)
    build = actions.add_parser(
        "build", help="build or resume a corpus",
        description="Synthesizes sentences x speakers with espeak-ng, encodes them with Lyra and "
                    "writes shards and a manifest (with phoneme and diphone coverage). "
                    "Re-running the same command resumes.")
    build.add_argument("--out", type=Path, required=True, help="corpus folder")
    build.add_argument("--text", choices=TEXT_SOURCES, default=defaults.text,
                       help="wordnet: WordNet's example sentences, open vocabulary (default); "
                            "generator: the built-in closed-vocabulary sentence generator")
    build.add_argument("--speaker-set", choices=SPEAKER_SETS, default=defaults.speakers,
                       help="generated: espeak recipes with held-out variants (default); "
                            "builtin: the 28 named speakers")
    build.add_argument("--sentences", type=int, default=defaults.num_sentences,
                       help=f"training sentences (default {defaults.num_sentences})")
    build.add_argument("--heldout-sentences", type=int, default=defaults.num_heldout_sentences)
    build.add_argument("--speakers", type=int, default=defaults.num_speakers,
                       help=f"training speakers (default {defaults.num_speakers})")
    build.add_argument("--heldout-speakers", type=int, default=defaults.num_heldout_speakers)
    build.add_argument("--heldout-variants", type=int, default=defaults.num_heldout_variants,
                       help="espeak variants no training speaker uses (generated speakers)")
    build.add_argument("--speakers-per-sentence", type=int,
                       default=defaults.speakers_per_sentence,
                       help="speakers saying each sentence; 0: every speaker says every sentence")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--shard-size", type=int, default=defaults.shard_size)
    build.add_argument("--semantic-rate", type=int, default=defaults.semantic_rate_hz,
                       help="semantic tokens per second (default 50; docs/data.md says why)")
    build.add_argument("--lyra-levels", type=int, default=defaults.lyra_levels,
                       help="Lyra RVQ levels kept (docs/codec.md)")
    build.add_argument("--group-size", type=int, default=defaults.group_size,
                       help="consecutive Lyra levels per model level (docs/codec.md)")
    build.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="encoding processes (default: one per core); the corpus is the same "
                            "whatever the count")
    build.set_defaults(handler=_data_build)


def _data_build(args) -> int:
    from soundstorm.data.corpus import CorpusConfig, build_corpus
    config = CorpusConfig(num_sentences=args.sentences,
                          num_heldout_sentences=args.heldout_sentences,
                          num_speakers=args.speakers, num_heldout_speakers=args.heldout_speakers,
                          seed=args.seed, shard_size=args.shard_size,
                          semantic_rate_hz=args.semantic_rate, lyra_levels=args.lyra_levels,
                          group_size=args.group_size, text=args.text, speakers=args.speaker_set,
                          speakers_per_sentence=args.speakers_per_sentence,
                          num_heldout_variants=args.heldout_variants)
    manifest = build_corpus(args.out, config, workers=args.workers)
    for split, info in manifest["splits"].items():
        cover = manifest["coverage"][split]
        print(f"{split}: {info['examples']} utterances, {len(info['speakers'])} speakers, "
              f"{len(info['shards'])} shards; {cover['phoneme_types']} phonemes, "
              f"{cover['diphone_types']} diphones ({cover['diphone_types_in_train']:.1%} of them "
              f"and {cover['diphone_tokens_in_train']:.1%} of occurrences in train)")
    return 0


def _add_sample(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample", help="continue a held-out corpus utterance with a trained model; write WAVs",
        description="Prompts a trained model with another sentence of a held-out utterance's "
                    "speaker, generates the utterance's codec tokens and writes prompt.wav, "
                    "generated.wav, reference.wav and spectrograms.png.")
    parser.add_argument("--workdir", type=Path, required=True, help="training run directory")
    parser.add_argument("--data", type=Path, required=True, help="corpus folder")
    parser.add_argument("--split", default="eval_unseen_speakers")
    parser.add_argument("--index", type=int, default=0, help="which utterance of the split")
    parser.add_argument("--out", type=Path, default=None, help="default: WORKDIR/samples/INDEX")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.set_defaults(handler=_sample)


def _sample(args) -> int:
    import json
    from soundstorm.data.corpus import CorpusConfig, make_codec
    from soundstorm.data.loader import SpeechCorpus
    from soundstorm.data.loader import pick_prompt
    from soundstorm.sample import continue_utterance, write_continuation
    from soundstorm.train import load_run

    corpus = SpeechCorpus(args.data)
    config, params = load_run(args.workdir)
    corpus.check_compatible(config)
    examples = corpus.examples(args.split)
    if not 0 <= args.index < len(examples):
        raise InputError(f"--index must lie in [0, {len(examples)}) for split {args.split}")
    codec = make_codec(CorpusConfig(**corpus.manifest["config"]))
    continuation = continue_utterance(params, config, codec, pick_prompt(examples, args.index),
                                      examples[args.index], seed=args.seed,
                                      temperature=args.temperature)
    out = args.out or args.workdir / "samples" / str(args.index)
    figures = write_continuation(continuation, codec, out)
    print(json.dumps(figures, indent=1))
    print(f"wrote {out}/prompt.wav, generated.wav, reference.wav, spectrograms.png")
    return 0


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _named_schedule(text: str) -> tuple[str, tuple[int, ...]]:
    name, _, schedule = text.partition("=")
    if not name or not schedule:
        raise argparse.ArgumentTypeError(f"expected NAME=ITERATIONS,..., got {text!r}")
    return name, _int_list(schedule)


def _add_export(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a training run as a TF Serving SavedModel (jax2tf)",
        description="Converts a run's checkpoint with jax2tf into a SavedModel whose "
                    "serving_default signature runs the whole decoding loop, written atomically "
                    "to BASE_PATH/MODEL_NAME/VERSION (docs/export.md).")
    parser.add_argument("--workdir", type=Path, required=True, help="training run directory")
    parser.add_argument("--base-path", type=Path, required=True,
                        help="TF Serving model base path; the version goes under MODEL_NAME/")
    parser.add_argument("--model-name", default="soundstorm")
    parser.add_argument("--version", type=int, default=None,
                        help="integer version (default: one past the newest; existing = error)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--schedule", type=_int_list, default=None,
                        help="iterations per level for serving_default, e.g. 16,1,1,1,1,1,1,1 "
                             "(default: the paper's 16 then 1 per level)")
    parser.add_argument("--extra-schedule", type=_named_schedule, action="append", default=[],
                        help="a further signature, e.g. generate_fast=8,1,1,1,1,1,1,1 (repeatable)")
    parser.add_argument("--max-seconds", type=float, default=30.0,
                        help="longest total length per call (default 30)")
    parser.add_argument("--prompt-seconds", type=float, default=3.0,
                        help="longest voice prompt (default 3)")
    parser.add_argument("--buckets", type=_float_list, default=(5.0, 10.0, 20.0, 30.0),
                        help="length buckets in seconds (default 5,10,20,30)")
    parser.add_argument("--static-buckets", action="store_true",
                        help="also export one fixed-shape signature per bucket (TPU)")
    parser.add_argument("--platforms", default="cpu,cuda,tpu",
                        help="jax2tf lowering platforms (default cpu,cuda,tpu)")
    parser.add_argument("--loop", default="scan", choices=("scan", "unrolled"),
                        help="decoding loop inside the module (default scan; docs/export.md)")
    parser.add_argument("--variables-dtype", default="float32", choices=("float32", "bfloat16"),
                        help="storage of the parameters (bfloat16 halves the size; computation "
                             "stays float32)")
    parser.add_argument("--calling-convention", type=int, default=None,
                        help="XlaCallModule version to write (default: JAX's current, 10); 9 for "
                             "TF Serving builds that refuse 10 (docs/export.md)")
    parser.add_argument("--warmup-batch-sizes", type=_int_list, default=(1,),
                        help="batch sizes to write warm-up records for (default 1)")
    parser.add_argument("--default-temperature", type=float, default=1.0,
                        help="sampling temperature the contract records for clients (default 1)")
    parser.add_argument("--default-choice-temperature", type=float, default=4.5,
                        help="confidence-choice temperature the contract records (default 4.5, "
                             "MaskGIT's)")
    parser.set_defaults(handler=_export)


def _export(args) -> int:
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter
    from export import ExportConfig, export_savedmodel

    export_config = ExportConfig(
        model_name=args.model_name, level_schedule=args.schedule,
        extra_schedules=tuple(args.extra_schedule), max_seconds=args.max_seconds,
        max_prompt_seconds=args.prompt_seconds, bucket_seconds=tuple(args.buckets),
        static_buckets=args.static_buckets, platforms=tuple(args.platforms.split(",")),
        loop=args.loop, warmup_batch_sizes=tuple(args.warmup_batch_sizes),
        calling_convention_version=args.calling_convention,
        variables_dtype=args.variables_dtype, default_temperature=args.default_temperature,
        default_choice_temperature=args.default_choice_temperature)
    path = export_savedmodel(args.workdir, args.base_path, export_config, version=args.version,
                             step=args.step)
    print(path)
    return 0


def _flag_bool(text: str) -> bool:
    """TF Serving's boolean flags: --flag, --flag=true, --flag=false."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_serve(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve exported models over TF Serving's gRPC and REST APIs",
        description="A model server that speaks TF Serving's API and reads its config files "
                    "(flags named as tensorflow_model_server's). Serves --model_name from "
                    "--model_base_path, or every model of --model_config_file; new versions are "
                    "loaded and warmed up before they take traffic (docs/serving.md).")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500)")
    parser.add_argument("--rest_api_port", type=int, default=0,
                        help="REST port (default 0: no REST)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--model_name", default="soundstorm")
    parser.add_argument("--model_base_path", type=Path, default=None)
    parser.add_argument("--model_config_file", type=Path, default=None)
    parser.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0,
                        help="re-read --model_config_file this often (0: once)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1,
                        help="look for new versions this often (default 1)")
    parser.add_argument("--enable_batching", nargs="?", const=True, default=False, type=_flag_bool,
                        help="batch requests server-side (TF Serving's flag; =true/=false)")
    parser.add_argument("--batching_parameters_file", type=Path, default=None)
    parser.add_argument("--monitoring_config_file", type=Path, default=None)
    parser.add_argument("--ssl_config_file", type=Path, default=None)
    parser.add_argument("--max_message_bytes", type=int, default=64 * 1024 * 1024,
                        help="largest gRPC message either way (default 64 MiB)")
    # Accepted so tensorflow_model_server command lines run unchanged; XLA is always on here.
    parser.add_argument("--xla_cpu_compilation_enabled", default="true", help=argparse.SUPPRESS)
    parser.add_argument("--xla_gpu_compilation_enabled", default="true", help=argparse.SUPPRESS)
    parser.add_argument("--rest_api_timeout_in_ms", type=int, default=600_000)
    parser.set_defaults(handler=_serve)


def _serve(args) -> int:
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from runtime.serving.cli import serve_from_flags
    from runtime.serving.errors import ServingError
    try:
        return serve_from_flags(args)
    except (ValueError, ServingError) as error:  # a config file or flag combination that cannot work
        print(f"soundstorm serve: error: {error}", file=sys.stderr)
        return 2


def _add_client_options(parser) -> None:
    parser.add_argument("--model", type=Path, default=Path("models/soundstorm"),
                        help="SavedModel to run in-process: a model base path or version folder "
                             "(default models/soundstorm, the committed reference model)")
    parser.add_argument("--server", default=None,
                        help="HOST:PORT of a TF Serving endpoint (ours or tensorflow_model_server) "
                             "instead of --model; dns:///NAME:PORT balances over a fleet")
    parser.add_argument("--model-name", default="soundstorm", help="model name on --server")
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds per call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=None)


def _client(args):
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from runtime.client import Client
    if args.server:
        return Client(args.server, args.model_name, deadline_seconds=args.deadline)
    return Client.embedded(args.model)


def _add_synthesize(subparsers) -> None:
    parser = subparsers.add_parser(
        "synthesize", help="speak text (or semantic tokens) in a voice prompt's voice",
        description="Text or a semantic-token file plus a voice prompt -> a wav. Runs the "
                    "SavedModel in-process by default, or calls --server over gRPC. Audio "
                    "longer than the model's maximum is generated in windows (docs/client.md).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="what to say")
    source.add_argument("--text-file", type=Path, help="a file holding what to say")
    source.add_argument("--semantic-file", type=Path,
                        help="a .npy file of semantic token ids (1-D) instead of text")
    parser.add_argument("--voice", type=Path, required=True,
                        help="voice prompt audio (wav, flac, ...; any rate, mono or stereo)")
    parser.add_argument("--voice-text", default=None, help="what the voice prompt says, if known")
    parser.add_argument("--prompt-seconds", type=float, default=None,
                        help="use this much of the voice (default: the model's prompt budget)")
    parser.add_argument("--out", type=Path, required=True, help="output wav")
    _add_client_options(parser)
    parser.set_defaults(handler=_synthesize)


def _synthesize(args) -> int:
    import numpy as np
    from tqdm.auto import tqdm
    from runtime.client import Timings, write_audio

    client = _client(args)
    voice = client.voice_prompt(args.voice, transcript=args.voice_text,
                                prompt_seconds=args.prompt_seconds)
    text, semantic = args.text, None
    if args.text_file is not None:
        if not args.text_file.is_file():
            raise FileNotFoundError(f"no text file at {args.text_file}")
        text = args.text_file.read_text()
    if args.semantic_file is not None:
        if not args.semantic_file.is_file():
            raise FileNotFoundError(f"no semantic-token file at {args.semantic_file}")
        semantic = np.load(args.semantic_file, allow_pickle=False)
    timings, chunks = Timings(), []
    windows = client.stream(text, voice, semantic_tokens=semantic, seed=args.seed,
                            temperature=args.temperature, timings=timings)  # checks inputs
    with tqdm(desc="synthesizing", unit=" window") as progress:
        for chunk in windows:
            chunks.append(chunk)
            progress.update()
    waveform = np.concatenate(chunks)
    write_audio(args.out, waveform, client.sample_rate)
    print(f"wrote {args.out}: {waveform.size / client.sample_rate:.2f} s of audio in "
          f"{len(chunks)} window(s); model {timings.model_s:.2f} s, codec {timings.codec_s:.2f} s, "
          f"frontend {timings.frontend_s:.2f} s")
    return 0


def _add_dialogue(subparsers) -> None:
    parser = subparsers.add_parser(
        "dialogue", help="speak a transcript with speaker turns, one voice per speaker",
        description="A transcript of lines 'SPEAKER: text' and one voice prompt per speaker -> "
                    "one wav with the turns in order.")
    parser.add_argument("--transcript", type=Path, required=True)
    parser.add_argument("--voice", action="append", required=True, metavar="SPEAKER=AUDIO",
                        help="a speaker's voice prompt (repeat per speaker)")
    parser.add_argument("--out", type=Path, required=True)
    _add_client_options(parser)
    parser.set_defaults(handler=_dialogue)


def _dialogue(args) -> int:
    from runtime.client import write_audio
    if not args.transcript.is_file():
        raise FileNotFoundError(f"no transcript at {args.transcript}")
    voices = {}
    for item in args.voice:
        speaker, _, path = item.partition("=")
        if not speaker or not path:
            raise InputError(f"--voice takes SPEAKER=AUDIO, got {item!r}")
        voices[speaker] = Path(path)
    client = _client(args)
    prompts = {speaker: client.voice_prompt(path) for speaker, path in voices.items()}
    speech = client.dialogue(args.transcript.read_text(), prompts, seed=args.seed,
                             temperature=args.temperature)
    write_audio(args.out, speech.waveform, speech.sample_rate)
    print(f"wrote {args.out}: {speech.windows} turns, "
          f"{speech.waveform.size / speech.sample_rate:.2f} s")
    return 0


def _add_bench(subparsers) -> None:
    from soundstorm.bench.config import SECTIONS, BenchConfig
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
    parser.add_argument("--clients", type=int, nargs="+", default=list(defaults.clients))
    parser.add_argument("--request-seconds", type=float, default=defaults.request_seconds,
                        help="length of one gRPC / batching request")
    parser.add_argument("--prompt-seconds", type=float, default=defaults.prompt_seconds,
                        help="prompt within each direct model request (at most the model's "
                             "prompt budget)")
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    _add_client_options(parser)
    parser.set_defaults(handler=_bench)


def _bench(args) -> int:
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.server:
        return _bench_server(args)
    from soundstorm.bench.config import BenchConfig
    from soundstorm.bench.suite import run_bench
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
    import os
    import platform
    from runtime.client.bench import measure, report
    client = _client(args)
    if args.voice is None:
        raise InputError("bench --server needs --voice")
    voice = client.voice_prompt(args.voice)
    measure(client, voice, min(args.seconds))  # a server warmed up at load; not timed
    rows = [measure(client, voice, seconds, args.seed) for seconds in args.seconds]
    print(f"machine (client): {platform.machine()}, {os.cpu_count()} cores; server "
          f"{args.server}; prompt {voice.frames / client.frame_rate_hz:g} s")
    print(report(rows))
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
    parser.add_argument("--split", default="eval_unseen_speakers")
    parser.add_argument("--utterances", type=int, default=8)
    parser.add_argument("--long-form-seconds", type=float, default=60.0)
    parser.add_argument("--choice-temperature", type=float, default=None,
                        help="confidence-choice temperature (default: the model's contract)")
    _add_client_options(parser)
    parser.set_defaults(handler=_eval)


def _eval(args) -> int:
    import json
    from soundstorm.data.loader import SpeechCorpus
    from soundstorm.evaluation.harness import EvalConfig, evaluate
    corpus = SpeechCorpus(args.data)
    if args.utterances < 1 or args.long_form_seconds <= 0:
        raise InputError("--utterances must be >= 1 and --long-form-seconds > 0")
    metrics = evaluate(_client(args), corpus, args.out,
                       EvalConfig(split=args.split, num_utterances=args.utterances,
                                  long_form_seconds=args.long_form_seconds, seed=args.seed,
                                  temperature=args.temperature,
                                  choice_temperature=args.choice_temperature))
    print(json.dumps({key: value.get("mean", value) for key, value in metrics.items()}, indent=1))
    print(f"report: {args.out / 'report.md'}")
    return 0


def _add_codec(subparsers) -> None:
    parser = subparsers.add_parser("codec", help="the Lyra codec's model files")
    actions = parser.add_subparsers(dest="action", required=True)
    fetch = actions.add_parser("fetch", help="download the pinned, checksummed Lyra v2 models",
                               description="Downloads the three TFLite models of Lyra v2 at a "
                                           "pinned commit and checks their sha256 (docs/codec.md).")
    fetch.add_argument("dest", type=Path, help="folder to hold the three .tflite files")
    fetch.set_defaults(handler=lambda args: __import__("runtime.codec.fetch", fromlist=["main"])
                       .main([str(args.dest)]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundstorm", description="SoundStorm: train, export, serve and synthesize.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train(subparsers)
    _add_data(subparsers)
    _add_sample(subparsers)
    _add_export(subparsers)
    _add_serve(subparsers)
    _add_synthesize(subparsers)
    _add_dialogue(subparsers)
    _add_bench(subparsers)
    _add_eval(subparsers)
    _add_codec(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, InputError, CodecError, FrontendError, RecognizerError,
            FileNotFoundError) as error:
        print(f"soundstorm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        # The client's errors keep the server's gRPC code: name it on the one line.
        from runtime.client.errors import ClientError
        if isinstance(error, ClientError):
            print(f"soundstorm {args.command}: error: {error}", file=sys.stderr)
            return 2
        raise
