"""Text as people type and paste it, made into the plain words the frontend speaks.

`normalize_text` runs before `check_text` (text_check.py), on every text a user
gives (the client, the CLI). In order:

1. Characters: line endings unified (CRLF, CR); each character folded by
   Unicode compatibility (NFKC: non-breaking and other spaces, full-width
   forms, ligatures, the ellipsis character) and stripped of accents (NFKD,
   combining marks dropped: "café" -> "cafe"); Latin letters with no accent to
   strip spelt in ASCII by anyascii (a maintained library: "ß" -> "ss", "ø" ->
   "o"); Unicode's line and paragraph separators, form feeds and vertical tabs
   made line and paragraph breaks; typographic apostrophes and
   quotes, dashes, bullets and brackets mapped to what they mean when read
   aloud (an apostrophe, nothing, a pause; an en dash between numbers is a
   range, "3–5": three to five); the symbols < > ≤ ≥ ≈ ≠ × ÷ ± © ® ™ § ² ³ ^ ¢
   and the backslash as words (espeak never sees "<", which would start SSML);
   zero-width
   characters and soft hyphens removed. A character with no reading here
   (another script, an emoji, an arrow) is a FrontendError naming it and its
   position in the text as given.
2. Breaks: a paragraph break (a blank line) ends a sentence, a line break
   pauses (a list item, a verse line); list bullets at the start of a line go.
3. Words for what is written with digits and symbols, in English: currency
   ("$5.50": five dollars and fifty cents; "3.50$"; "€2,50" with a decimal
   comma), percentages, times ("3:30 pm", "7:00", "12:30:45"), dates (ISO
   "2024-01-05", US "1/5/2024", "January 5th"), years ("in 1999"), decades
   ("the 90s"), ordinals ("21st", "1,000th"), decimals (".5"), version numbers
   ("2.0.1"), powers of ten ("1e3"), numbers with thousands separators, signs
   (also before a currency, percent or degree: "-5%", "-$5", "-5°C"), simple
   fractions ("24/7" as said), units after numbers ("km/h"), a number joined to
   letters as two words ("3x", "1080p"), digits that are no quantity one by one
   ("007", 16 or more digits, groups of four), thousands grouped by spaces or
   dots ("10 000"), ranges with a hyphen ("5-10%"), web and email addresses
   ("example dot com"), common abbreviations ("Dr.", "e.g.", "etc.", "Nos.",
   "p.", "Ph.D.") and the symbols & + = @ # % ¥ ₹. Numbers
   are read by num2words (a maintained library), as cardinals, ordinals or
   years.
4. Nothing to say: text with no letter left (only punctuation or spaces) is a
   FrontendError "nothing to say".

The result holds only characters `check_text` allows. Source of the readings:
US English conventions as in the Chicago Manual of Style's rules for numbers
read aloud; nothing here is learned, so every case is in tests/test_normalize.py.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable

from num2words import num2words

from soundstorm.runtime.frontend.errors import FrontendError
from soundstorm.runtime.frontend.text_check import (ALLOWED_CHARACTERS, MAX_DOCUMENT_CHARS,
                                                    describe_character)

# Step 1: characters that mean something other than their NFKC form when read aloud.
_PAUSE = ","
# An en dash (or figure dash) until step 3 reads it: "to" between numbers, a pause elsewhere.
_RANGE_DASH = "\x02"
# A no-break or thin space until step 3 reads it: a thousands separator between digits
# ("10\u202f000", as SI style writes it), a space elsewhere.
_GROUP_SPACE = "\x03"
_CHARACTER_READINGS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "`": "'",
    "\u201c": "", "\u201d": "", "\u201e": "", "\u201f": "", "\u00ab": "", "\u00bb": "",
    "\u2039": "", "\u203a": "", '"': "", "\u2033": "",
    "\u2013": f" {_RANGE_DASH} ", "\u2014": f"{_PAUSE} ", "\u2015": f"{_PAUSE} ",
    "\u2012": f" {_RANGE_DASH} ",
    "\u2010": "-", "\u2011": "-", "\u2212": "-",
    "\u2022": " ", "\u2023": " ", "\u25e6": " ", "\u2043": " ", "\u00b7": " ", "*": " ",
    "(": f"{_PAUSE} ", ")": f"{_PAUSE} ", "[": f"{_PAUSE} ", "]": f"{_PAUSE} ",
    "{": f"{_PAUSE} ", "}": f"{_PAUSE} ",
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "", "\u00ad": "",
    "\t": " ", "\u2044": "/", "_": " ", "~": " about ", "|": f"{_PAUSE} ",
    "\u00a0": _GROUP_SPACE, "\u202f": _GROUP_SPACE, "\u2009": _GROUP_SPACE,
    # Breaks as Unicode and old editors write them.
    "\u2028": "\n", "\u2029": "\n\n", "\u0085": "\n", "\x0b": "\n", "\x0c": "\n\n",
    "\u00d7": " times ", "\u00f7": " divided by ", "\u00b1": " plus or minus ",
    "\u00a9": " copyright ", "\u00ae": " registered ", "\u2122": " trademark ",
    "\u00a7": " section ", "\u00b2": " squared ", "\u00b3": " cubed ",
    "<": " less than ", ">": " greater than ", "\u2264": " less than or equal to ",
    "\u2265": " greater than or equal to ", "\u2248": " approximately ", "\u2260": " not equal to ",
    "\u00a2": " cents", "\\": " backslash ",
    "^": " to the power of ",
}
# Symbols read as words in step 3 (kept through step 1).
_SYMBOL_WORDS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "#": " number ",
                 "%": " percent", "$": " dollars", "\u00a3": " pounds", "\u20ac": " euros",
                 "\u00a5": " yen", "\u20b9": " rupees",
                 "\u00b0": " degrees", "/": " "}
_KEPT = ALLOWED_CHARACTERS | set(_SYMBOL_WORDS) | {"\n", _RANGE_DASH, _GROUP_SPACE}


def _fold(character: str) -> str:
    """A character's reading: its mapped text, else NFKC without accents."""
    if character in _CHARACTER_READINGS:
        return _CHARACTER_READINGS[character]
    folded = unicodedata.normalize("NFKC", character)
    if all(part in _KEPT for part in folded):
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    stripped = "".join(part for part in decomposed if not unicodedata.combining(part))
    return "".join(_CHARACTER_READINGS.get(part, _latin_in_ascii(part)) for part in stripped)


