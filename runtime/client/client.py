"""The SoundStorm client: text or semantic tokens + a voice prompt -> a waveform.

    client = Client.embedded("exports/soundstorm")      # or Client("host:8500")
    voice = client.voice_prompt("voice.wav", transcript="What the voice says.")
    speech = client.synthesize("Hello there.", voice, seed=0)
    write_audio("hello.wav", speech.waveform, speech.sample_rate)

Everything about the model (codec, rates, levels, lengths, buckets, schedules)
comes from its `metadata` signature; nothing is hard-coded here. Audio longer
than one call's `max_frames` is generated in windows: each window is prompted
by the voice prompt and the tail of the previous window, and all windows go
through one stateful codec decoder, so the audio is seamless at the joins.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Iterator

import numpy as np

from soundstorm.runtime.client.backends import (DEFAULT_DEADLINE_SECONDS, DEFAULT_MAX_MESSAGE_BYTES,
                                     DEFAULT_RETRIES, EmbeddedBackend, GrpcBackend)
from soundstorm.runtime.client.errors import ClientError, bad_input, client_errors as _client_errors
from soundstorm.runtime.client.prompt import TIMING_SPEAKER, VoicePrompt, parse_transcript, read_audio
from soundstorm.runtime.client.seeds import MAX_SEED, derived_seed, is_seed
from soundstorm.runtime.client.temperatures import is_temperature

# Silence between dialogue turns.
TURN_GAP_SECONDS = 0.25
# The least audio a voice prompt is made from (or all of a shorter prompt_seconds/budget):
# a few milliseconds encode to a frame or two that carry no voice.
MIN_PROMPT_SECONDS = 1.0


@dataclasses.dataclass
class Timings:
    """Where a synthesis spent its time, in seconds (wall clock)."""

    frontend_s: float = 0.0   # text -> semantic tokens (espeak)
    model_s: float = 0.0      # generate calls (SavedModel or server), first calls included
    codec_s: float = 0.0      # tokens -> audio
    # The part of model_s spent in this client's first call of each frame bucket: embedded,
    # that call compiles the bucket's program (XLA, once per process and bucket).
    first_calls_s: float = 0.0


@dataclasses.dataclass
class Synthesis:
    """Generated speech.

    Attributes:
      waveform: float32 [samples], mono, in [-1, 1].
      sample_rate: Hz of `waveform` (the codec's, 16000 for Lyra v2).
      tokens: int32 [frames, levels], the generated codec tokens (the prompt excluded).
      windows: model calls (windows) the audio took; for a dialogue, its turns.
      timings: where the time went (Timings).
    """

    waveform: np.ndarray
    sample_rate: int
    tokens: np.ndarray
    windows: int
    timings: Timings


@dataclasses.dataclass
class _Plan:
    """One utterance to generate: its semantic tokens and voice."""
    semantic: np.ndarray
    voice: VoicePrompt
    seed: int


class Client:
    """Speech from text (or semantic tokens) in a voice prompt's voice, through a SoundStorm
    model served by TF Serving (ours or tensorflow_model_server) or loaded in-process
    (`Client.embedded`).

    Every error any method raises is a ClientError (runtime.client.errors), with a gRPC
    status code: INVALID_ARGUMENT or NOT_FOUND for the caller's input, the server's own code
    for what it answered (UNAVAILABLE once retries are spent, DEADLINE_EXCEEDED, ...).
    """

    def __init__(self, target: str, model_name: str = "soundstorm", *,
                 version: int | None = None, version_label: str = "",
                 deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
                 retries: int = DEFAULT_RETRIES, root_certificates: bytes | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 connect_seconds: float | None = None,
                 codec_dir: str | Path | None = None):
        """Connects to `target` and reads the model's contract (its `metadata` signature).

        Args:
          target: "HOST:PORT" of a TF Serving gRPC endpoint, or "dns:///NAME:PORT" to
            balance round-robin over every address of a fleet.
          model_name: the model's name on the server (default "soundstorm").
          version: a version number to call; default the newest the server has.
          version_label: a version label (e.g. "stable") instead of `version`.
          deadline_seconds: the deadline of each call, retries included (default 600 s:
            30 s of audio on a CPU fits in one call).
          retries: further attempts after UNAVAILABLE, 0 to 4 (default 3), with gRPC's
            exponential backoff from 0.5 s; no other code is retried.
          root_certificates: PEM bytes of the CA that signed the server's certificate, for
            TLS; default None (plain text).
          max_message_bytes: the largest message sent or received (default 64 MiB, the
            server's own default cap).
          connect_seconds: how long the first call waits for the server to accept a
            connection before UNAVAILABLE (default 20 s, DEFAULT_CONNECT_SECONDS; at most
            the deadline).
          codec_dir: folder of the Lyra v2 TFLite files; default $SOUNDSTORM_CODEC_DIR or
            the per-user codec folder (`soundstorm codec fetch`).
        Raises:
          ClientError: UNAVAILABLE when the server cannot be reached (after the retries),
            NOT_FOUND when it has no such model or version, INVALID_ARGUMENT for bad options.
        """
        with _client_errors():
            _check_type("target", target, str, "a str 'HOST:PORT'")
            _check_type("model_name", model_name, str, "a str")
            if codec_dir is not None:
                _check_type("codec_dir", codec_dir, (str, os.PathLike), "a folder path")
            self._init(GrpcBackend(target, model_name, version=version,
                                   version_label=version_label, deadline_seconds=deadline_seconds,
                                   retries=retries, root_certificates=root_certificates,
                                   max_message_bytes=max_message_bytes,
                                   connect_seconds=connect_seconds), codec_dir)

    @classmethod
    def embedded(cls, model_dir: str | Path, *, codec_dir: str | Path | None = None
                 ) -> "Client":
        """A client running the SavedModel in this process (TensorFlow, no server).

        Args:
          model_dir: a version folder, or a model base path (its newest version is loaded).
          codec_dir: as for `Client(...)`.
        Raises:
          ClientError: NOT_FOUND when no SavedModel is there; the load's own code otherwise.
        """
        client = cls.__new__(cls)
        with _client_errors():
            _check_type("model_dir", model_dir, (str, os.PathLike), "a folder path")
            if codec_dir is not None:
                _check_type("codec_dir", codec_dir, (str, os.PathLike), "a folder path")
            client._init(EmbeddedBackend(Path(model_dir)), codec_dir)
        return client

    def _init(self, backend, codec_dir) -> None:
        self.backend = backend
        self.contract = backend.contract()
        c = self.contract
        self.frames_per_token = c.semantic.frames_per_token
        self.num_levels, self.codebook_size = c.acoustic.num_levels, c.acoustic.codebook_size
        self.max_frames, self.max_prompt_frames = c.max_frames, c.max_prompt_frames
        self.frame_rate_hz = c.acoustic.frame_rate_hz
        self._codec_dir = codec_dir
        self._codec = None
        self._shapes_run: set[tuple[int, ...]] = set()  # request shapes called so far

    # Model-specific pieces, configured from the contract.

    @property
    @_client_errors()
    def codec(self):
        """The model's codec (Lyra v2), loaded on first use from `codec_dir`.

        Raises:
          ClientError: NOT_FOUND or DATA_LOSS when its files are missing or wrong (the
            message says how to fetch them); INVALID_ARGUMENT for a model without a codec.
        """
        if self._codec is None:
            if self.contract.codec.name != "lyra_v2":
                raise bad_input(f"the model's codec is {self.contract.codec.name!r}; this client "
                                "decodes lyra_v2 (a model trained on synthetic tokens has none)")
            from soundstorm.runtime.codec import LyraCodec
            self._codec = LyraCodec(self._codec_dir, lyra_levels=self.contract.codec.native_levels,
                                    group_size=self.contract.codec.group_size)
            if (self._codec.num_levels, self._codec.codebook_size) != (self.num_levels,
                                                                       self.codebook_size):
                raise bad_input(f"codec gives {self._codec.num_levels} x "
                                f"{self._codec.codebook_size} tokens, the model "
                                f"{self.num_levels} x {self.codebook_size}")
        return self._codec

    @property
    def sample_rate(self) -> int:
        """Hz of the audio the client reads and writes (the codec's: 16000 for Lyra v2)."""
        return self.contract.codec.sample_rate

    def _vocabulary(self):
        from soundstorm.runtime.frontend import load_vocabulary
        prefix = "espeak-phonemes-"
        if not self.contract.semantic.vocabulary.startswith(prefix):
            raise bad_input(f"the model's semantic vocabulary is "
                            f"{self.contract.semantic.vocabulary!r}, not text: pass semantic "
                            "tokens instead of text")
        return load_vocabulary(self.contract.semantic.vocabulary[len(prefix):])

    @_client_errors()
    def text_to_semantic(self, text: str) -> np.ndarray:
        """The semantic tokens of `text`: int32 [tokens], phonemes at the model's semantic
        rate (contract.semantic.rate_hz), timed by espeak-ng.

        `text` is normalized first (runtime/frontend/normalize.py: typography, line breaks,
        numbers, currency, dates and abbreviations read as words; docs/client.md).

        Raises:
          ClientError: INVALID_ARGUMENT for empty text, text with nothing to say, a character
            with no reading (named, with its position), or a model without a text vocabulary.
        """
        from soundstorm.runtime.frontend import get_speaker, text_to_semantic
        _check_type("text", text, str, "a str")
        if not text.strip():
            raise bad_input("the text is empty")
        return text_to_semantic(text, get_speaker(TIMING_SPEAKER), self._vocabulary(),
                                self.contract.semantic.rate_hz)

    # Prompts

    @_client_errors()
    def voice_prompt(self, audio, *, sample_rate: int | None = None, transcript: str | None = None,
                     prompt_seconds: float | None = None) -> VoicePrompt:
        """A voice prompt: the voice the speech will have.

        Args:
          audio: a path (str or Path) to any file libsndfile reads (wav, flac, ogg, ...; any
            rate, mono or stereo), or a waveform array float [samples] or [samples, channels].
          sample_rate: Hz of `audio` when it is an array (required then); ignored for files.
          transcript: what the audio says, if known (better prosody); normalized like text.
          prompt_seconds: use the last this many seconds of the audio; default the model's
            whole prompt budget (contract.max_prompt_frames; 3 s for the reference model).
        Returns:
          VoicePrompt: its codec tokens int32 [P, levels] and semantic tokens int32
          [P / frames_per_token] (the transcript's, or the unknown id).
        Raises:
          ClientError: NOT_FOUND for a missing file; INVALID_ARGUMENT for audio that cannot
            be read, audio shorter than MIN_PROMPT_SECONDS (1 s) or than a shorter prompt
            asked for, prompt_seconds outside (0, budget], an array without its sample_rate,
            arguments of the wrong type; the codec's errors (see `codec`).
        """
        budget_s = self.max_prompt_frames / self.frame_rate_hz
        if prompt_seconds is not None:
            _check_type("prompt_seconds", prompt_seconds, numbers.Real, "a number of seconds")
        if transcript is not None:
            _check_type("transcript", transcript, str, "a str")
        if prompt_seconds is not None and not 0 < prompt_seconds <= budget_s:
            what = "prompt too long" if prompt_seconds > budget_s else "prompt too short"
            raise bad_input(f"{what}: prompt_seconds must be in (0, {budget_s:g}] "
                            f"for this model, got {prompt_seconds}")
        if isinstance(audio, (str, os.PathLike)):
            waveform, sample_rate = read_audio(audio)
        else:
            _check_type("audio", audio, (np.ndarray, list, tuple),
                        "a file path or a waveform array float [samples] or [samples, channels]")
            waveform = np.asarray(audio)
            if sample_rate is None:
                raise bad_input("a waveform array needs its sample_rate")
        _check_type("sample_rate", sample_rate, numbers.Integral, "an int number of Hz")
        asked_s = prompt_seconds or budget_s
        needed_s = min(asked_s, MIN_PROMPT_SECONDS)
        if waveform.shape[0] < needed_s * sample_rate:
            seconds = waveform.shape[0] / sample_rate
            raise bad_input(f"the voice prompt is too short to use: {seconds:.2f} s of audio, "
                            f"and a voice needs at least {needed_s:g} s")
        tokens = self.codec.encode(waveform, sample_rate)
        ratio = self.frames_per_token
        frames = round(asked_s * self.frame_rate_hz)
        frames = min(frames, tokens.shape[0]) // ratio * ratio
        if frames < ratio:
            raise bad_input("the voice prompt is too short to use")
        if transcript is not None:
            from soundstorm.runtime.frontend import get_speaker, normalize_text, semantic_tokens, synthesize
            utterance = synthesize(normalize_text(transcript), get_speaker(TIMING_SPEAKER))
            whole = semantic_tokens(utterance, self._vocabulary(), self.contract.semantic.rate_hz,
                                    num_frames=-(-tokens.shape[0] // ratio))
            semantic = whole[len(whole) - frames // ratio:]
        else:
            semantic = np.full(frames // ratio, self.contract.semantic.unknown_id, np.int32)
        return VoicePrompt(tokens=tokens[tokens.shape[0] - frames:].astype(np.int32),
                           semantic=semantic.astype(np.int32))

    # Generation

    def _bucket(self, frames: int) -> int:
        return next((b for b in self.contract.frame_buckets if b >= frames), self.max_frames)

    def _window_request(self, plans: list[tuple[VoicePrompt, np.ndarray, int]],
                        temperature: float, choice_temperature: float) -> dict[str, np.ndarray]:
        """One batched generate call: (prompt, target semantic, seed) per example, padded."""
        ratio = self.frames_per_token
        totals = [prompt.frames + len(target) * ratio for prompt, target, _ in plans]
        frames = self._bucket(max(totals))
        batch = len(plans)
        semantic = np.zeros((batch, frames // ratio), np.int32)
        prompts = np.zeros((batch, self.max_prompt_frames, self.num_levels), np.int32)
        for row, (prompt, target, _) in enumerate(plans):
            tokens = np.concatenate([prompt.semantic, target])
            semantic[row, :len(tokens)] = tokens
            prompts[row, :prompt.frames] = prompt.tokens
        return {"semantic_tokens": semantic, "prompt_tokens": prompts,
                "prompt_lengths": np.array([p.frames for p, _, _ in plans], np.int32),
                "lengths": np.array(totals, np.int32),
                "seeds": np.array([seed for _, _, seed in plans], np.int32),
                "temperature": np.full(batch, temperature, np.float32),
                "choice_temperature": np.full(batch, choice_temperature, np.float32)}

    def _generate(self, plans, temperature, choice_temperature, timings: Timings):
        request = self._window_request(plans, temperature, choice_temperature)
        started = time.perf_counter()
        tokens = self.backend.generate(request)["acoustic_tokens"]
        elapsed = time.perf_counter() - started
        timings.model_s += elapsed
        shape = request["semantic_tokens"].shape
        if shape not in self._shapes_run:
            self._shapes_run.add(shape)
            timings.first_calls_s += elapsed
        return [tokens[row, prompt.frames:request["lengths"][row]]
                for row, (prompt, _, _) in enumerate(plans)]

    def _window_prompt(self, voice: VoicePrompt, history_tokens: np.ndarray,
                       history_semantic: np.ndarray) -> VoicePrompt:
        """Half the budget of the voice prompt, the rest the tail of what came before."""
        ratio = self.frames_per_token
        if history_tokens.shape[0] == 0:
            return voice
        tail = min(history_tokens.shape[0], self.max_prompt_frames // 2) // ratio * ratio
        head = min(voice.frames, self.max_prompt_frames - tail) // ratio * ratio
        return VoicePrompt(
            tokens=np.concatenate([voice.tokens[voice.frames - head:], history_tokens[-tail:]]),
            semantic=np.concatenate([voice.semantic[len(voice.semantic) - head // ratio:],
                                     history_semantic[len(history_semantic) - tail // ratio:]]))

    @_client_errors()
    def stream(self, text: str | None = None, voice: VoicePrompt | None = None, *,
               semantic_tokens=None, seed: int = 0, temperature: float | None = None,
               choice_temperature: float | None = None, timings: Timings | None = None
               ) -> Iterator[np.ndarray]:
        """Audio window by window, each yielded as soon as it is decoded (streaming).

        Args:
          text, voice, semantic_tokens, seed, temperature, choice_temperature: as for
            synthesize.
          timings: a Timings to add this call's times to (optional).
        Returns:
          An iterator of float32 [samples] audio chunks at `sample_rate`, one per window;
          joined, they are the whole waveform (one stateful codec decoder: no seams).
        Raises:
          ClientError: INVALID_ARGUMENT for bad input (both or neither of text and
            semantic_tokens, text with nothing to say, tokens out of range, no voice, a
            prompt over the budget, a seed out of range); the server's code for what it
            answers (UNAVAILABLE after the retries, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED).
            Inputs are checked (and text turned into semantic tokens) before this returns,
            so bad input raises here, not at the first iteration; errors of later windows
            raise from the iteration.
        """
        if timings is not None:
            _check_type("timings", timings, Timings, "a Timings or None")
        timings = timings if timings is not None else Timings()
        _check_seed(seed)
        self._sampling(temperature, choice_temperature)
        semantic = self._target_semantic(text, semantic_tokens, timings)
        windows = self._windows(semantic, self._check_voice(voice), seed, temperature,
                                choice_temperature, timings)
        return _with_client_errors(audio for _, audio in windows)

    def _windows(self, semantic, voice, seed, temperature, choice_temperature,
                 timings) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(tokens, audio) of each window, in order (inputs already checked)."""
        temperature, choice_temperature = self._sampling(temperature, choice_temperature)
        ratio = self.frames_per_token
        decode = self.codec.stream_decoder()
        history_tokens = np.zeros((0, self.num_levels), np.int32)
        history_semantic = np.zeros(0, np.int32)
        position, window = 0, 0
        while position < len(semantic):
            prompt = self._window_prompt(voice, history_tokens, history_semantic)
            capacity = (self.max_frames - prompt.frames) // ratio
            target = semantic[position:position + capacity]
            tokens = self._generate([(prompt, target, derived_seed(seed, window))],
                                    temperature, choice_temperature, timings)[0]
            history_tokens = np.concatenate([history_tokens, tokens])
            history_semantic = np.concatenate([history_semantic, target])
            position, window = position + len(target), window + 1
            started = time.perf_counter()
            audio = decode(tokens)
            timings.codec_s += time.perf_counter() - started
            yield tokens, audio

    @_client_errors()
    def synthesize(self, text: str | None = None, voice: VoicePrompt | None = None, *,
                   semantic_tokens=None, seed: int = 0, temperature: float | None = None,
                   choice_temperature: float | None = None) -> Synthesis:
        """Speech for `text` (or `semantic_tokens`) in `voice`'s voice: the main entry point.

        Audio longer than one model call (contract.max_frames, 30 s for the reference model)
        is generated in windows, each prompted by the voice and the previous window's tail.

        Args:
          text: what to say (normalized; see text_to_semantic), or None with semantic_tokens.
          voice: the voice prompt (voice_prompt).
          semantic_tokens: int [tokens] instead of text, ids in [0, contract.semantic.
            unknown_id].
          seed: sampling seed, an integer in [0, 2147483647] (default 0); window k of
            long-form audio uses seed + k, wrapped into that range (runtime/client/seeds.py).
          temperature: sampling temperature of the first level, > 0; default the model's
            (contract.default_temperature).
          choice_temperature: the annealed noise of MaskGIT's choice of tokens to keep,
            >= 0; default the model's (contract.default_choice_temperature).
        Returns:
          Synthesis: waveform float32 [samples] at sample_rate, the generated tokens int32
          [frames, levels], the windows and the timings.
        Raises:
          ClientError: INVALID_ARGUMENT for bad input (both or neither of text and
            semantic_tokens, text with nothing to say, tokens out of range, no voice, a
            prompt over the budget, a seed out of range); the server's code for what it
            answers (UNAVAILABLE after the retries, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED).
        """
        timings = Timings()
        _check_seed(seed)
        semantic = self._target_semantic(text, semantic_tokens, timings)
        windows = list(self._windows(semantic, self._check_voice(voice), seed, temperature,
                                     choice_temperature, timings))
        return Synthesis(np.concatenate([audio for _, audio in windows]), self.sample_rate,
                         np.concatenate([tokens for tokens, _ in windows]), len(windows), timings)

    @_client_errors()
    def synthesize_batch(self, items, *, seed: int = 0, temperature: float | None = None,
                         choice_temperature: float | None = None) -> list[Synthesis]:
        """Several utterances, [(text or semantic-token array, voice)], item k with seed + k
        (seeds.derived_seed: wrapped into [0, MAX_SEED]).

        Items that fit one call go to the model as one batched call (batching never changes
        an example's tokens); longer ones are generated in windows.

        Args:
          items: [(text str or semantic tokens int [tokens], VoicePrompt)].
          seed, temperature, choice_temperature: as for synthesize.
        Returns:
          One Synthesis per item, in order (their timings are the whole call's).
        Raises:
          ClientError: INVALID_ARGUMENT for bad input (both or neither of text and
            semantic_tokens, text with nothing to say, tokens out of range, no voice, a
            prompt over the budget, a seed out of range); the server's code for what it
            answers (UNAVAILABLE after the retries, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED).
        """
        timings = Timings()
        _check_seed(seed)
        items = _checked_items(items)
        semantics, voices = [], []
        for text_or_tokens, voice in items:
            is_text = isinstance(text_or_tokens, str)
            semantics.append(self._target_semantic(text_or_tokens if is_text else None,
                                                   None if is_text else text_or_tokens, timings))
            voices.append(self._check_voice(voice))
        tokens: list[np.ndarray | None] = [None] * len(items)
        audio: list[np.ndarray | None] = [None] * len(items)
        windows = [1] * len(items)
        fits = [k for k in range(len(items))
                if voices[k].frames + len(semantics[k]) * self.frames_per_token <= self.max_frames]
        if fits:
            plans = [(voices[k], semantics[k], derived_seed(seed, k)) for k in fits]
            sampling = self._sampling(temperature, choice_temperature)
            for k, generated in zip(fits, self._generate(plans, *sampling, timings)):
                started = time.perf_counter()
                audio[k], tokens[k] = self.codec.decode(generated), generated
                timings.codec_s += time.perf_counter() - started
        for k in range(len(items)):
            if audio[k] is None:
                parts = list(self._windows(semantics[k], voices[k], derived_seed(seed, k),
                                           temperature, choice_temperature, timings))
                audio[k] = np.concatenate([chunk for _, chunk in parts])
                tokens[k] = np.concatenate([generated for generated, _ in parts])
                windows[k] = len(parts)
        # The batch's timings are shared: each result carries the whole call's.
        return [Synthesis(audio[k], self.sample_rate, tokens[k], windows[k], timings)
                for k in range(len(items))]

    @_client_errors()
    def dialogue(self, transcript: str, voices: dict[str, VoicePrompt], *, seed: int = 0,
                 temperature: float | None = None, choice_temperature: float | None = None
                 ) -> Synthesis:
        """One waveform with the turns in order, each in its speaker's voice (turn k is
        item k of one synthesize_batch: independent turns go to the model as one batch),
        TURN_GAP_SECONDS (0.25 s) of silence between turns.

        Args:
          transcript: lines "SPEAKER: text" (parse_transcript), one turn each.
          voices: {speaker: VoicePrompt} for every speaker of the transcript.
          seed, temperature, choice_temperature: as for synthesize (turn k: seed + k).
        Returns:
          Synthesis of the whole dialogue (`windows` is the number of turns).
        Raises:
          ClientError: INVALID_ARGUMENT for bad input (both or neither of text and
            semantic_tokens, text with nothing to say, tokens out of range, no voice, a
            prompt over the budget, a seed out of range); the server's code for what it
            answers (UNAVAILABLE after the retries, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED).
            A speaker without a voice, or a transcript without turns, is INVALID_ARGUMENT.
        """
        _check_type("transcript", transcript, str, "a str of lines 'SPEAKER: text'")
        _check_type("voices", voices, dict, "a dict {speaker: VoicePrompt}")
        turns = parse_transcript(transcript)
        missing = sorted({speaker for speaker, _ in turns} - set(voices))
        if missing:
            raise bad_input(f"no voice prompt for speaker(s) {missing}")
        spoken = self.synthesize_batch([(text, voices[speaker]) for speaker, text in turns],
                                       seed=seed, temperature=temperature,
                                       choice_temperature=choice_temperature)
        gap = np.zeros(round(TURN_GAP_SECONDS * self.sample_rate), np.float32)
        pieces = [piece for turn in spoken for piece in (turn.waveform, gap)][:-1]
        return Synthesis(np.concatenate(pieces), self.sample_rate,
                         np.concatenate([turn.tokens for turn in spoken]), len(turns),
                         spoken[0].timings)

    # Helpers

    def _sampling(self, temperature, choice_temperature):
        """The temperatures to send, checked here (the model's own checks would answer
        with TensorFlow's words, after a round trip)."""
        temperature = self.contract.default_temperature if temperature is None else temperature
        choice = (self.contract.default_choice_temperature if choice_temperature is None
                  else choice_temperature)
        if not is_temperature(temperature):
            raise bad_input(f"temperature must be a finite number > 0 in float32, got "
                            f"{temperature!r}")
        if not is_temperature(choice, zero_allowed=True):
            raise bad_input(f"choice_temperature must be a finite number >= 0 in float32, got "
                            f"{choice!r}")
        return temperature, choice

    def _check_voice(self, voice: VoicePrompt | None) -> VoicePrompt:
        if voice is None:
            raise bad_input("a voice prompt is required (Client.voice_prompt)")
        if not isinstance(voice, VoicePrompt):
            raise bad_input(f"voice must be a VoicePrompt (make one with "
                            f"Client.voice_prompt(audio)), got {type(voice).__name__}")
        if voice.frames > self.max_prompt_frames:
            raise bad_input(f"prompt too long: {voice.frames} frames, the model takes at most "
                            f"{self.max_prompt_frames}")
        return voice

    def _target_semantic(self, text, semantic_tokens, timings: Timings | None) -> np.ndarray:
        if (text is None) == (semantic_tokens is None):
            raise bad_input("give either text or semantic_tokens")
        if text is not None:
            started = time.perf_counter()
            semantic = self.text_to_semantic(text)
            if timings is not None:
                timings.frontend_s += time.perf_counter() - started
            return semantic
        semantic = np.asarray(semantic_tokens)
        if semantic.ndim != 1 or semantic.size == 0 or not np.issubdtype(semantic.dtype, np.integer):
            raise bad_input(f"semantic_tokens must be a non-empty 1-D integer array, got "
                            f"{semantic.dtype} {list(semantic.shape)}")
        if semantic.min() < 0 or semantic.max() > self.contract.semantic.unknown_id:
            raise bad_input(f"semantic_tokens must lie in [0, {self.contract.semantic.unknown_id}]")
        return semantic.astype(np.int32)

    def close(self) -> None:
        """Closes the gRPC channel (nothing to do embedded); the client is unusable after."""
        self.backend.close()


__all__ = ["Client", "ClientError", "Synthesis", "Timings"]


def _check_type(name: str, value, kinds, what: str) -> None:
    """INVALID_ARGUMENT naming the argument unless `value` is one of `kinds`: a wrong type
    is the caller's input, answered as such, not an AttributeError from deep inside."""
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise bad_input(f"{name} must be {what}, got {type(value).__name__}")


def _checked_items(items) -> list:
    """synthesize_batch's items as a list of (text or tokens, voice) pairs, or INVALID_ARGUMENT
    naming the first that is not one."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise bad_input(f"items must be a list of (text or semantic tokens, VoicePrompt) pairs, "
                        f"got {type(items).__name__}")
    for index, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise bad_input(f"items[{index}] must be a (text or semantic tokens, VoicePrompt) "
                            f"pair, got {item!r:.60}")
    return list(items)


def _check_seed(seed) -> None:
    if not is_seed(seed):
        raise bad_input(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")


def _with_client_errors(chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """A stream's iteration, raising ClientError as the rest of the library does."""
    with _client_errors():
        yield from chunks
