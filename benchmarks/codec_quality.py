"""Lyra round-trip quality against the SoundStorm decoding passes each setting costs.

    .venv/bin/python benchmarks/codec_quality.py [--utterances 24]

Held-out speech: the held-out (open-vocabulary) sentences of the default
corpus said by its held-out speakers (espeak-ng, converted to 16 kHz), never
used in training. For each number of Lyra levels it prints the bitrate, the
mel-cepstral distortion of the codec round trip (mean over utterances; lower is
better; apps/evaluation/spectral.py), and Whisper tiny.en's word and
character error rates on the round trip (apps/evaluation/asr.py), beside
those of the original audio. Grouping does not change the audio (the
tokens are the same codes), only what the model sees: for each grouping g it
lists the SoundStorm levels (L/g), their codebook size (16^g), the forward
passes of the paper's schedule (16 for the first level + 1 per further level)
and the parameters the token embeddings and output heads cost at a model width.
Mean and median word error rate: Whisper hallucinates long text on a few
utterances, which the mean feels and the median does not.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from soundstorm.runtime.codec import LyraCodec, to_mono
from soundstorm.runtime.frontend import get_speaker, synthesize
from soundstorm.apps.corpus.build import CorpusConfig, plan
from soundstorm.decoding import paper_schedule
from soundstorm.apps.evaluation import (SpeechRecognizer, character_error_rate, mel_cepstral_distortion,
                                   word_error_rate)

LEVEL_CHOICES = (8, 12, 16, 24, 30, 46)
GROUP_SIZES = (1, 2, 3)
BITS_PER_LEVEL = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=48)
    parser.add_argument("--model-dim", type=int, default=192,
                        help="model width for the parameter column (compact preset: 192)")
    args = parser.parse_args()

    jobs = plan(CorpusConfig())["eval_unseen_speakers"][:args.utterances]
    recognizer = SpeechRecognizer()
    speech = []
    for job in jobs:
        utterance = synthesize(job.text, get_speaker(job.speaker))
        speech.append((job.text, to_mono(utterance.waveform, utterance.sample_rate, 16_000)))
    seconds = sum(len(wave) for _, wave in speech) / 16_000
    heard = [recognizer.transcribe(wave) for _, wave in speech]
    original_wer = statistics.mean(word_error_rate(text, hyp) for (text, _), hyp in zip(speech, heard))
    original_cer = statistics.mean(character_error_rate(text, hyp)
                                   for (text, _), hyp in zip(speech, heard))
    print(f"held-out speech: {len(speech)} utterances, {seconds:.1f} s, "
          f"{len({job.speaker for job in jobs})} unseen speakers")
    print(f"Whisper tiny.en on the original espeak-ng audio: WER {original_wer:.1%}, "
          f"CER {original_cer:.1%}\n", flush=True)
    print(" lyra levels  kbps   MCD   WER  (median)  CER  |  SoundStorm levels x codes (passes, "
          f"embedding + head parameters at width {args.model_dim}) for g = "
          + ", ".join(map(str, GROUP_SIZES)))
    for levels in LEVEL_CHOICES:
        codec = LyraCodec(lyra_levels=levels, group_size=1)
        distortions, errors, char_errors = [], [], []
        for text, wave in speech:
            decoded = codec.decode(codec.encode(wave, 16_000))
            distortions.append(mel_cepstral_distortion(wave, decoded, 16_000))
            hyp = recognizer.transcribe(decoded)
            errors.append(word_error_rate(text, hyp))
            char_errors.append(character_error_rate(text, hyp))
        groupings = []
        for group in GROUP_SIZES:
            if levels % group == 0:
                model_levels = levels // group
                passes = sum(paper_schedule(model_levels))
                parameters = model_levels * token_parameters(16 ** group, args.model_dim)
                groupings.append(f"{model_levels}x{16 ** group} ({passes}, {parameters / 1e6:.2f}M)")
            else:
                groupings.append("-")
        kbps = levels * BITS_PER_LEVEL * codec.frame_rate_hz / 1000
        print(f"{levels:12d}  {kbps:4.1f}  {np.mean(distortions):5.2f}  {np.mean(errors):4.0%}  "
              f"{np.median(errors):4.0%}  {np.mean(char_errors):4.0%}  |  " + ", ".join(groupings),
              flush=True)


def token_parameters(codebook_size: int, model_dim: int) -> int:
    """Parameters one model level costs: its embedding table (codes + MASK) and output head."""
    return (codebook_size + 1) * model_dim + model_dim * codebook_size + codebook_size


if __name__ == "__main__":
    main()