def _latin_in_ascii(character: str) -> str:
    """A Latin letter that has no accent to strip ("ß", "æ", "ł") spelt in ASCII; any other
    character as it is (another script's letters are refused, not transliterated)."""
    if character in _KEPT or not unicodedata.name(character, "").startswith("LATIN "):
        return character
    from anyascii import anyascii
    return anyascii(character)


def _fold_characters(text: str) -> str:
    out = []
    for position, character in enumerate(text):
        folded = _fold(character)
        for part in folded:
            if part not in _KEPT:
                raise FrontendError(
                    f"unsupported character {describe_character(character)} at position "
                    f"{position}: it has no English reading (letters, digits, punctuation, "
                    "quotes, dashes and symbols such as $ £ € % & + = @ # / ° < > are "
                    "read)")
        out.append(folded)
    return "".join(out)


# Step 2.
_BULLET = re.compile(r"(?m)^[ ]*(?:[-*](?=[ ])|\d+[.)](?=[ ]+[A-Za-z]))")


def _breaks(text: str) -> str:
    text = _BULLET.sub(lambda match: _list_number(match.group(0)), text)
    text = re.sub(r"[ ]*\n[ \n]*\n[ \n]*", lambda m: "\x00", text)  # paragraphs
    text = re.sub(r"[ ]*\n[ ]*", "\x01", text)  # lines

    def end(match, mark):
        before = match.string[:match.start()].rstrip()
        if not before or before[-1] in ".!?;:,":
            return " "
        return f"{mark} "
    text = re.sub("\x00", lambda match: end(match, "."), text)
    return re.sub("\x01", lambda match: end(match, _PAUSE), text)


def _list_number(marker: str) -> str:
    """A numbered list's "2." or "2)" is read as its number with a pause; a bullet goes."""
    digits = marker.strip().rstrip(".)")
    return f"{digits}{_PAUSE}" if digits.isdigit() else ""


