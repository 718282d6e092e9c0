"""Text as people type and paste it: each real-world input with the words it is read as, or the
one error it gets; every reading is then spoken by espeak-ng with phonemes the model knows."""

import numpy as np
import pytest

from soundstorm.runtime.frontend import FrontendError, get_speaker, load_vocabulary, normalize_text, synthesize
from soundstorm.runtime.frontend.text_check import check_text

READINGS = [
    # Files and pasted text: line endings, breaks, typography.
    ("Hello world.\n", "Hello world."),                               # echo, any editor
    ("Hello world.\r\n", "Hello world."),                             # Windows editors
    ("Line one\r\nLine two\r\n", "Line one, Line two"),
    ("First paragraph\n\nSecond paragraph.", "First paragraph. Second paragraph."),
    ("It was late.\n\n\n  And dark.\n", "It was late. And dark."),
    ("Roses are red\nViolets are blue", "Roses are red, Violets are blue"),
    ("We\u2019re here.", "We're here."),
    ("\u2018Single\u2019 and \u201cdouble\u201d quotes.", "'Single' and double quotes."),
    ("He said \"hi\" and left.", "He said hi and left."),
    ("\u201cQuote,\u201d she said \u2014 then left\u2026", "Quote, she said, then left..."),
    ("Wait\u2026 what?", "Wait... what?"),
    ("A well\u2010known fact.", "A well-known fact."),
    ("pages 10\u201312", "pages ten to twelve"),                       # an en dash range
    ("Wait \u2013 really?", "Wait - really?"),                         # an en dash pause
    ("no\u00a0break\u00a0space and\u2009thin", "no break space and thin"),
    ("zero\u200bwidth\ufeff and soft\u00adhyphen", "zerowidth and softhyphen"),
    ("caf\u00e9, na\u00efve, r\u00e9sum\u00e9", "cafe, naive, resume"),
    ("\ufb01ne \uff21\uff22\uff23", "fine ABC"),
    ("(an aside) and [a note]", "an aside, and, a note"),
    ("Tab\tseparated", "Tab separated"),
    # Lists.
    ("- milk\n- eggs\n- bread\n", "milk, eggs, bread"),
    ("\u2022 one thing\n\u2022 another", "one thing, another"),
    ("1. Buy milk\n2. Call mom", "one, Buy milk, two, Call mom"),
    # Numbers.
    ("Room 101", "Room one hundred and one"),
    ("There were 1,234 people.", "There were one thousand, two hundred and thirty-four people."),
    ("Pi is 3.14.", "Pi is three point one four."),
    ("It was -5 outside.", "It was minus five outside."),
    ("Pages 3-5.", "Pages three to five."),
    ("The 21st century and the 3rd try.", "The twenty-first century and the third try."),
    ("In 1999 we moved.", "In nineteen ninety-nine we moved."),
    ("It's 50% off.", "It's fifty percent off."),
    ("Add 1/2 cup and 3/4 spoon.", "Add one half cup and three quarters spoon."),
    ("Call #5 now", "Call number five now"),
    ("Version 2.0", "Version two point zero"),
    # Currency, times, dates, units.
    ("It costs $5.50.", "It costs five dollars and fifty cents."),
    ("Only $1 today.", "Only one dollar today."),
    ("A \u00a33 million deal", "A three million pounds deal"),
    ("\u20ac20 each", "twenty euros each"),
    ("Meet at 3:30 pm.", "Meet at three thirty p m."),
    ("At 7:00 the show starts.", "At seven o'clock the show starts."),
    ("By 10:05 a.m. we left.", "By ten oh five a m we left."),
    ("Born on 2024-01-05.", "Born on January fifth, twenty twenty-four."),
    ("On 12/25/2024 we rest.", "On December twenty-fifth, twenty twenty-four we rest."),
    ("January 5th was cold.", "January fifth was cold."),
    ("Run 5 km at 20\u00b0C.", "Run five kilometers at twenty degrees Celsius."),
    # Abbreviations and symbols.
    ("Dr. Smith met Mr. Jones on Main St.",
     "Doctor Smith met Mister Jones on Main Street."),
    ("St. Paul", "Saint Paul"),
    ("Apples, pears, etc.", "Apples, pears, et cetera."),
    ("Fruit, e.g. apples.", "Fruit, for example apples."),
    ("Tom & Jerry", "Tom and Jerry"),
    ("x = y + 2", "x equals y plus two"),
    ("Email me @ home", "Email me at home"),
    ("Kids vs. adults", "Kids versus adults"),
    # Found by a new user's trial: scales, decades, slashed ISO dates, letters and digits
    # joined, telephone numbers, Drive after a name, abbreviated months, hours alone, a
    # sentence ending in an abbreviation before a list.
    ("A $1m deal and $2.5bn more.", "A one million dollars deal and two point five billion "
                                    "dollars more."),
    ("Music of the 1990s and \u201990s style", "Music of the nineteen nineties and nineties "
                                               "style"),
    ("Due 2024/01/05.", "Due January fifth, twenty twenty-four."),
    ("Version v2.0 of the MP3 player", "Version v two point zero of the MP three player"),
    ("Call 212-555-1234 now.", "Call two one two, five five five, one two three four now."),
    ("She lives on Smith Dr.", "She lives on Smith Drive."),
    ("Jan 5, 2024 was cold.", "January fifth, twenty twenty-four was cold."),
    ("Meet at 7 pm.", "Meet at seven p m."),
    ("Apples, pears, etc.\n- first item\n", "Apples, pears, et cetera. first item"),
    # Found by the second trial: signs before a symbol, the en dash between numbers, numbers
    # written other ways, Latin letters without accents, symbols, Unicode's own breaks.
    ("It was -5\u00b0C and -3% down, -$5 or $-5.", "It was minus five degrees Celsius and "
     "minus three percent down, minus five dollars or minus five dollars."),
    ("From $3\u2013$5 in 1990\u20131995.", "From three dollars to five dollars in nineteen "
     "ninety to nineteen ninety-five."),
    ("Open 24/7, the 1,000th visitor.", "Open twenty-four seven, the one thousandth visitor."),
    ("About 1e3 or 2.5E-4 units.", "About one times ten to the power of three or two point "
     "five times ten to the power of minus four units."),
    ("Only .5 left; version 2.0.1 is out.", "Only point five left; version two point zero "
     "point one is out."),
    ("At 12:30:45 exactly.", "At twelve thirty and forty-five seconds exactly."),
    ("Music of the 90s.", "Music of the nineties."),
    ("\u20ac2,50 or 3.50$ or 20 \u20ac", "two euros and fifty cents or three dollars and "
     "fifty cents or twenty euros"),
    ("Prices fell (down 3%).", "Prices fell, down three percent."),
    ("See Nos. 4 and 5.", "See numbers four and five."),
    ("Die Stra\u00dfe, \u00c6sop, \u00d8re, \u0141\u00f3d\u017a, \u0153uvre",
     "Die Strasse, Aesop, Ore, Lodz, oeuvre"),
    ("2 \u00d7 3 \u00f7 4 \u00b1 1", "two times three divided by four plus or minus one"),
    ("\u00a9 2024 Acme\u2122, \u00a7 5", "copyright twenty twenty-four Acme trademark, "
     "section five"),
    ("one\u2028two\u2029three\x0cfour\x0bfive\x85six", "one, two. three. four, five, six"),
    ("Name | Age", "Name, Age"),
    # Found by the third trial: numbers that are not quantities, other groupings, ranges
    # with a hyphen, numbers joined to letters, amounts under one, day-first dates, units per
    # time, addresses, more symbols and abbreviations.
    ("Agent 007, card 4111 1111 1111 1111.", "Agent zero zero seven, card four one one one, "
     "one one one one, one one one one, one one one one."),
    ("10 000 people, 1.000.000 euros", "ten thousand people, one million euros"),
    ("5-10%, $5-$10, 1990-95", "five to ten percent, five dollars to ten dollars, nineteen "
     "ninety to ninety-five"),
    ("3x, 1080p, Apt. 4B, H\u2082O, 5\u00b2", "three x, one thousand and eighty p, Apartment "
     "four B, H two O, five squared"),
    ("$0.99, $.50, $1.5M, \u00a51000, 50\u00a2", "ninety-nine cents, fifty cents, one point "
     "five million dollars, one thousand yen, fifty cents"),
    ("On 25/12/2024 at 3.05 pm", "On December twenty-fifth, twenty twenty-four at three oh "
     "five p m"),
    ("3 km/h or 60 m/s, the 1990's, 50/50", "three kilometers per hour or sixty meters per "
     "second, the nineteen nineties, fifty-fifty"),
    ("Visit https://example.com/a-b or mail bob@example.org.", "Visit example dot com slash "
     "a dash b or mail bob at example dot org."),
    ("a < b, x \u2265 3, 2^3, C:\\temp", "a less than b, x greater than or equal to three, two "
     "to the power of three, C: backslash temp"),
    ("See p. 5 of the Ph.D. thesis.", "See page five of the P H D thesis."),
    ("x" + "9" * 100, "x " + " ".join(["nine"] * 100)),  # num2words stops at 10^306
    # Found by the fourth check: a third decimal, plain spaces between separate numbers,
    # no-break and thin spaces as separators, hyphen chains, a percent range, rates.
    ("$5.999 a gallon, $1.50/hr, $3/kg", "five point nine nine nine dollars a gallon, one "
     "dollar and fifty cents per hour, three dollars per kilogram"),
    ("The 10 100-meter races, +1 555 123 4567", "The ten one hundred-meter races, plus one, "
     "five five five, one two three, four five six seven"),
    ("12\u202f345 and 10\u00a0000 and 10 000", "twelve thousand, three hundred and "
     "forty-five and ten thousand and ten thousand"),
    ("ISBN 978-3-16-148410-0; 5%-10%; 6 / 2", "ISBN nine hundred and seventy-eight, three, "
     "sixteen, one four eight four one zero, zero; five percent to ten percent; six divided "
     "by two"),
    # espeak's raw phoneme input ("[[...]]") never reaches it: brackets are pauses.
    ("[[h@l'oU]]", "h at l'oU"),
]

