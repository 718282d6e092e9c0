"""The phoneme vocabulary: versioned files mapping espeak phoneme symbols to token ids.

A corpus and a model are only compatible with the vocabulary version they were
built with, so the vocabulary is a committed data file (phonemes_<version>.txt)
rather than something computed at run time; build_vocabulary.py regenerates
it. Line order is token id; id 0 is silence. A symbol missing from the file is
an error, never dropped: dropping it would silently shift the audio/phoneme
alignment that SoundStorm learns from.
"""

from __future__ import annotations

from pathlib import Path

from soundstorm.runtime.frontend.errors import FrontendError
from soundstorm.runtime.frontend.spans import SILENCE_SYMBOL

VOCABULARY_DIR = Path(__file__).resolve().parent
DEFAULT_VERSION = "v1"
COMMENT_PREFIX = "#"
SILENCE_ID = 0


def vocabulary_path(version: str) -> Path:
    return VOCABULARY_DIR / f"phonemes_{version}.txt"


class PhonemeVocabulary:
    """Symbol <-> token id for one vocabulary version."""

    def __init__(self, version: str, symbols: tuple[str, ...]):
        if not symbols or symbols[SILENCE_ID] != SILENCE_SYMBOL:
            raise FrontendError(f"phoneme vocabulary {version}: token id {SILENCE_ID} must be the "
                                f"silence symbol {SILENCE_SYMBOL!r}")
        duplicates = sorted({symbol for symbol in symbols if symbols.count(symbol) > 1})
        if duplicates:
            raise FrontendError(f"phoneme vocabulary {version}: duplicate symbols {duplicates}")
        self.version = version
        self.symbols = symbols
        self._ids = {symbol: index for index, symbol in enumerate(symbols)}

    @property
    def size(self) -> int:
        return len(self.symbols)

    @property
    def silence_id(self) -> int:
        return SILENCE_ID

    def id(self, symbol: str) -> int:
        try:
            return self._ids[symbol]
        except KeyError:
            raise FrontendError(f"phoneme {symbol!r} is not in phoneme vocabulary {self.version} "
                                f"({self.size} symbols); rebuild the vocabulary as a new version "
                                "(runtime/frontend/build_vocabulary.py)") from None

    def symbol(self, token_id: int) -> str:
        if not 0 <= token_id < self.size:
            raise FrontendError(f"token id {token_id} is outside phoneme vocabulary {self.version} "
                                f"(ids 0..{self.size - 1})")
        return self.symbols[token_id]

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._ids

    def __repr__(self) -> str:
        return f"PhonemeVocabulary(version={self.version!r}, size={self.size})"


def parse_vocabulary(version: str, text: str) -> PhonemeVocabulary:
    """A vocabulary from file text: leading lines starting with '#' are the header; every
    line after it is one symbol (so a symbol may itself start with '#')."""
    lines = text.splitlines()
    header_lines = 0
    while header_lines < len(lines) and lines[header_lines].startswith(COMMENT_PREFIX):
        header_lines += 1
    symbols = []
    for line in lines[header_lines:]:
        symbol = line.strip()
        if not symbol:
            raise FrontendError(f"phoneme vocabulary {version}: blank line after {len(symbols)} "
                                "symbols (each line is one symbol; line order is the token id)")
        symbols.append(symbol)
    return PhonemeVocabulary(version, tuple(symbols))


def load_vocabulary(version: str = DEFAULT_VERSION) -> PhonemeVocabulary:
    """The committed vocabulary `version` (e.g. "v1")."""
    path = vocabulary_path(version)
    if not path.is_file():
        known = sorted(p.stem.removeprefix("phonemes_") for p in VOCABULARY_DIR.glob("phonemes_*.txt"))
        raise FrontendError(f"no phoneme vocabulary {version!r} ({path} is missing); known "
                            f"versions: {known}")
    return parse_vocabulary(version, path.read_text(encoding="utf-8"))