# Step 3.
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_ABBREVIATIONS = [  # (pattern, reading); case-sensitive, whole words
    (r"\bMr\.", "Mister"), (r"\bMrs\.", "Missus"), (r"\bMs\.", "Miz"),
    (r"\bDr\.(?= [A-Z])", "Doctor"), (r"\bDr\.", "Drive"),
    (r"\bProf\.", "Professor"), (r"\bSt\.(?= [A-Z])", "Saint"), (r"\bSt\.", "Street"),
    (r"\bAve\.", "Avenue"), (r"\bMt\.", "Mount"), (r"\bJr\.", "Junior"),
    (r"\bSr\.", "Senior"), (r"\bvs\.", "versus"), (r"\betc\.", "et cetera"),
    (r"\be\.g\.", "for example"), (r"\bi\.e\.", "that is"), (r"\bapprox\.", "approximately"),
    (r"\bNo\.(?= ?\d)", "number"), (r"\bno\.(?= ?\d)", "number"),
    (r"\bNos\.(?= ?\d)", "numbers"), (r"\bnos\.(?= ?\d)", "numbers"),
    (r"\bPh\.D\.", "P H D"), (r"\bpp\.(?= ?\d)", "pages"), (r"\bp\.(?= ?\d)", "page"),
    (r"\bApt\.", "Apartment"), (r"\bBlvd\.", "Boulevard"), (r"\bRd\.", "Road"),
    (r"\bFig\.", "Figure"), (r"\bVol\.", "Volume"), (r"\bInc\.", "Incorporated"),
    (r"\bGen\.(?= [A-Z])", "General"),
    (r"\bJan\.", "January"), (r"\bFeb\.", "February"), (r"\bAug\.", "August"),
    (r"\bSept?\.", "September"), (r"\bOct\.", "October"), (r"\bNov\.", "November"),
    (r"\bDec\.", "December"), (r"\ba\.m\.", "a m"), (r"\bp\.m\.", "p m"),
    *((rf"\b{short}\.?(?= \d)", month) for short, month in (
        ("Jan", "January"), ("Feb", "February"), ("Mar", "March"), ("Apr", "April"),
        ("Jun", "June"), ("Jul", "July"), ("Aug", "August"), ("Sept?", "September"),
        ("Oct", "October"), ("Nov", "November"), ("Dec", "December"))),
]
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"),
               "\u00a3": ("pound", "pounds", "penny", "pence"),
               "\u20ac": ("euro", "euros", "cent", "cents"),
               "\u00a5": ("yen", "yen", "sen", "sen"),
               "\u20b9": ("rupee", "rupees", "paisa", "paise")}
_CURRENCY = f"[{re.escape(''.join(_CURRENCIES))}]"  # a regex class of their symbols
_SCALES = ("thousand", "million", "billion", "trillion")
_UNITS = {"km/h": "kilometers per hour", "m/s": "meters per second",
          "km": "kilometers", "kg": "kilograms", "cm": "centimeters", "mm": "millimeters",
          "mph": "miles per hour", "kph": "kilometers per hour", "ms": "milliseconds",
          "GB": "gigabytes", "MB": "megabytes", "KB": "kilobytes", "kHz": "kilohertz",
          "Hz": "hertz", "lbs": "pounds", "lb": "pounds", "oz": "ounces", "ft": "feet",
          "mi": "miles", "min": "minutes", "hrs": "hours", "hr": "hours"}
# "/hr" in "$15/hr": what a rate is per.
_PER = {"hr": "hour", "h": "hour", "hour": "hour", "day": "day", "wk": "week", "week": "week",
        "mo": "month", "month": "month", "yr": "year", "year": "year", "min": "minute",
        "sec": "second", "person": "person", "kg": "kilogram", "km": "kilometer", "mi": "mile"}
_DENOMINATORS = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def _cardinal(digits: str) -> str:
    return num2words(int(digits.replace(",", "")))


def _number(text: str) -> str:
    """A written number ("1,234", "3.14", "-2") in words."""
    negative = text.startswith("-")
    text = text.lstrip("-+").replace(",", "")
    if "." in text:
        whole, fraction = text.split(".", 1)
        words = f"{num2words(int(whole or 0))} point " + " ".join(
            num2words(int(digit)) for digit in fraction)
    else:
        words = num2words(int(text))
    return f"minus {words}" if negative else words