ERRORS = [
    ("...", "nothing to say"),
    ("?!", "nothing to say"),
    ("   \n  \n", "nothing to say"),
    ("\u201c\u201d", "nothing to say"),
    ("Emoji \U0001F600 here", "unsupported character '\U0001F600' (GRINNING FACE) at position 6"),
    ("\u4f60\u597d", "unsupported character '\u4f60' (CJK UNIFIED IDEOGRAPH-4F60) at position 0"),
    ("Hello, \u041c\u0438\u0440", "(CYRILLIC CAPITAL LETTER EM) at position 7"),
    ("a \u2190 b", "unsupported character '\u2190' (LEFTWARDS ARROW) at position 2"),
    ("I \u2665 it", "unsupported character '\u2665' (BLACK HEART SUIT) at position 2"),
    ("\u2211 x", "unsupported character '\u2211' (N-ARY SUMMATION) at position 0"),
    ("\u03b1 and \u03b2",
     "unsupported character '\u03b1' (GREEK SMALL LETTER ALPHA) at position 0"),
]


@pytest.mark.parametrize("text,reading", READINGS)
def test_each_input_is_read_as_these_words(text, reading):
    assert normalize_text(text) == reading
    check_text(reading)  # only characters espeak is given
    assert normalize_text(reading) == reading  # normalizing twice changes nothing


