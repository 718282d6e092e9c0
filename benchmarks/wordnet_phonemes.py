"""Which phonemes espeak-ng gives the words of the WordNet text, voice by voice.

    .venv/bin/python benchmarks/wordnet_phonemes.py [--voices en en-us ...] [--workers 2]

Every distinct word of the WordNet example sentences (apps/corpus/wordnet_text.py)
is said by espeak-ng's command line in phoneme mode (`-q -x --sep=' '`, one word
per line, nothing synthesized) with each English voice; stress marks and pause
markers are stripped and every symbol outside the phoneme vocabulary is printed
with the words that produce it. This is how vocabulary v2 was found
(runtime/frontend/phonemes_v2.txt): v1 plus the symbols printed here.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import subprocess
import tempfile
from pathlib import Path

from soundstorm.runtime.frontend import ENGLISH_VOICES, load_vocabulary
from soundstorm.apps.corpus.wordnet_text import example_sentences, words

STRESS_MARKS = "',="
PAUSES = {"_:", "_!", "_|", "_", "||", "|"}


def phonemes_by_word(voice: str, vocabulary: list[str], path: Path) -> dict[str, set[str]]:
    out = subprocess.run(["espeak-ng", "-q", "-x", "--sep= ", "-v", voice, "-f", str(path)],
                         capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    if len(lines) != len(vocabulary):
        raise RuntimeError(f"{voice}: {len(lines)} output lines for {len(vocabulary)} words")
    return {word: {token.lstrip(STRESS_MARKS) for token in line.split()} - PAUSES
            for word, line in zip(vocabulary, lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", nargs="+", default=sorted(ENGLISH_VOICES))
    parser.add_argument("--vocabulary", default="v1")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    known = set(load_vocabulary(args.vocabulary).symbols)
    vocabulary = sorted({word for text in example_sentences() for word in words(text)})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "words.txt"
        path.write_text("".join(f"{word}.\n" for word in vocabulary))
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            results = dict(zip(args.voices, pool.map(
                lambda voice: phonemes_by_word(voice, vocabulary, path), args.voices)))
    print(f"{len(vocabulary)} words, voices {', '.join(args.voices)}; vocabulary {args.vocabulary} "
          f"({len(known)} symbols)")
    new = collections.defaultdict(lambda: collections.defaultdict(set))
    for voice, by_word in results.items():
        for word, symbols in by_word.items():
            for symbol in symbols - known:
                new[symbol][word].add(voice)
    for symbol in sorted(new):
        listing = ", ".join(f"{word} ({len(voices)} voices)" for word, voices in sorted(new[symbol].items()))
        print(f"{symbol!r}: {listing}")
    print(f"symbols outside {args.vocabulary}: {sorted(new)}")


if __name__ == "__main__":
    main()
