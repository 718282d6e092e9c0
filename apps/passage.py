"""Speech of any length for measurements: a fixed English passage, repeated and cut (used by
`soundstorm bench` and `soundstorm eval`'s long-form check)."""

from __future__ import annotations

import numpy as np

from soundstorm.runtime.client.client import Client

# Read in a loop until the text is long enough.
PASSAGE = ("The quick brown fox jumps over the lazy dog. Please bring eleven shells to the small "
           "basket before dinner. A calm morning turned into a windy afternoon by the river. ")


def semantic_of_seconds(client: Client, seconds: float) -> np.ndarray:
    """Semantic tokens of about `seconds` of speech (the passage, repeated and cut)."""
    semantic = client.text_to_semantic(PASSAGE)
    per_second = client.contract.semantic.rate_hz
    repeats = int(np.ceil(seconds * per_second / len(semantic)))
    return np.tile(semantic, repeats)[:round(seconds * per_second)]