def _currency(match: re.Match) -> str:
    symbol, amount, scale = match.group(1), match.group(2), match.group(3)
    return _amount(symbol, amount, scale)


def _amount(symbol: str, amount: str, scale: str | None = None) -> str:
    """An amount of a currency in words: ("$", "5.50") -> "five dollars and fifty cents"."""
    one, many, cent, cents = _CURRENCIES[symbol]
    whole, _, fraction = amount.replace(",", "").partition(".")
    if scale:  # "$5 million", "$2.5bn": the scale before the unit
        scale = {"k": "thousand", "m": "million", "b": "billion", "bn": "billion"}.get(
            scale.lower(), scale)
        return f"{_number(amount)} {scale} {many}"
    if len(fraction) > 2:  # "$5.999": a price per unit, not dollars and cents
        return f"{_number(amount)} {many}"
    units, hundredths = int(whole or 0), int(fraction[:2].ljust(2, "0")) if fraction else 0
    cents_words = f"{num2words(hundredths)} {cent if hundredths == 1 else cents}"
    if units == 0 and hundredths:  # "$0.99": ninety-nine cents
        return cents_words
    words = f"{num2words(units)} {one if units == 1 else many}"
    return f"{words} and {cents_words}" if hundredths else words


def _time(match: re.Match) -> str:
    hours, minutes, period = int(match.group(1)), int(match.group(2)), match.group(3)
    if hours > 23 or minutes > 59:
        return match.group(0).replace(":", " ")
    spoken = num2words(hours)
    if minutes == 0:
        spoken += " o'clock" if not period else ""
    elif minutes < 10:
        spoken += f" oh {num2words(minutes)}"
    else:
        spoken += f" {num2words(minutes)}"
    if period:
        spoken += " " + " ".join(period.replace(".", "").replace(" ", "").lower())
    return spoken + _keep_final_stop("")(match)


