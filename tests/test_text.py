"""The WER normaliser and error rates every reported figure goes through."""

import pytest

from dictation.app.text import cer, clean_transcript, normalize_for_wer, wer


@pytest.mark.parametrize(
    "text, normal",
    [
        ("He paid $1,000 on Monday.", "he paid 1000 on monday"),
        ("Twenty-one people came, and two cats!", "21 people came and 2 cats"),
        ("It’s Joe’s “book”.", "it's joe's book"),
        ("Call four two one now", "call 421 now"),
        ("one hundred and five", "105"),
        ("Pi is 3.14.", "pi is 3.14"),
    ],
)
def test_normaliser(text, normal):
    assert normalize_for_wer(text) == normal


def test_wer_ignores_case_punctuation_and_number_style():
    assert wer(["I have twenty apples."], ["i have 20 apples"]) == 0.0
    assert wer(["the cat sat"], ["the cat sat down"]) == pytest.approx(1 / 3)
    assert wer(["a b c d"], ["a x c"]) == pytest.approx(2 / 4)
    assert cer(["abc"], ["abd"]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        wer(["a"], [])


def test_clean_transcript():
    assert clean_transcript("  Hello\u00a0 world —  ok ") == "Hello world - ok"
