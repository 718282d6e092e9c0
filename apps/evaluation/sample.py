"""Continues a held-out corpus utterance with a trained model, to be heard and looked at.

The prompt is another sentence of the target's speaker (its codec tokens); the
model gets the semantic tokens of prompt + target and generates the target's
codec tokens, which the codec turns into audio. The codec's own round trip of
the target is the reference: it is the best the model could do.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from soundstorm.apps.evaluation.spectral import mel_cepstral_distortion
from soundstorm.runtime.codec import Codec, write_wav
from soundstorm.config import SoundStormConfig
from soundstorm.data.loader import Example
from soundstorm.decoding import generate
from soundstorm.metrics import plot_spectrograms
from soundstorm.validation import InputError


@dataclasses.dataclass(frozen=True)
class Continuation:
    text: str
    speaker: str
    prompt_text: str
    generated_tokens: np.ndarray  # [target frames, Q]
    reference_tokens: np.ndarray
    generated_audio: np.ndarray
    reference_audio: np.ndarray
    prompt_audio: np.ndarray

    @property
    def token_agreement(self) -> np.ndarray:
        """Per level, the share of frames where the generated code equals the reference's."""
        return (self.generated_tokens == self.reference_tokens).mean(axis=0)


def continue_utterance(params, config: SoundStormConfig, codec: Codec, prompt: Example,
                       target: Example, *, seed: int = 0, temperature: float = 1.0
                       ) -> Continuation:
    semantic = np.concatenate([prompt.semantic_tokens, target.semantic_tokens])[None]
    prompt_frames = len(prompt.acoustic_tokens)
    total_frames = prompt_frames + len(target.acoustic_tokens)
    tokens = generate(params, config, semantic, prompt.acoustic_tokens[None],
                      np.array([prompt_frames]), np.array([total_frames]), np.array([seed]),
                      temperature=temperature)[0]
    generated = tokens[prompt_frames:total_frames]
    return Continuation(target.text, target.speaker, prompt.text, generated,
                        target.acoustic_tokens, codec.decode(generated),
                        codec.decode(target.acoustic_tokens), codec.decode(prompt.acoustic_tokens))


def write_continuation(continuation: Continuation, codec: Codec, out_dir: Path) -> dict:
    """prompt.wav, generated.wav, reference.wav and spectrograms.png; returns the figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("prompt", "generated", "reference"):
        write_wav(out_dir / f"{name}.wav", getattr(continuation, f"{name}_audio"), codec.sample_rate)
    plot_spectrograms({f"prompt ({continuation.prompt_text})": continuation.prompt_audio,
                       f"generated: {continuation.text}": continuation.generated_audio,
                       "reference (codec round trip of the real utterance)":
                           continuation.reference_audio},
                      codec.sample_rate, out_dir / "spectrograms.png")
    return {"speaker": continuation.speaker, "text": continuation.text,
            "mcd_generated_vs_reference": mel_cepstral_distortion(
                continuation.reference_audio, continuation.generated_audio, codec.sample_rate),
            "token_agreement_per_level": [round(float(x), 3) for x in continuation.token_agreement]}


def sample_run(workdir: Path, corpus_dir: Path, split: str, index: int, out: Path, *,
               seed: int = 0, temperature: float = 1.0) -> dict:
    """`soundstorm sample`: continues utterance `index` of a corpus split with a run's latest
    checkpoint, prompted by another sentence of its speaker; writes prompt.wav,
    generated.wav, reference.wav and spectrograms.png to `out` and returns the figures.

    Raises InputError for an index outside the split, ConfigError for a corpus whose token
    settings the model does not share.
    """
    from soundstorm.apps.corpus.build import CorpusConfig, make_codec
    from soundstorm.data.loader import SpeechCorpus, pick_prompt
    from soundstorm.run_dir import RunDirectory

    corpus = SpeechCorpus(corpus_dir)
    config, params = RunDirectory(workdir).load()
    corpus.check_compatible(config)
    examples = corpus.examples(split)
    if not 0 <= index < len(examples):
        raise InputError(f"--index must lie in [0, {len(examples)}) for split {split}")
    codec = make_codec(CorpusConfig(**corpus.manifest["config"]))
    continuation = continue_utterance(params, config, codec, pick_prompt(examples, index),
                                      examples[index], seed=seed, temperature=temperature)
    return write_continuation(continuation, codec, Path(out))
