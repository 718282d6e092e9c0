"""Named espeak-ng speakers: an English voice, a voice variant, pitch, pitch range and rate.

A Speaker is just espeak settings, so a speaker name reproduces the same voice
on any machine with espeak-ng 1.51. Only English voices are allowed: they share
one phoneme inventory, so one phoneme vocabulary covers every speaker.
"""

from __future__ import annotations

import dataclasses
import re

from soundstorm.runtime.frontend.errors import FrontendError

# espeak-ng 1.51 English voices, by the name espeak_SetVoiceByName accepts
# ("en" is British English; "en-gb" is not a name it knows).
ENGLISH_VOICES = {
    "en": "British English",
    "en-us": "American English",
    "en-us-nyc": "New York City English",
    "en-gb-x-rp": "Received Pronunciation",
    "en-gb-scotland": "Scottish English",
    "en-gb-x-gbclan": "Lancastrian English",
    "en-gb-x-gbcwmd": "West Midlands English",
    "en-029": "Caribbean English",
}
PITCH_RANGE = (0, 99)  # espeakPITCH; 50 is the voice's own base pitch
PITCH_SPREAD_RANGE = (0, 99)  # espeakRANGE; 50 is the voice's own intonation range, 0 monotone
RATE_WPM_RANGE = (80, 450)  # espeakRATE, words per minute
DEFAULT_PITCH = 50
DEFAULT_PITCH_RANGE = 50
DEFAULT_RATE_WPM = 175
# Names of speakers and of espeak variant files ("m3", "f2", "klatt"); existence of the
# variant is checked by espeak at synthesis time.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_\-]+")