def _clock_with_seconds(match: re.Match) -> str:
    """"12:30:45" -> "twelve thirty and forty-five seconds" (a clock time read to the second)."""
    hours, minutes, seconds = (int(group) for group in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        return match.group(0).replace(":", " ")
    spoken = num2words(hours)
    if minutes == 0:
        spoken += " hundred"
    elif minutes < 10:
        spoken += f" oh {num2words(minutes)}"
    else:
        spoken += f" {num2words(minutes)}"
    return f"{spoken} and {num2words(seconds)} second{'' if seconds == 1 else 's'}"


def _power_of_ten(match: re.Match) -> str:
    """"1e3" -> "one times ten to the power of three"."""
    return f"{_number(match.group(1))} times ten to the power of {_number(match.group(2))}"


def _date(year: int, month: int, day: int, original: str) -> str:
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return original
    return f"{_MONTHS[month - 1]} {num2words(day, to='ordinal')}, {num2words(year, to='year')}"


def _fraction(match: re.Match) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if denominator in _DENOMINATORS:
        one, many = _DENOMINATORS[denominator]
    elif 3 <= denominator <= 10:
        one = num2words(denominator, to="ordinal")
        many = one + "s"
    else:
        return f"{num2words(numerator)} over {num2words(denominator)}"
    return f"{num2words(numerator)} {one if numerator == 1 else many}"


_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"


def _keep_final_stop(reading: str) -> Callable[[re.Match], str]:
    """An abbreviation's reading, with its period kept as a full stop when it ends the text
    or a line ("... on Main St." ends a sentence; "St. Paul" does not)."""
    def read(match: re.Match) -> str:
        rest = match.string[match.end():]
        ends = match.group(0).endswith(".") and (not rest.strip(" ") or rest.startswith("\n"))
        return reading + ("." if ends else "")
    return read


def _abbreviations(text: str) -> str:
    """Read before the line breaks are (an abbreviation's period at a line's end is also the
    sentence's)."""
    for pattern, reading in _ABBREVIATIONS:
        text = re.sub(pattern, _keep_final_stop(reading), text)
    return text


def _decade(digits: str) -> str:
    """"1990" -> "nineteen nineties", "90" -> "nineties"."""
    words = num2words(int(digits), to="year") if len(digits) == 4 else num2words(int(digits))
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _digits(group: str) -> str:
    return " ".join(num2words(int(digit)) for digit in group)


_ADDRESS = re.compile(r"\b(?:https?://|www\.)[^\s,;]*[^\s,;.!?:]"  # a web address
                      r"|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")         # an email address
_ADDRESS_MARKS = {".": " dot ", "/": " slash ", "@": " at ", ":": " colon ", "-": " dash ",
                  "+": " plus ", "?": " question mark ", "=": " equals ", "&": " and ",
                  "#": " hash ", "%": " percent "}


def _spoken_address(match: re.Match) -> str:
    """"https://example.com/a-b" -> "example dot com slash a dash b"; "bob@example.com" ->
    "bob at example dot com" (the scheme is not read)."""
    address = re.sub(r"^https?://", "", match.group(0))
    return " ".join("".join(_ADDRESS_MARKS.get(c, c) for c in address).split())


def _words_for_digits_and_symbols(text: str) -> str:
    # Web and email addresses first: their dots, slashes and digits are not numbers or dates.
    text = _ADDRESS.sub(_spoken_address, text)
    # An en dash between numbers is a range ("3–5", "$3–$5", "1990–1995"); elsewhere a pause.
    text = re.sub(rf"(?<=\d) ?{_RANGE_DASH} ?(?={_CURRENCY}?\d)", " to ", text)
    text = text.replace(_RANGE_DASH, "-")
    # A sign before a number, or before the currency of one: "-5", "-5%", "-$5", "$-5"
    # (not "3-5", "2024-01-05" or "well-known": a sign follows no letter, digit or hyphen).
    text = re.sub(rf"({_CURRENCY}) ?-(?=\d)", r"-\1", text)
    text = re.sub(rf"(?<![\w%-])-(?=(?:{_CURRENCY} ?)?\.?\d)", "minus ", text)
    # The euro's decimal comma: "€2,50", "2,50 €" (two digits after it: not a thousands comma).
    text = re.sub(r"(\u20ac) ?(\d+),(\d{2})(?![\d,])", r"\1\2.\3", text)
    text = re.sub(r"(?<![\d,])(\d+),(\d{2}) ?(?=\u20ac)", r"\1.\2", text)
    # Telephone numbers, digit by digit: 555-1234, 212-555-1234; ISO dates, 2024-01-05.
    text = re.sub(r"\b(?:(\d{3})-)?(\d{3})-(\d{4})\b", lambda m: ", ".join(
        _digits(group) for group in m.groups() if group), text)
    text = re.sub(r"\b(\d{4})-(\d{2})-(\d{2})\b", lambda m: _date(
        int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(0)), text)
    # International telephone numbers, "+1 555 123 4567": plus, then digit by digit.
    text = re.sub(r"\+(\d{1,3})((?:[ .-]\d{2,4}){2,})\b", lambda m: "plus " + ", ".join(
        _digits(group) for group in re.split(r"[ .-]", m.group(1) + m.group(2))), text)
    # Thousands grouped by no-break or thin spaces (any groups: "12\u202f345"), by plain spaces
    # (round thousands only, "10 000": "the 10 100-meter races" are two numbers), or by
    # dots ("1.000.000"): commas, as written in English.
    text = re.sub(rf"(?<![\d.,])\d{{1,3}}(?:{_GROUP_SPACE}\d{{3}})+(?![\d.,]?\d)",
                  lambda m: m.group(0).replace(_GROUP_SPACE, ","), text)
    text = text.replace(_GROUP_SPACE, " ")
    text = re.sub(r"(?<![\d.,+])(?<![\d.,] )\d{1,3}(?: 000)+(?![\d.,]?\d| \d)",
                  lambda m: m.group(0).replace(" ", ","), text)
    text = re.sub(r"(?<![\d.,])\d{1,3}(?:\.\d{3}){2,}(?![\d.,]?\d)",
                  lambda m: m.group(0).replace(".", ","), text)
    # Digits that are not a quantity, read one by one: a leading zero ("007"), 16 or more
    # digits (a card or account number), groups of four ("4111 1111 1111 1111").
    text = re.sub(r"(?<![\d.,])(?:\d{4} ){2,}\d{4}(?!\d|[.,]\d)", lambda m: " " + ", ".join(
        _digits(group) for group in m.group(0).split()), text)
    text = re.sub(r"(?<![\d.,:/-])(?:0\d+|\d{16,})(?![\d.,:/-]?\d)",
                  lambda m: " " + _digits(m.group(0)), text)
    # Three or more numbers joined by hyphens are a code (an ISBN, a part number): each
    # group, a pause between. What is left of a hyphen between numbers is a range: "5-10%",
    # "5%-10%", "$5-$10", "1990-95".
    text = re.sub(r"\b\d+(?:-\d+){2,}\b", lambda m: ", ".join(
        _digits(group) if group.startswith("0") or len(group) > 4 else group
        for group in m.group(0).split("-")), text)
    text = re.sub(rf"(?<=\d)%?-(?={_CURRENCY}?\d)", lambda m: " percent to " if
                  m.group(0).startswith("%") else " to ", text)
    # Currency: "$5", "$5.50", "$.50", "$1,200", "£3 million", "$1m", "$1.5M", "$2.5bn", "$3k";
    # and the symbol written after the amount, "3.50$", "20 €".
    text = re.sub(rf"({_CURRENCY}) ?\.(?=\d)", r"\g<1>0.", text)
    scales = "|".join((*_SCALES, "[mkbMKB]", "bn", "BN"))
    text = re.sub(rf"({_CURRENCY}) ?({_NUMBER})(?: ?({scales})\b)?", _currency, text)
    text = re.sub(rf"(?<![\w.,])({_NUMBER}) ?({_CURRENCY})",
                  lambda m: _amount(m.group(2), m.group(1)), text)
    # "24/7" as said (not twenty-four sevenths); powers of ten, "1e3", "2.5E-4".
    text = re.sub(r"\b24/7\b", "twenty-four seven", text)
    text = re.sub(r"\b(\d+(?:\.\d+)?)[eE]([-+]?\d+)\b", _power_of_ten, text)
    # Decades: 1990s, '90s, 1990's.
    text = re.sub(r"\b(\d{1,3}0)'s\b", r"\1s", text)
    text = re.sub(r"\b(1[0-9]\d0|20\d0)s\b", lambda m: _decade(m.group(1)), text)
    text = re.sub(r"'(\d0)s\b", lambda m: _decade(m.group(1)), text)
    text = re.sub(r"(?<![\d'])\b([1-9]0)s\b", lambda m: _decade(m.group(1)), text)
    # A letter then a digit ("v2.0", "MP3"): two words.
    text = re.sub(r"(?<=[A-Za-z])(?=\d)", " ", text)
    # Version numbers and other dotted groups, "2.0.1": each group, "point" between.
    text = re.sub(r"\b\d+(?:\.\d+){2,}\b", lambda m: " point ".join(
        num2words(int(group)) for group in m.group(0).split(".")), text)
    # Dates: 2024/01/05, US 1/5/2024 (day first when the first number cannot be a month,
    # 25/12/2024), "January 5th" / "January 5".
    text = re.sub(r"\b(\d{4})/(\d{1,2})/(\d{1,2})\b", lambda m: _date(
        int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(0)), text)
    text = re.sub(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b", lambda m: _date(
        int(m.group(3)), *((int(m.group(2)), int(m.group(1))) if int(m.group(1)) > 12
                           else (int(m.group(1)), int(m.group(2)))), m.group(0)), text)
    text = re.sub(rf"\b({'|'.join(_MONTHS)}) (\d{{1,2}})(?:st|nd|rd|th)?\b",
                  lambda m: f"{m.group(1)} {num2words(int(m.group(2)), to='ordinal')}", text)
    # Times: 12:30:45, 3:30, 3:30 pm, 10:05 a.m. (already "a m" from the abbreviations).
    text = re.sub(r"\b(\d{1,2}):(\d{2}):(\d{2})\b", _clock_with_seconds, text)
    text = re.sub(r"\b(\d{1,2}):(\d{2})(?: ?([AaPp]\.? ?[Mm]\.?)(?![A-Za-z]))?", _time, text)
    text = re.sub(r"\b(\d{1,2})\.(\d{2}) ?([AaPp]\.? ?[Mm]\.?)(?![A-Za-z])", _time, text)  # 3.05 pm
    text = re.sub(r"(?<![\d.,:])\b(\d{1,2}) ?([AaPp]\.? ?[Mm]\.?)(?![A-Za-z])", lambda m: num2words(
        int(m.group(1))) + " " + " ".join(m.group(2).replace(".", "").replace(" ", "").lower())
        + _keep_final_stop("")(m), text)
    # Ordinals, percentages, fractions, units.
    text = re.sub(r"\b(\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th)\b",
                  lambda m: num2words(int(m.group(1).replace(",", "")), to="ordinal"), text)
    text = re.sub(rf"({_NUMBER}) ?%", lambda m: f"{_number(m.group(1))} percent", text)
    text = re.sub(r"\b50/50\b", "fifty-fifty", text)
    text = re.sub(r"(?<=\d) / (?=\d)", " divided by ", text)
    text = re.sub(r"\b(\d+)/(\d+)\b", _fraction, text)
    text = re.sub(rf"({_NUMBER}) ?({'|'.join(_UNITS)})\b",
                  lambda m: f"{_number(m.group(1))} {_UNITS[m.group(2)]}", text)
    text = re.sub(rf"/({'|'.join(_PER)})\b", lambda m: f" per {_PER[m.group(1)]}", text)
    text = re.sub(rf"({_NUMBER}) ?\u00b0 ?([CF])\b", lambda m: f"{_number(m.group(1))} degrees "
                  + ("Celsius" if m.group(2) == "C" else "Fahrenheit"), text)
    # Years: a lone four-digit number from 1100 to 2099 (not a count with a separator).
    text = re.sub(r"(?<![\d,.$])\b(1[1-9]\d\d|20\d\d)\b(?![\d,.]\d)",
                  lambda m: num2words(int(m.group(1)), to="year"), text)
    # A decimal without its leading zero, ".5"; a number joined to a letter ("3x", "4B",
    # "1080p") as two words; any other number.
    text = re.sub(r"(?<![\w.])\.(\d+)\b", lambda m: "point " + _digits(m.group(1)), text)
    text = re.sub(r"(?<=\d)(?=[A-Za-z])", " ", text)
    text = re.sub(_NUMBER, lambda m: _number(m.group(0)), text)
    for symbol, words in _SYMBOL_WORDS.items():
        text = text.replace(symbol, words)
    return text


