"""What text the frontend accepts, checked before espeak sees it.

espeak reads more than plain words: "<" starts SSML, "[[" starts raw phoneme
input, letters of other scripts switch it to another language (with phonemes
outside the English vocabulary), and symbols get spelled out by name. So the
frontend accepts only ASCII letters, digits, the space and basic punctuation,
and says exactly which character it refused and where.
"""

from __future__ import annotations

import string
import unicodedata

from soundstorm.runtime.frontend.errors import FrontendError

# One espeak synthesis (check_text): longer text is said in pieces of whole sentences
# (semantic.sentence_pieces).
MAX_TEXT_CHARS = 1000
# A whole text given to the client (normalize_text): about 1.5 hours of speech, so that a
# wrong file (a log, a book) is refused at once rather than read for days.
MAX_DOCUMENT_CHARS = 100_000
ALLOWED_PUNCTUATION = ".,;:!?'-"
ALLOWED_CHARACTERS = frozenset(string.ascii_letters + string.digits + " " + ALLOWED_PUNCTUATION)


def describe_character(character: str) -> str:
    """A character as an error names it: itself and its Unicode name (or code point)."""
    name = unicodedata.name(character, "")
    if not name:  # control characters have no name
        name = f"U+{ord(character):04X}"
    return f"{character!r} ({name})"


def check_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> None:
    """Raises FrontendError unless `text` is non-blank, short enough and of allowed characters."""
    if not isinstance(text, str):
        raise FrontendError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise FrontendError("text is empty or only whitespace; there is nothing to say")
    if len(text) > max_chars:
        raise FrontendError(f"text is {len(text)} characters long; the limit is {max_chars} "
                            "(split it into sentences)")
    for position, character in enumerate(text):
        if character not in ALLOWED_CHARACTERS:
            raise FrontendError(
                f"unsupported character {describe_character(character)} at position {position}; "
                f"allowed are ASCII letters, digits, space and {ALLOWED_PUNCTUATION!r}")
