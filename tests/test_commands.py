"""Spoken commands: punctuation and line breaks from words, robust to recogniser punctuation."""

from __future__ import annotations

import pytest

from dictation.app.commands import SPOKEN_COMMANDS, apply_commands


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("hello comma how are you question mark", "hello, how are you?"),
        # Whisper tends to punctuate around the command words; that punctuation goes.
        ("Hello, comma, how are you? Question mark.", "Hello, how are you?"),
        ("it works full stop thanks", "it works. Thanks"),
        ("it works period", "it works."),
        ("Dear Sam new line thanks", "Dear Sam\nThanks"),
        ("Dear Sam, new line. Thanks.", "Dear Sam\nThanks."),
        ("one new paragraph two", "one\n\nTwo"),
        ("Great exclamation mark", "Great!"),
        ("NEW LINE at the start", "At the start"),
    ],
)
def test_commands_become_punctuation(spoken: str, written: str) -> None:
    assert apply_commands(spoken) == written


def test_text_without_commands_is_unchanged() -> None:
    text = "Send the report to Maria by 5 p.m., please."
    assert apply_commands(text) == text


def test_command_words_inside_other_words_are_not_commands() -> None:
    assert apply_commands("periodic commas newline") == "periodic commas newline"


def test_punctuation_command_with_nothing_before_is_dropped() -> None:
    assert apply_commands("comma hello") == "hello"
    assert apply_commands("") == ""


def test_every_listed_command_does_something() -> None:
    for command in SPOKEN_COMMANDS:
        assert apply_commands(f"word {command}") != f"word {command}"
