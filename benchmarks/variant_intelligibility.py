"""How well Whisper tiny.en understands each espeak-ng voice variant: what VARIANTS keeps.

    .venv/bin/python benchmarks/variant_intelligibility.py [--sentences 3]

Every variant file espeak-ng ships (its `voices/!v` folder) says the same few
held-out WordNet sentences with the American English voice at its default
pitch, range and rate; Whisper's word error rate (apps/evaluation/asr.py)
is printed per variant, best first, with whether runtime/frontend/speakers.py's
VARIANTS keeps it. Variants espeak cannot load are reported, not skipped.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from soundstorm.runtime.codec import to_mono
from soundstorm.runtime.frontend import VARIANTS, Speaker, synthesize
from soundstorm.runtime.frontend.errors import FrontendError
from soundstorm.apps.corpus.build import CorpusConfig, split_texts
from soundstorm.apps.evaluation import SpeechRecognizer, word_error_rate

VARIANT_DIRS = ("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v",
                "/usr/lib/aarch64-linux-gnu/espeak-ng-data/voices/!v",
                "/usr/share/espeak-ng-data/voices/!v")


def installed_variants() -> list[str]:
    for folder in map(Path, VARIANT_DIRS):
        if folder.is_dir():
            return sorted(path.name for path in folder.iterdir() if " " not in path.name)
    raise FileNotFoundError(f"no espeak-ng variant folder among {VARIANT_DIRS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=3)
    args = parser.parse_args()
    texts = [text for _, text in split_texts(CorpusConfig())[0][:args.sentences]]
    recognizer = SpeechRecognizer()
    results = []
    for variant in installed_variants():
        try:
            errors = []
            for text in texts:
                utterance = synthesize(text, Speaker("probe", "en-us", variant))
                audio = to_mono(utterance.waveform, utterance.sample_rate, 16_000)
                errors.append(word_error_rate(text, recognizer.transcribe(audio)))
            results.append((statistics.mean(errors), variant))
        except FrontendError as error:
            print(f"{variant}: {error}")
    print(f"{len(texts)} held-out sentences, en-us voice, default pitch/range/rate")
    print("variant          WER   kept")
    for wer, variant in sorted(results):
        print(f"{variant:15s} {wer:5.2f}   {'yes' if variant in VARIANTS else 'no'}")


if __name__ == "__main__":
    main()
