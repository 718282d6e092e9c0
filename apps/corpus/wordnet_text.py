"""Open-vocabulary English text: WordNet 3.0's example sentences, and a held-out split.

Source: the Debian package `wordnet-base` (WordNet 3.0, Princeton University;
the WordNet 3.0 licence, a permissive BSD-style licence: use, copy, modify and
distribute with its notice; docs/data.md). Its `data.{noun,verb,adj,adv}` files
give each synset a gloss, and many glosses quote example sentences of ordinary
English ("she rubbed down her child with a sponge"): 48,339 quotes, 28,390
of them speakable by the frontend and 5 to 20 words long, with about 25,000
distinct words. `tools/setup.sh` installs the package; `$WORDNET_DIR`
points elsewhere.

The held-out split (`split_open_vocabulary`) is chosen so that the held-out
sentences carry words the training text never contains: a held-out sentence is
a full sentence (as WordNet capitalises it: "She extended her visit by another
day", not the phrase "tranquil life in the country"), at least a quarter of
whose words are uncommon (in at most 20 sentences of the
whole source, but not one-offs), and every other sentence containing any of
those words is dropped from training. What a model hears in evaluation is then
new text, not a recombination of training sentences.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from soundstorm.runtime.frontend.text_check import ALLOWED_CHARACTERS
from soundstorm.config import ConfigError

DEBIAN_PACKAGE = "wordnet-base"
DEFAULT_DIR = Path("/usr/share/wordnet")
DATA_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
LICENCE = "WordNet 3.0 licence (Princeton University; BSD-style)"
_QUOTE = re.compile(r'"([^"]+)"')
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# A quote that starts with a lower-case letter is usually a full clause of
# ordinary English; one that holds digits or initials is spelled out by espeak
# in ways no transcript shows, so those are skipped.
_MIN_WORDS, _MAX_WORDS = 5, 20
# Sentences holding one of these words are left out. espeak-ng 1.51 says them with
# phonemes outside vocabulary v1 (French nasal vowels, an unreduced vowel), which was
# the vocabulary when the reference corpus was first built; vocabulary v2 now has
# those phonemes (benchmarks/wordnet_phonemes.py), and the words stay out so that the
# reference corpus stays what it was (6 sentences of 28,390).
OUT_OF_VOCABULARY_WORDS = frozenset({"blanc", "frisson", "provence", "unary", "utah"})


def wordnet_dir() -> Path:
    return Path(os.environ.get("WORDNET_DIR", DEFAULT_DIR))


def words(text: str) -> list[str]:
    """Lower-case words of `text` (letters and inner apostrophes), the split's unit."""
    return _WORD.findall(text.lower())


def _speakable(quote: str) -> str | None:
    text = " ".join(quote.split()).strip(" ;,:-")
    if not text or any(c not in ALLOWED_CHARACTERS for c in text) or re.search(r"\d", text):
        return None
    if re.search(r"\b[A-Z]\.", text) or "--" in text or " '" in text or "' " in text:
        return None
    if not _MIN_WORDS <= len(words(text)) <= _MAX_WORDS:
        return None
    if not OUT_OF_VOCABULARY_WORDS.isdisjoint(words(text)):
        return None
    return text if text[-1] in ".!?" else text + "."


def example_sentences(directory: Path | None = None) -> list[str]:
    """WordNet's quoted example sentences that the frontend can say, deduplicated, in file order.

    Each keeps WordNet's case (a capital first letter marks a full sentence,
    lower case a phrase) and ends with '.', '!' or '?'; 5 to 20 words; only the
    frontend's characters (runtime/frontend/text_check.py), no digits, and none
    of OUT_OF_VOCABULARY_WORDS.
    Raises FileNotFoundError (naming the Debian package) if WordNet is missing.
    """
    directory = Path(directory) if directory is not None else wordnet_dir()
    missing = [name for name in DATA_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"WordNet data files {missing} not found in {directory}: install the Debian package "
            f"{DEBIAN_PACKAGE} (apt-get install {DEBIAN_PACKAGE}) or set $WORDNET_DIR")
    seen, sentences = set(), []
    for name in DATA_FILES:
        with open(directory / name, encoding="latin-1") as file:
            for line in file:
                if line.startswith("  ") or " | " not in line:  # licence header
                    continue
                for quote in _QUOTE.findall(line.split(" | ", 1)[1]):
                    text = _speakable(quote)
                    if text is not None and text.lower() not in seen:
                        seen.add(text.lower())
                        sentences.append(text)
    return sentences


@dataclasses.dataclass(frozen=True)
class TextSplit:
    train: tuple[str, ...]
    heldout: tuple[str, ...]
    # Words of the held-out sentences that no training sentence contains.
    novel_words: frozenset[str]

    def novel_fraction(self, sentence: str) -> float:
        tokens = words(sentence)
        return sum(word in self.novel_words for word in tokens) / len(tokens)


def split_open_vocabulary(sentences: list[str], num_heldout: int, *, seed: int = 0,
                          min_novel_fraction: float = 0.25, novel_max_sentences: int = 20,
                          word_min_sentences: int = 2, heldout_words: tuple[int, int] = (6, 16)
                          ) -> TextSplit:
    """Held-out sentences, a quarter of whose words the training sentences never contain.

    Words are counted by document frequency (how many of `sentences` hold them).
    A sentence qualifies for held-out when it is a full sentence (WordNet writes
    it with a capital; `heldout_words` words long), every word is in at least
    `word_min_sentences` sentences (no one-off names or coinages, which no
    recogniser could spell) and at least `min_novel_fraction` of its words are
    in at most `novel_max_sentences` (uncommon, not exotic). The first
    `num_heldout` qualifying sentences in a seeded order are taken; their
    uncommon words become the novel words, and every other sentence holding one
    of them is dropped. The rest, in their original order, is the training
    text. Every held-out sentence then has at least `min_novel_fraction` of its
    words outside the training text (tests/test_wordnet_text.py checks it).

    Raises ConfigError if fewer than `num_heldout` sentences qualify.
    """
    document_frequency = collections.Counter(word for text in sentences for word in set(words(text)))
    order = np.random.default_rng(seed).permutation(len(sentences))
    heldout_ids, novel = [], set()
    for index in order:
        tokens = words(sentences[index])
        if not sentences[index][0].isupper() or not \
                heldout_words[0] <= len(tokens) <= heldout_words[1]:
            continue
        if min(document_frequency[word] for word in tokens) < word_min_sentences:
            continue
        uncommon = [word for word in tokens if document_frequency[word] <= novel_max_sentences]
        if len(uncommon) >= min_novel_fraction * len(tokens):
            heldout_ids.append(int(index))
            novel.update(uncommon)
            if len(heldout_ids) == num_heldout:
                break
    if len(heldout_ids) < num_heldout:
        raise ConfigError(f"only {len(heldout_ids)} sentences have {min_novel_fraction:.0%} "
                          f"uncommon words; asked for {num_heldout} held-out sentences")
    chosen = set(heldout_ids)
    train = tuple(text for index, text in enumerate(sentences)
                  if index not in chosen and novel.isdisjoint(words(text)))
    return TextSplit(train, tuple(sentences[index] for index in heldout_ids), frozenset(novel))
