"""How many phonemes a semantic token rate loses, and how long espeak's phonemes are.

    .venv/bin/python benchmarks/phoneme_rate.py [--sentences 200] [--rates 12.5 25 50]

A semantic token is the phoneme at the centre of its frame
(runtime/frontend/semantic.py), so a phoneme that holds no frame centre is
absent from the token sequence: the model never hears that it should be said.
Over the built-in sentences said by every built-in speaker this prints, per
rate, the share of (non-silence) phonemes lost, and the percentiles of phoneme
durations. espeak reports a few phonemes with zero duration (a dark /l/ merged
into the vowel before it); they are lost at every rate and counted separately.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

from soundstorm.runtime.frontend import SPEAKERS, espeak_version, synthesize
from soundstorm.runtime.frontend.english_text import SENTENCES
from soundstorm.runtime.frontend.semantic import lost_spans

DEFAULT_RATES_HZ = (12.5, 25.0, 50.0)
DURATION_PERCENTILES = (1, 5, 50)
MS_PER_S = 1000.0
MOST_LOST_SHOWN = 6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--rates", type=float, nargs="+", default=list(DEFAULT_RATES_HZ))
    args = parser.parse_args(argv)
    sentences = SENTENCES[:args.sentences]
    speakers = list(SPEAKERS.values())

    start = time.perf_counter()
    lost = collections.Counter()  # rate -> lost phonemes
    lost_by_symbol = {rate: collections.Counter() for rate in args.rates}
    lost_by_speaker = {rate: collections.Counter() for rate in args.rates}
    total_by_speaker = collections.Counter()
    durations_ms, total, zero_length, audio_s = [], 0, 0, 0.0
    for speaker in speakers:
        for sentence in sentences:
            utterance = synthesize(sentence, speaker)
            audio_s += utterance.duration_s
            speech = [span for span in utterance.phonemes if not span.is_silence]
            total += len(speech)
            total_by_speaker[speaker.name] += len(speech)
            zero_length += sum(span.end == span.start for span in speech)
            durations_ms += [(span.end - span.start) / utterance.sample_rate * MS_PER_S
                             for span in speech if span.end > span.start]
            for rate in args.rates:
                lost_here = lost_spans(utterance, rate)
                lost[rate] += len(lost_here)
                lost_by_speaker[rate][speaker.name] += len(lost_here)
                lost_by_symbol[rate].update(span.symbol for span in lost_here)
    elapsed = time.perf_counter() - start

    print(f"espeak-ng {espeak_version()}: {len(sentences)} sentences x {len(speakers)} speakers "
          f"= {len(sentences) * len(speakers)} utterances, {audio_s / 60:.1f} min of audio, "
          f"{total} phonemes (silence excluded); {elapsed:.0f} s")
    print(f"zero-length phonemes (lost at every rate): {zero_length} "
          f"({100 * zero_length / total:.2f} %)")
    percentiles = np.percentile(durations_ms, DURATION_PERCENTILES)
    print("phoneme duration (non-zero spans): "
          + ", ".join(f"p{p} = {value:.1f} ms" for p, value in zip(DURATION_PERCENTILES,
                                                                   percentiles)))
    print()
    print(f"{'rate Hz':>8} {'frame ms':>9} {'lost %':>8} {'lost % excl. zero-len':>22} "
          f"{'worst speaker %':>30}   most lost symbols")
    for rate in args.rates:
        shares = {name: 100 * lost_by_speaker[rate][name] / total_by_speaker[name]
                  for name in total_by_speaker}
        worst = max(shares, key=shares.get)
        common = ", ".join(f"{symbol} {count}"
                           for symbol, count in lost_by_symbol[rate].most_common(MOST_LOST_SHOWN))
        print(f"{rate:>8g} {MS_PER_S / rate:>9.0f} {100 * lost[rate] / total:>8.2f} "
              f"{100 * (lost[rate] - zero_length) / total:>22.2f} "
              f"{f'{shares[worst]:.2f} ({worst})':>30}   {common}")


if __name__ == "__main__":
    main()
