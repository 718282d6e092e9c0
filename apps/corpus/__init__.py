"""Speech corpora built offline: sentences (WordNet or the built-in generator) said by espeak-ng
speakers, encoded by the codec and the frontend into training examples (build.py); the format
they are written in is the core's (soundstorm/data/corpus_format.py)."""
