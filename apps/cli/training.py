"""`soundstorm data build`, `soundstorm train` and `soundstorm sample`: build a corpus, train on
it, listen to a checkpoint."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from soundstorm.apps.cli.arguments import seed_argument, temperature_argument
from soundstorm.runtime.client.seeds import MAX_SEED
from soundstorm.config import PRESETS, get_preset


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
    parser.add_argument("--batch-size", type=int, default=16, help="examples per step")
    parser.add_argument("--seconds", type=float, default=None,
                        help="longest example, in seconds of audio (default: 4 synthetic, "
                             "10 for a corpus: prompt + target)")
    parser.add_argument("--learning-rate", type=float, default=5e-4,
                        help="peak learning rate of the schedule")
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help="default: 5%% of --steps")
    parser.add_argument("--checkpoint-every", type=int, default=200,
                        help="steps between checkpoints")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 compute")
    parser.add_argument("--level-weights", type=float, nargs="+", default=None,
                        help="relative odds of training each RVQ level, one per level "
                             "(default: uniform, the paper)")
    parser.add_argument("--seed", type=seed_argument, default=0,
                        help=f"seed of the initialisation, data order and masking, in [0, {MAX_SEED}]")
    parser.set_defaults(handler=_train)


def _train(args) -> int:
    from soundstorm.config import TrainConfig
    from soundstorm.run_dir import RunDirectory
    from soundstorm.train import Trainer

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
        from soundstorm.data.loader import SpeechCorpus, bucketed_batches, unigram_entropy
        corpus = SpeechCorpus(args.data)
        config = corpus.model_config(config)
        examples = corpus.examples("train")
        baselines = {"unigram entropy of the corpus":
                     unigram_entropy(examples, config.num_levels, config.codebook_size)}
        print(f"corpus {args.data}: {len(examples)} training utterances; model {config}")
        seconds = args.seconds if args.seconds is not None else 10.0
        batches = bucketed_batches(examples, config, args.batch_size, max_seconds=seconds,
                                   seed=args.seed)
        corpus.record_token_contract(args.workdir)
    result = Trainer(config, train_config, args.workdir, loss_baselines=baselines).run(batches)
    print(f"trained to step {result.step}; final loss {result.metrics[-1]['loss']:.3f}; "
          f"loss curve: {RunDirectory(args.workdir).loss_curve_file}")
    return 0


def _add_data(subparsers) -> None:
    from soundstorm.apps.corpus.build import SPEAKER_SETS, TEXT_SOURCES, CorpusConfig
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
    build.add_argument("--heldout-sentences", type=int, default=defaults.num_heldout_sentences,
                       help="sentences kept out of training")
    build.add_argument("--speakers", type=int, default=defaults.num_speakers,
                       help=f"training speakers (default {defaults.num_speakers})")
    build.add_argument("--heldout-speakers", type=int, default=defaults.num_heldout_speakers,
                       help="speakers kept out of training")
    build.add_argument("--heldout-variants", type=int, default=defaults.num_heldout_variants,
                       help="espeak variants no training speaker uses (generated speakers)")
    build.add_argument("--speakers-per-sentence", type=int,
                       default=defaults.speakers_per_sentence,
                       help="speakers saying each sentence; 0: every speaker says every sentence")
    build.add_argument("--seed", type=seed_argument, default=0,
                       help=f"seed of the sentences, speakers and split, in [0, {MAX_SEED}]")
    build.add_argument("--shard-size", type=int, default=defaults.shard_size,
                       help="utterances per shard file")
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
    from soundstorm.apps.corpus.build import CorpusConfig, build_corpus
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
    parser.add_argument("--split", default="eval_unseen_speakers",
                        help="corpus split to draw the example from")
    parser.add_argument("--index", type=int, default=0, help="which utterance of the split")
    parser.add_argument("--out", type=Path, default=None, help="default: WORKDIR/samples/INDEX")
    parser.add_argument("--seed", type=seed_argument, default=0,
                        help=f"sampling seed, in [0, {MAX_SEED}]")
    parser.add_argument("--temperature", type=temperature_argument, default=1.0,
                        help="sampling temperature of the first level, > 0")
    parser.set_defaults(handler=_sample)


def _sample(args) -> int:
    import json
    from soundstorm.apps.evaluation.sample import sample_run
    out = args.out or args.workdir / "samples" / str(args.index)
    figures = sample_run(args.workdir, args.data, args.split, args.index, out, seed=args.seed,
                         temperature=args.temperature)
    print(json.dumps(figures, indent=1))
    print(f"wrote {out}/prompt.wav, generated.wav, reference.wav, spectrograms.png")
    return 0


def add_commands(subparsers) -> None:
    _add_train(subparsers)
    _add_data(subparsers)
    _add_sample(subparsers)