@pytest.mark.parametrize("text,error", ERRORS)
def test_what_cannot_be_said_is_one_error_naming_it(text, error):
    with pytest.raises(FrontendError) as raised:
        normalize_text(text)
    assert error in str(raised.value) and "\n" not in str(raised.value)


def test_there_are_at_least_forty_real_world_inputs():
    assert len(READINGS) + len(ERRORS) >= 40


def test_every_reading_is_spoken_with_phonemes_the_model_knows():
    """espeak-ng says each reading (one synthesis of all of them, line by line) with no
    phoneme outside the reference model's vocabulary."""
    vocabulary = load_vocabulary("v2")
    speaker = get_speaker("us_male_1")
    unknown = set()
    for _, reading in READINGS:
        utterance = synthesize(reading, speaker)
        assert utterance.phonemes, reading
        unknown |= {span.symbol for span in utterance.phonemes if span.symbol not in vocabulary}
    assert unknown == set()


def test_long_text_is_said_in_pieces_of_whole_sentences():
    """Text past one synthesis (MAX_TEXT_CHARS) is cut between sentences, a sentence past it
    after a clause, a clause between words; nothing is lost or reordered."""
    from soundstorm.runtime.frontend import MAX_TEXT_CHARS
    from soundstorm.runtime.frontend.semantic import sentence_pieces
    sentences = [f"Sentence {n} is here." for n in range(200)]
    text = normalize_text(" ".join(sentences))
    pieces = sentence_pieces(text)
    assert len(text) > 3 * MAX_TEXT_CHARS and len(pieces) == -(-len(text) // MAX_TEXT_CHARS)
    assert all(len(piece) <= MAX_TEXT_CHARS and piece.endswith(".") for piece in pieces)
    assert " ".join(pieces) == text
    clauses = ", ".join(["one two three four five"] * 100) + "."
    pieces = sentence_pieces(clauses)
    # 40 clauses of "one two three four five," (24 characters) and 39 spaces = 999.
    assert [len(piece) for piece in pieces] == [999, 999, 499]
    assert pieces[0].endswith(",") and " ".join(pieces) == clauses
    words = " ".join(["word"] * 500)
    assert [len(piece) for piece in sentence_pieces(words)] == [999, 999, 499]  # 200 words
    assert sentence_pieces("Short.") == ["Short."]
    hyphenated = "-".join(["well"] * 300)  # 1,499 characters, cut after a hyphen
    assert [len(piece) for piece in sentence_pieces(hyphenated)] == [1000, 499]  # 200 "well-"
    with pytest.raises(FrontendError, match="a word of 1500 characters \\('aaaaaaaaaaaaaaaaaaaa'"
                                            "\\.\\.\\.\\): nothing longer than 1000"):
        sentence_pieces("a" * 1500)


def test_long_text_becomes_the_tokens_of_its_pieces_in_order():
    from soundstorm.runtime.frontend import MAX_TEXT_CHARS, semantic_tokens, text_to_semantic
    from soundstorm.runtime.frontend.semantic import sentence_pieces
    vocabulary, speaker = load_vocabulary("v2"), get_speaker("us_male_1")
    text = "\n\n".join(["The quick brown fox jumps over the lazy dog."] * 30)  # 1,380 chars
    pieces = sentence_pieces(normalize_text(text))
    assert len(text) > MAX_TEXT_CHARS and len(pieces) == 2
    expected = np.concatenate([semantic_tokens(synthesize(piece, speaker), vocabulary, 50)
                               for piece in pieces])
    np.testing.assert_array_equal(text_to_semantic(text, speaker, vocabulary, 50), expected)


def test_a_text_past_the_document_limit_is_refused_before_any_work():
    from soundstorm.runtime.frontend import MAX_DOCUMENT_CHARS
    normalize_text("a" * MAX_DOCUMENT_CHARS)
    with pytest.raises(FrontendError, match=f"text is {MAX_DOCUMENT_CHARS + 1} characters long; "
                                            f"the limit is {MAX_DOCUMENT_CHARS}"):
        normalize_text("a" * (MAX_DOCUMENT_CHARS + 1))
