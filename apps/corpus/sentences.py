"""A built-in English sentence generator, so that building a corpus downloads nothing.

Sentence i of a seed is a pure function of (seed, i): a small grammar picks a
template and fills it from word lists. Held-out sentences are therefore a
range of indices, stable however many sentences a corpus asks for.
"""

from __future__ import annotations

import numpy as np

NAMES = ("Anna", "Brian", "Carla", "David", "Elena", "Frank", "Grace", "Henry", "Irene",
         "James", "Karen", "Louis", "Maria", "Nathan", "Olivia", "Peter", "Rachel", "Samuel",
         "Teresa", "Victor", "Wendy", "Oscar", "Julia", "Martin")
ADJECTIVES = ("small", "bright", "quiet", "heavy", "golden", "narrow", "ancient", "gentle",
              "broken", "curious", "silver", "crowded", "famous", "hidden", "patient", "rapid",
              "wooden", "distant", "careful", "empty", "yellow", "strange", "modern", "frozen")
NOUNS = ("river", "garden", "teacher", "window", "market", "letter", "engine", "village",
         "doctor", "basket", "mountain", "kitchen", "bridge", "painter", "station", "forest",
         "harbour", "library", "farmer", "island", "machine", "orchestra", "tower", "valley",
         "student", "bicycle", "candle", "captain", "museum", "blanket")
VERBS_PAST = ("found", "painted", "visited", "carried", "repaired", "watched", "followed",
              "described", "opened", "remembered", "cleaned", "measured", "photographed",
              "ignored", "discovered", "borrowed", "ordered", "delivered", "admired", "built")
ADVERBS = ("slowly", "quickly", "happily", "quietly", "suddenly", "carefully", "rarely",
           "eagerly", "calmly", "nearly", "gladly", "openly")
PLACES = ("near the station", "behind the old mill", "across the valley", "in the morning",
          "after the storm", "before dinner", "under the bridge", "at the edge of town",
          "during the winter", "on the second floor", "beside the lake", "late at night")
NUMBERS = ("two", "three", "four", "five", "seven", "nine", "eleven", "twelve", "twenty",
           "forty", "a hundred")
PLURALS = ("apples", "letters", "candles", "chairs", "tickets", "stones", "books", "boxes",
           "flowers", "coins", "maps", "shells")

TEMPLATES = (
    "{name} {verb} the {adj} {noun} {place}.",
    "The {adj} {noun} {adv} {verb} a {adj2} {noun2}.",
    "Yesterday {name} {verb} {number} {plural} {place}.",
    "Did {name} really see the {noun} {place}?",
    "{name} and {name2} {verb} the {noun}, and then they went home.",
    "Nobody {verb} the {adj} {noun} {place}, said {name}.",
    "After the {noun}, the {adj} {noun2} {adv} {verb} {number} {plural}.",
    "Why is the {noun} so {adj} today?",
    "Please bring {number} {plural} to the {adj} {noun}.",
    "We {adv} {verb} the {noun} {place}, but {name} stayed behind.",
)


def sentence(seed: int, index: int) -> str:
    """Sentence `index` of the generator seeded with `seed`."""
    rng = np.random.default_rng([seed, index])
    pick = lambda words: words[rng.integers(len(words))]
    name, name2 = rng.choice(NAMES, 2, replace=False)
    noun, noun2 = rng.choice(NOUNS, 2, replace=False)
    adj, adj2 = rng.choice(ADJECTIVES, 2, replace=False)
    return pick(TEMPLATES).format(
        name=name, name2=name2, noun=noun, noun2=noun2, adj=adj, adj2=adj2,
        verb=pick(VERBS_PAST), adv=pick(ADVERBS), place=pick(PLACES), number=pick(NUMBERS),
        plural=pick(PLURALS))


def sentences(seed: int, start: int, count: int) -> list[str]:
    return [sentence(seed, index) for index in range(start, start + count)]
