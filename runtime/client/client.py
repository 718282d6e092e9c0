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
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from runtime.client.backends import EmbeddedBackend, GrpcBackend
from runtime.client.errors import ClientError, bad_input
from runtime.client.prompt import TIMING_SPEAKER, VoicePrompt, parse_transcript, read_audio

# Silence between dialogue turns.
TURN_GAP_SECONDS = 0.25


@dataclasses.dataclass
class Timings:
    frontend_s: float = 0.0   # text -> semantic tokens (espeak)
    model_s: float = 0.0      # generate calls (SavedModel or server)
    codec_s: float = 0.0      # tokens -> audio


@dataclasses.dataclass
class Synthesis:
    waveform: np.ndarray      # float32 [samples]
    sample_rate: int
    tokens: np.ndarray        # int32 [frames, levels], the generated frames only
    windows: int
    timings: Timings


@dataclasses.dataclass
class _Plan:
    """One utterance to generate: its semantic tokens and voice."""
    semantic: np.ndarray
    voice: VoicePrompt
    seed: int


class Client:
    def __init__(self, target: str, model_name: str = "soundstorm", *, codec_dir=None, **grpc_options):
        self._init(GrpcBackend(target, model_name, **grpc_options), codec_dir)

    @classmethod
    def embedded(cls, model_dir, *, codec_dir=None) -> "Client":
        """The SavedModel at `model_dir` (a version folder or a model base path) in-process."""
        client = cls.__new__(cls)
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

    # Model-specific pieces, configured from the contract.

    @property
    def codec(self):
        if self._codec is None:
            if self.contract.codec.name != "lyra_v2":
                raise bad_input(f"the model's codec is {self.contract.codec.name!r}; this client "
                                "decodes lyra_v2 (a model trained on synthetic tokens has none)")
            from runtime.codec import LyraCodec
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
        return self.contract.codec.sample_rate

    def _vocabulary(self):
        from runtime.frontend import load_vocabulary
        prefix = "espeak-phonemes-"
        if not self.contract.semantic.vocabulary.startswith(prefix):
            raise bad_input(f"the model's semantic vocabulary is "
                            f"{self.contract.semantic.vocabulary!r}, not text: pass semantic "
                            "tokens instead of text")
        return load_vocabulary(self.contract.semantic.vocabulary[len(prefix):])

    def text_to_semantic(self, text: str) -> np.ndarray:
        """Semantic tokens of `text` (phonemes at the model's rate, espeak-ng timing)."""
        from runtime.frontend import get_speaker, text_to_semantic
        if not text or not text.strip():
            raise bad_input("the text is empty")
        return text_to_semantic(text, get_speaker(TIMING_SPEAKER), self._vocabulary(),
                                self.contract.semantic.rate_hz)

    # Prompts

    def voice_prompt(self, audio, *, sample_rate: int | None = None, transcript: str | None = None,
                     prompt_seconds: float | None = None) -> VoicePrompt:
        """A voice prompt from an audio file (any rate, mono or stereo) or a waveform array.

        Uses the last `prompt_seconds` (default: the model's whole prompt budget) of the
        audio; its semantic tokens come from `transcript`, or are the unknown id.
        """
        budget_s = self.max_prompt_frames / self.frame_rate_hz
        if prompt_seconds is not None and not 0 < prompt_seconds <= budget_s:
            what = "prompt too long" if prompt_seconds > budget_s else "prompt_seconds must be > 0"
            raise bad_input(f"{what}: prompt_seconds must be in (0, {budget_s:g}] "
                            f"for this model, got {prompt_seconds}")
        if isinstance(audio, (str, Path)):
            waveform, sample_rate = read_audio(audio)
        else:
            waveform = np.asarray(audio)
            if sample_rate is None:
                raise bad_input("a waveform array needs its sample_rate")
        tokens = self.codec.encode(waveform, sample_rate)
        ratio = self.frames_per_token
        frames = round((prompt_seconds or budget_s) * self.frame_rate_hz)
        frames = min(frames, tokens.shape[0]) // ratio * ratio
        if frames < ratio:
            raise bad_input("the voice prompt is too short to use")
        if transcript is not None:
            from runtime.frontend import get_speaker, semantic_tokens, synthesize
            utterance = synthesize(transcript, get_speaker(TIMING_SPEAKER))
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
        timings.model_s += time.perf_counter() - started
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

    def stream(self, text: str | None = None, voice: VoicePrompt | None = None, *,
               semantic_tokens=None, seed: int = 0, temperature: float | None = None,
               choice_temperature: float | None = None, timings: Timings | None = None
               ) -> Iterator[np.ndarray]:
        """Audio window by window, each yielded as soon as it is decoded.

        Inputs are checked (and text turned into semantic tokens) before this returns, so
        bad input raises here, not at the first iteration.
        """
        timings = timings if timings is not None else Timings()
        semantic = self._target_semantic(text, semantic_tokens, timings)
        windows = self._windows(semantic, self._check_voice(voice), seed, temperature,
                                choice_temperature, timings)
        return (audio for _, audio in windows)

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
            tokens = self._generate([(prompt, target, seed + window)], temperature,
                                    choice_temperature, timings)[0]
            history_tokens = np.concatenate([history_tokens, tokens])
            history_semantic = np.concatenate([history_semantic, target])
            position, window = position + len(target), window + 1
            started = time.perf_counter()
            audio = decode(tokens)
            timings.codec_s += time.perf_counter() - started
            yield tokens, audio

    def synthesize(self, text: str | None = None, voice: VoicePrompt | None = None, *,
                   semantic_tokens=None, seed: int = 0, temperature: float | None = None,
                   choice_temperature: float | None = None) -> Synthesis:
        timings = Timings()
        semantic = self._target_semantic(text, semantic_tokens, timings)
        windows = list(self._windows(semantic, self._check_voice(voice), seed, temperature,
                                     choice_temperature, timings))
        return Synthesis(np.concatenate([audio for _, audio in windows]), self.sample_rate,
                         np.concatenate([tokens for tokens, _ in windows]), len(windows), timings)

    def synthesize_batch(self, items, *, seed: int = 0, temperature: float | None = None,
                         choice_temperature: float | None = None) -> list[Synthesis]:
        """Several utterances, [(text or semantic-token array, voice)], item k with seed + k.

        Items that fit one call go to the model as one batched call (batching never changes
        an example's tokens); longer ones are generated in windows.
        """
        timings = Timings()
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
            plans = [(voices[k], semantics[k], seed + k) for k in fits]
            sampling = self._sampling(temperature, choice_temperature)
            for k, generated in zip(fits, self._generate(plans, *sampling, timings)):
                started = time.perf_counter()
                audio[k], tokens[k] = self.codec.decode(generated), generated
                timings.codec_s += time.perf_counter() - started
        for k in range(len(items)):
            if audio[k] is None:
                parts = list(self._windows(semantics[k], voices[k], seed + k, temperature,
                                           choice_temperature, timings))
                audio[k] = np.concatenate([chunk for _, chunk in parts])
                tokens[k] = np.concatenate([generated for generated, _ in parts])
                windows[k] = len(parts)
        # The batch's timings are shared: each result carries the whole call's.
        return [Synthesis(audio[k], self.sample_rate, tokens[k], windows[k], timings)
                for k in range(len(items))]

    def dialogue(self, transcript: str, voices: dict[str, VoicePrompt], *, seed: int = 0,
                 temperature: float | None = None, choice_temperature: float | None = None
                 ) -> Synthesis:
        """One waveform with the turns in order, each in its speaker's voice (turn k is
        item k of one synthesize_batch: independent turns go to the model as one batch)."""
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
        return (self.contract.default_temperature if temperature is None else temperature,
                self.contract.default_choice_temperature if choice_temperature is None
                else choice_temperature)

    def _check_voice(self, voice: VoicePrompt | None) -> VoicePrompt:
        if voice is None:
            raise bad_input("a voice prompt is required (Client.voice_prompt)")
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
        self.backend.close()


__all__ = ["Client", "ClientError", "Synthesis", "Timings"]
