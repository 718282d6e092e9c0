"""Phoneme spans: espeak's phoneme start events turned into contiguous [start, end) intervals.

espeak reports when each phoneme starts, not when it ends; a phoneme ends where
the next one starts, the last one where the audio ends. Audio before the first
event is silence. espeak's pause phonemes (mnemonics starting with "_": "_",
"_:", "_!" ...) all become the one silence symbol, and neighbouring silences
merge, so the silence token means "no speech here" whatever espeak called it.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

SILENCE_SYMBOL = "_"
PAUSE_PREFIX = "_"  # every espeak pause phoneme's mnemonic starts with it


@dataclasses.dataclass(frozen=True)
class PhonemeSpan:
    """Phoneme `symbol` occupies samples [start, end) of its utterance's waveform."""

    symbol: str
    start: int
    end: int

    @property
    def is_silence(self) -> bool:
        return self.symbol == SILENCE_SYMBOL


def symbol_of(espeak_name: str) -> str:
    """The vocabulary symbol for an espeak phoneme mnemonic: pauses become silence."""
    return SILENCE_SYMBOL if espeak_name.startswith(PAUSE_PREFIX) else espeak_name


def spans_from_events(events: Iterable[tuple[str, int]], num_samples: int) -> tuple[PhonemeSpan, ...]:
    """Contiguous spans covering [0, num_samples) from (espeak name, start sample) events.

    Start samples are clamped into [0, num_samples] and made non-decreasing, so
    a malformed event can shorten a neighbour but never break contiguity.
    Zero-length silences are dropped; a zero-length real phoneme is kept (espeak
    did say it, and semantic.lost_phonemes should count it as lost).
    """
    starts: list[tuple[str, int]] = [(SILENCE_SYMBOL, 0)]
    previous = 0
    for name, sample in events:
        previous = min(max(sample, previous), num_samples)
        starts.append((symbol_of(name), previous))
    spans: list[PhonemeSpan] = []
    for index, (symbol, start) in enumerate(starts):
        end = starts[index + 1][1] if index + 1 < len(starts) else num_samples
        if symbol == SILENCE_SYMBOL:
            if end == start:
                continue
            if spans and spans[-1].is_silence and spans[-1].end == start:
                spans[-1] = PhonemeSpan(SILENCE_SYMBOL, spans[-1].start, end)
                continue
        spans.append(PhonemeSpan(symbol, start, end))
    return tuple(spans)