def _tidy(text: str) -> str:
    text = re.sub(r"[ ]+", " ", text)
    text = re.sub(r" ([,.;:!?])", r"\1", text)
    text = re.sub(r",(?:[ ]*,)+", ",", text)          # pauses that met
    text = re.sub(r",[ ]*([.;:!?])", r"\1", text)     # a pause before a stop
    text = re.sub(r"([.;:!?]),", r"\1", text)         # a pause after a stop
    text = re.sub(r"^[ ,]+", "", text)
    text = re.sub(r",([A-Za-z'])", r", \1", text)
    return text.strip(" ,")


def normalize_text(text: str) -> str:
    """`text` in words the frontend can speak: ASCII letters, digits-free, basic punctuation.

    Args:
      text: str of at most MAX_DOCUMENT_CHARS (100,000) characters, any Unicode.
    Returns:
      The normalized text (str); plain ASCII text without digits or symbols comes back
      with only its whitespace and quotes changed.
    Raises:
      FrontendError: `text` is not a str or is over MAX_DOCUMENT_CHARS; a character has no
        reading (named, with its position in `text`); nothing is left to say (no letters).
    """
    if not isinstance(text, str):
        raise FrontendError(f"text must be a str, got {type(text).__name__}")
    if len(text) > MAX_DOCUMENT_CHARS:
        raise FrontendError(f"text is {len(text)} characters long; the limit is "
                            f"{MAX_DOCUMENT_CHARS} (about 1.5 hours of speech)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _fold_characters(text)
    text = _abbreviations(text)
    text = _breaks(text)
    text = _words_for_digits_and_symbols(text)
    text = _tidy(text)
    if not any(character.isalpha() for character in text):
        raise FrontendError("nothing to say: the text has no words (only punctuation, "
                            "spaces or line breaks)")
    return text
