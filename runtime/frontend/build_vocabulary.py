"""Regenerates a phoneme vocabulary file from what espeak actually says.

    .venv/bin/python -m soundstorm.runtime.frontend.build_vocabulary [--version v1] [--check]

Every built-in sentence (english_text.py) is said by every built-in speaker and
every phoneme symbol espeak reports is collected. Silence gets id 0; the other
symbols follow in sorted (code point) order, so the file is a deterministic
function of espeak-ng's version, the speakers and the text. A vocabulary is
data: once a corpus is built with a version, that file must not change;
write a new version instead. `--check` compares with the committed file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Iterable

from soundstorm.runtime.frontend.english_text import SENTENCES
from soundstorm.runtime.frontend.espeak import espeak_version, synthesize
from soundstorm.runtime.frontend.spans import SILENCE_SYMBOL
from soundstorm.runtime.frontend.speakers import SPEAKERS, Speaker
from soundstorm.runtime.frontend.vocabulary import DEFAULT_VERSION, vocabulary_path


def header_line(version: str, espeak: str) -> str:
    return (f"# soundstorm phoneme vocabulary {version}: espeak-ng {espeak} mnemonic phoneme names "
            "of the English voices; one symbol per line; line order = token id")


def collect_symbols(speakers: Iterable[Speaker], sentences: Iterable[str]) -> set[str]:
    sentences = tuple(sentences)
    symbols = set()
    for speaker in speakers:
        for sentence in sentences:
            symbols.update(span.symbol for span in synthesize(sentence, speaker).phonemes)
    return symbols


def vocabulary_text(version: str, symbols: set[str], espeak: str) -> str:
    ordered = [SILENCE_SYMBOL] + sorted(symbols - {SILENCE_SYMBOL})
    return "\n".join([header_line(version, espeak)] + ordered) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=DEFAULT_VERSION)
    parser.add_argument("--check", action="store_true",
                        help="only compare with the committed file; exit 1 if it differs")
    args = parser.parse_args(argv)
    symbols = collect_symbols(SPEAKERS.values(), SENTENCES)
    text = vocabulary_text(args.version, symbols, espeak_version())
    path = vocabulary_path(args.version)
    if args.check:
        same = path.is_file() and path.read_text(encoding="utf-8") == text
        print(f"{path}: {'matches' if same else 'DIFFERS from'} what espeak says now "
              f"({len(symbols)} symbols)")
        return 0 if same else 1
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}: {len(symbols)} symbols")
    return 0


if __name__ == "__main__":
    sys.exit(main())
