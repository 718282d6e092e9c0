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

from apps.evaluation.spectral import mel_cepstral_distortion
from runtime.codec import Codec, write_wav
from soundstorm.config import SoundStormConfig
from soundstorm.data.loader import Example
from soundstorm.decoding import generate
from soundstorm.metrics import plot_spectrograms


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
