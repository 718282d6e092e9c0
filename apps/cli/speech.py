"""`soundstorm synthesize` and `soundstorm dialogue`: text and a voice -> speech, through the
client."""

from __future__ import annotations

from pathlib import Path

from soundstorm.apps.cli.arguments import (positive_number, seed_argument, server_address,
                                           speaker_audio, temperature_argument)
from soundstorm.runtime.client.backends import DEFAULT_CONNECT_SECONDS
from soundstorm.runtime.client.seeds import MAX_SEED
from soundstorm.validation import InputError


def read_text_file(path: Path, what: str) -> str:
    """A text file as editors write it: UTF-8 (with or without a BOM) or UTF-16 with its BOM
    (Windows Notepad's "Unicode"); InputError naming the file otherwise."""
    import codecs
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    from soundstorm.runtime.frontend import MAX_DOCUMENT_CHARS
    size, limit = path.stat().st_size, 4 * MAX_DOCUMENT_CHARS  # 4 bytes: UTF-8's longest
    if size > limit:
        raise InputError(f"{what} {path} is {size} bytes; the limit is {limit} "
                         f"({MAX_DOCUMENT_CHARS} characters)")
    data = path.read_bytes()
    encoding = ("utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
                else "utf-8-sig")
    if encoding != "utf-16" and b"\x00" in data:  # text never holds NUL; UTF-16 is full of them
        raise InputError(f"{what} {path} holds NUL bytes (UTF-16 without a byte-order mark, or "
                         "not text); save it as UTF-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise InputError(f"{what} {path} is not UTF-8 text (byte {data[error.start]:#04x} at "
                         f"offset {error.start}); save it as UTF-8") from None


# Relative to the working directory: a checkout's root holds the reference model there.
DEFAULT_MODEL = Path("models/soundstorm")


def add_client_options(parser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="SavedModel to run in-process: a model base path or version folder "
                             "(default models/soundstorm, the committed reference model)")
    parser.add_argument("--server", type=server_address, default=None,
                        help="HOST:PORT of a TF Serving endpoint (ours or tensorflow_model_server) "
                             "instead of --model; dns:///NAME:PORT balances over a fleet")
    parser.add_argument("--model-name", default="soundstorm", help="model name on --server")
    parser.add_argument("--deadline", type=positive_number, default=600.0,
                        help="seconds per call to --server, retries included; connecting waits "
                             f"at most {DEFAULT_CONNECT_SECONDS:g} s of it")
    parser.add_argument("--seed", type=seed_argument, default=0,
                        help=f"sampling seed, an integer in [0, {MAX_SEED}]; long-form windows "
                             "and dialogue turns use seed + k, wrapped into that range "
                             "(default %(default)s)")
    parser.add_argument("--temperature", type=temperature_argument, default=None,
                        help="sampling temperature of the first level, > 0 (default: the "
                             "model's, from its contract)")


def client_from_args(args):
    """The client the options ask for. An embedded model's folder is checked before
    TensorFlow is imported (seconds), so a wrong path fails at once."""
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not args.server:
        check_model_dir(args.model)
    from soundstorm.runtime.client import Client
    if args.server:
        return Client(args.server, args.model_name, deadline_seconds=args.deadline,
                      connect_seconds=min(args.deadline, DEFAULT_CONNECT_SECONDS))
    return Client.embedded(args.model)


def check_model_dir(model: Path) -> None:
    """NOT_FOUND (exit 3) naming the folder and saying how to point at a model, unless
    `model` holds a SavedModel (a version folder or a model base path)."""
    from soundstorm.protos.status import StatusError, not_found
    from soundstorm.runtime.savedmodel.layout import find_version_dir
    try:
        find_version_dir(model)
    except StatusError as error:
        where = (f" (the default, relative to {Path.cwd()})" if model == DEFAULT_MODEL else
                 f" (relative to {Path.cwd()})" if not model.is_absolute() else "")
        raise not_found(f"{error.message}{where}: pass --model "
                        "PATH, a SoundStorm SavedModel version folder or model base path (a "
                        "checkout holds the reference model in models/soundstorm), or --server "
                        "HOST:PORT") from None


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
    parser.add_argument("--prompt-seconds", type=positive_number, default=None,
                        help="use this much of the voice (default: the model's prompt budget)")
    parser.add_argument("--out", type=Path, required=True,
                        help="the audio file to write, in the format of its extension: .wav, "
                             ".flac, .ogg, .mp3 (or another libsndfile writes)")
    add_client_options(parser)
    parser.set_defaults(handler=_synthesize)


def read_semantic_file(path: Path):
    """A 1-D integer array saved by numpy.save, read without pickles; InputError otherwise."""
    import numpy as np
    if not path.is_file():
        raise FileNotFoundError(f"no semantic-token file at {path}")
    try:
        tokens = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:  # not .npy, pickled objects, truncated
        raise InputError(f"--semantic-file {path} is not a .npy array of token ids "
                         f"(numpy.save): {str(error).splitlines()[0]}") from None
    if not isinstance(tokens, np.ndarray) or tokens.ndim != 1 or tokens.dtype.kind not in "iu":
        raise InputError(f"--semantic-file {path} must hold a 1-D integer array, got "
                         f"{getattr(tokens, 'dtype', type(tokens).__name__)} of shape "
                         f"{getattr(tokens, 'shape', '?')}")
    return tokens


def _synthesize(args) -> int:
    import time

    import numpy as np
    from tqdm.auto import tqdm
    from soundstorm.runtime.client import Timings, write_audio
    from soundstorm.runtime.client.prompt import check_output_path

    # Everything the user gave is checked before the model loads (seconds), not after.
    check_output_path(args.out)
    semantic = read_semantic_file(args.semantic_file) if args.semantic_file else None
    text = None
    if semantic is None:
        from soundstorm.runtime.frontend import normalize_text
        text = (read_text_file(args.text_file, "text file") if args.text_file is not None
                else args.text)
        if not text.strip():
            raise InputError("the text is empty")
        normalize_text(text)  # raises for text with nothing to say or no reading
    if not args.voice.is_file():
        raise FileNotFoundError(f"no audio file at {args.voice}")
    client = client_from_args(args)
    voice = client.voice_prompt(args.voice, transcript=args.voice_text,
                                prompt_seconds=args.prompt_seconds)
    timings, chunks = Timings(), []
    if semantic is None:
        started = time.perf_counter()
        semantic = client.text_to_semantic(text)
        timings.frontend_s = time.perf_counter() - started
    windows = client.stream(voice=voice, semantic_tokens=semantic, seed=args.seed,
                            temperature=args.temperature, timings=timings)  # checks inputs
    seconds = len(semantic) * client.frames_per_token / client.frame_rate_hz
    with tqdm(desc="synthesizing", total=round(seconds, 2), unit=" s of audio",
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.2f}/{total:.2f}{unit} "
                         "[{elapsed}<{remaining}]") as progress:
        for chunk in windows:
            chunks.append(chunk)
            progress.update(min(chunk.size / client.sample_rate, progress.total - progress.n))
    waveform = np.concatenate(chunks)
    write_audio(args.out, waveform, client.sample_rate)
    print(f"wrote {args.out}: {waveform.size / client.sample_rate:.2f} s of audio in "
          f"{len(chunks)} window(s); model {timings.model_s:.2f} s ({timings.first_calls_s:.2f} "
          "s of it in the first call of each frame bucket, which compiles it), codec "
          f"{timings.codec_s:.2f} s, frontend {timings.frontend_s:.2f} s")
    return 0


def _add_dialogue(subparsers) -> None:
    parser = subparsers.add_parser(
        "dialogue", help="speak a transcript with speaker turns, one voice per speaker",
        description="A transcript of lines 'SPEAKER: text' and one voice prompt per speaker -> "
                    "one wav with the turns in order.")
    parser.add_argument("--transcript", type=Path, required=True,
                        help="a UTF-8 text file of lines 'SPEAKER: text', one turn per line")
    parser.add_argument("--voice", action="append", required=True, metavar="SPEAKER=AUDIO",
                        type=speaker_audio,
                        help="a speaker's voice prompt (repeat per speaker)")
    parser.add_argument("--out", type=Path, required=True,
                        help="the audio file to write, in the format of its extension: .wav, "
                             ".flac, .ogg, .mp3 (or another libsndfile writes)")
    add_client_options(parser)
    parser.set_defaults(handler=_dialogue)


def _dialogue(args) -> int:
    from tqdm.auto import tqdm
    from soundstorm.runtime.client import parse_transcript, write_audio
    from soundstorm.runtime.client.prompt import check_output_path
    check_output_path(args.out)
    from soundstorm.runtime.frontend import FrontendError, normalize_text
    transcript = read_text_file(args.transcript, "transcript")
    voices = {}
    for speaker, path in args.voice:
        if speaker in voices:
            raise InputError(f"--voice names speaker {speaker!r} twice ({voices[speaker]} and "
                             f"{path}); give each speaker one voice")
        voices[speaker] = Path(path)
    # The transcript, its speakers, their voices and every turn's text are checked before
    # the model loads.
    turns = _numbered_turns(transcript)
    spoken = {speaker for _, speaker, _ in turns}
    missing, unused = sorted(spoken - set(voices)), sorted(set(voices) - spoken)
    if missing:
        raise InputError(f"no --voice for speaker(s) {', '.join(missing)}")
    if unused:
        raise InputError(f"--voice for speaker(s) {', '.join(unused)} with no turn in the "
                         f"transcript (its speakers: {', '.join(sorted(spoken))})")
    for speaker, path in voices.items():
        if not path.is_file():
            raise FileNotFoundError(f"no audio file at {path} (--voice {speaker}=...)")
    for number, speaker, text in turns:
        try:
            normalize_text(text)
        except FrontendError as error:
            raise InputError(f"transcript line {number} ({speaker}): {error.message}") from None
    client = client_from_args(args)
    # One step per voice prompt (encoded by the codec), one for the turns (one batched call).
    with tqdm(desc="dialogue", total=len(voices) + 1, unit=" step") as progress:
        prompts = {}
        for speaker, path in voices.items():
            prompts[speaker] = client.voice_prompt(path)
            progress.update()
        speech = client.dialogue(transcript, prompts, seed=args.seed,
                                 temperature=args.temperature)
        progress.update()
    write_audio(args.out, speech.waveform, speech.sample_rate)
    print(f"wrote {args.out}: {speech.windows} turns, "
          f"{speech.waveform.size / speech.sample_rate:.2f} s")
    return 0


def _numbered_turns(transcript: str) -> list[tuple[int, str, str]]:
    """(line number, speaker, text) of each turn, as parse_transcript reads them."""
    from soundstorm.runtime.client import parse_transcript
    lines = [number for number, line in enumerate(transcript.splitlines(), 1) if line.strip()]
    return [(number, speaker, text)
            for number, (speaker, text) in zip(lines, parse_transcript(transcript))]


def add_commands(subparsers) -> None:
    _add_synthesize(subparsers)
    _add_dialogue(subparsers)