def _check_in_range(field: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FrontendError(f"Speaker {field} must be an int in [{low}, {high}], got {value!r}")


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One reproducible espeak voice. `variant` None means the voice's own default."""

    name: str
    voice: str
    variant: str | None = None
    pitch: int = DEFAULT_PITCH
    pitch_range: int = DEFAULT_PITCH_RANGE
    rate: int = DEFAULT_RATE_WPM

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise FrontendError(f"Speaker name must be letters, digits, '_' or '-', got {self.name!r}")
        if self.voice not in ENGLISH_VOICES:
            raise FrontendError(f"Speaker voice {self.voice!r} is not an English espeak-ng voice; "
                                f"choose one of {sorted(ENGLISH_VOICES)}")
        if self.variant is not None and (not isinstance(self.variant, str)
                                         or not NAME_PATTERN.fullmatch(self.variant)):
            raise FrontendError(f"Speaker variant must be None or an espeak variant name such as "
                                f"'m3' or 'f2', got {self.variant!r}")
        _check_in_range("pitch", self.pitch, PITCH_RANGE)
        _check_in_range("pitch_range", self.pitch_range, PITCH_SPREAD_RANGE)
        _check_in_range("rate", self.rate, RATE_WPM_RANGE)


# The built-in speakers. Changing an entry changes that speaker's voice for every
# corpus built with it: add new names rather than editing old ones.
_BUILT_IN = (
    Speaker("us_male_1", "en-us", "m3", pitch=45, pitch_range=50, rate=170),
    Speaker("us_male_2", "en-us", "m1", pitch=55, pitch_range=65, rate=185),
    Speaker("us_male_3", "en-us", "m6", pitch=40, pitch_range=40, rate=155),
    Speaker("us_male_4", "en-us", "klatt", pitch=50, pitch_range=55, rate=200),
    Speaker("us_female_1", "en-us", "f1", pitch=50, pitch_range=60, rate=175),
    Speaker("us_female_2", "en-us", "f4", pitch=60, pitch_range=70, rate=190),
    Speaker("us_female_3", "en-us", "f3", pitch=45, pitch_range=45, rate=160),
    Speaker("gb_male_1", "en", "m4", pitch=50, pitch_range=50, rate=165),
    Speaker("gb_male_2", "en", "m8", pitch=60, pitch_range=35, rate=180),
    Speaker("gb_female_1", "en", "f2", pitch=50, pitch_range=55, rate=170),
    Speaker("gb_female_2", "en", "f5", pitch=40, pitch_range=65, rate=195),
    Speaker("rp_male_1", "en-gb-x-rp", "m2", pitch=45, pitch_range=60, rate=160),
    Speaker("rp_male_2", "en-gb-x-rp", "klatt2", pitch=55, pitch_range=45, rate=175),
    Speaker("rp_female_1", "en-gb-x-rp", "f4", pitch=55, pitch_range=50, rate=150),
    Speaker("scottish_male_1", "en-gb-scotland", "m7", pitch=50, pitch_range=70, rate=170),
    Speaker("scottish_male_2", "en-gb-scotland", "m5", pitch=40, pitch_range=50, rate=190),
    Speaker("scottish_female_1", "en-gb-scotland", "f1", pitch=60, pitch_range=55, rate=165),
    Speaker("caribbean_male_1", "en-029", "m1", pitch=50, pitch_range=60, rate=185),
    Speaker("caribbean_male_2", "en-029", "klatt3", pitch=45, pitch_range=50, rate=160),
    Speaker("caribbean_female_1", "en-029", "f2", pitch=55, pitch_range=65, rate=175),
    Speaker("nyc_male_1", "en-us-nyc", "m4", pitch=55, pitch_range=55, rate=205),
    Speaker("nyc_female_1", "en-us-nyc", "f5", pitch=50, pitch_range=60, rate=180),
    Speaker("nyc_female_2", "en-us-nyc", "f3", pitch=65, pitch_range=40, rate=145),
    Speaker("lancashire_male_1", "en-gb-x-gbclan", "m3", pitch=50, pitch_range=45, rate=170),
    Speaker("lancashire_female_1", "en-gb-x-gbclan", "f1", pitch=45, pitch_range=60, rate=185),
    Speaker("west_midlands_male_1", "en-gb-x-gbcwmd", "m6", pitch=55, pitch_range=55, rate=160),
    Speaker("west_midlands_female_1", "en-gb-x-gbcwmd", "f4", pitch=50, pitch_range=50, rate=200),
    Speaker("us_neutral_1", "en-us", None, pitch=50, pitch_range=50, rate=175),
)
SPEAKERS: dict[str, Speaker] = {speaker.name: speaker for speaker in _BUILT_IN}

# espeak-ng 1.51 voice variants for generated speakers: 56 of its 101 `!v` files.
# Left out: the non-human ones (whisper, croak, robots, "Demonic", ...) and those
# Whisper tiny.en understood clearly worse than the m1-m8/f1-f5 family on the
# same sentences (word error rate above 0.75 where those score 0.28-0.67;
# benchmarks/variant_intelligibility.py, table in docs/data.md). Order is part of
# the generated speakers' definition: append, never reorder.
VARIANTS = (
    "Alex", "Andrea", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo", "Mario", "Mike",
    "Nguyen", "antonio", "aunty", "belinda", "benjamin", "caleb", "ed", "edward", "edward2",
    "f1", "f2", "f3", "f4", "f5", "grandpa", "iven", "iven3", "iven4", "john", "klatt", "klatt2",
    "klatt4", "klatt5", "klatt6", "linda", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "max",
    "michel", "miguel", "paul", "pedro", "quincy", "rob", "robert", "sandro", "steph", "steph2",
    "steph3", "victor",
)
# Ranges the generated speakers draw from: wide enough for very different voices,
# narrow enough that every one is still ordinary speech.
GENERATED_PITCH = (25, 75)
GENERATED_PITCH_RANGE = (20, 80)
GENERATED_RATE_WPM = (135, 215)
# A generated speaker's name is its recipe: voice_variant_pPITCH_rRANGE_wRATE,
# e.g. en-us_f2_p70_r50_w175, so the name alone reproduces the voice anywhere.
_RECIPE = re.compile(r"(?P<voice>[a-z0-9-]+)_(?P<variant>[A-Za-z0-9]+)_p(?P<pitch>\d+)"
                     r"_r(?P<pitch_range>\d+)_w(?P<rate>\d+)")


def recipe_name(voice: str, variant: str, pitch: int, pitch_range: int, rate: int) -> str:
    return f"{voice}_{variant}_p{pitch}_r{pitch_range}_w{rate}"


def speaker_from_recipe(name: str) -> Speaker | None:
    """The speaker a recipe name describes, or None if `name` is not a recipe name."""
    match = _RECIPE.fullmatch(name)
    if match is None:
        return None
    return Speaker(name, match["voice"], match["variant"], int(match["pitch"]),
                   int(match["pitch_range"]), int(match["rate"]))


def generated_speaker(voice: str, variant: str, rng) -> Speaker:
    """A speaker of `voice` and `variant` with pitch, range and rate drawn by `rng`
    (a numpy Generator) uniformly from the GENERATED_* ranges."""
    pitch = int(rng.integers(GENERATED_PITCH[0], GENERATED_PITCH[1] + 1))
    pitch_range = int(rng.integers(GENERATED_PITCH_RANGE[0], GENERATED_PITCH_RANGE[1] + 1))
    rate = int(rng.integers(GENERATED_RATE_WPM[0], GENERATED_RATE_WPM[1] + 1))
    return speaker_from_recipe(recipe_name(voice, variant, pitch, pitch_range, rate))


def get_speaker(name: str) -> Speaker:
    """The built-in speaker called `name`, or the generated speaker a recipe name describes.

    Raises FrontendError for any other name, or a recipe outside the allowed ranges.
    """
    if name in SPEAKERS:
        return SPEAKERS[name]
    speaker = speaker_from_recipe(name) if isinstance(name, str) else None
    if speaker is None:
        raise FrontendError(f"unknown speaker {name!r}: give a built-in speaker "
                            f"({', '.join(sorted(SPEAKERS))}) or a recipe "
                            "VOICE_VARIANT_pPITCH_rRANGE_wRATE such as en-us_f2_p70_r50_w175")
    return speaker
