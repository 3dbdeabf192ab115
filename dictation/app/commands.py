"""Spoken punctuation and layout commands ("comma", "new line", ...) applied to a transcript.

The recogniser often adds its own punctuation around a spoken command ("Hello, comma, how
are you? Question mark."), so commands are matched on the bare lowercase word and any
punctuation the recogniser put around them is dropped. Commands are optional (a setting):
with them on, a literal "period" in speech becomes "." as well, which is the usual trade-off
of dictation software.
"""

from __future__ import annotations

import re

# Longest phrases first so "new paragraph" wins over any shorter command.
_COMMANDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("new", "paragraph"), "\n\n"),
    (("new", "line"), "\n"),
    (("full", "stop"), "."),
    (("question", "mark"), "?"),
    (("exclamation", "mark"), "!"),
    (("comma",), ","),
    (("period",), "."),
)
_BREAKS = {"\n", "\n\n"}
_EDGE_PUNCT = re.compile(r"^[^\w']+|[^\w']+$")
_TRAILING_PUNCT = ",.;:!?"

SPOKEN_COMMANDS: tuple[str, ...] = tuple(" ".join(words) for words, _ in _COMMANDS)


def _core(token: str) -> str:
    """The bare lowercase word inside a token ("Comma," -> "comma")."""
    return _EDGE_PUNCT.sub("", token).lower()


def _match(tokens: list[str], i: int) -> tuple[int, str] | None:
    for words, mark in _COMMANDS:
        n = len(words)
        if tuple(_core(t) for t in tokens[i : i + n]) == words:
            return n, mark
    return None


def _capitalize(token: str) -> str:
    return token[:1].upper() + token[1:]


def apply_commands(text: str) -> str:
    """Replace spoken commands in `text` with the punctuation or line breaks they name."""
    tokens = text.split()
    out: list[str] = []
    capitalize_next = False
    i = 0
    while i < len(tokens):
        found = _match(tokens, i)
        if found is None:
            token = tokens[i]
            out.append(_capitalize(token) if capitalize_next else token)
            capitalize_next = False
            i += 1
            continue
        n, mark = found
        i += n
        has_word_before = bool(out) and out[-1] not in _BREAKS
        if mark in _BREAKS:
            if has_word_before:
                # A comma the recogniser guessed before "new line" is noise; keep . ? !
                out[-1] = out[-1].rstrip(",;:")
            if out:
                out.append(mark)
            capitalize_next = True
        elif has_word_before:
            out[-1] = out[-1].rstrip(_TRAILING_PUNCT) + mark
            capitalize_next = mark in ".?!"
        # A punctuation command with no word before it has nothing to attach to: dropped.
    return _join(out)


def _join(pieces: list[str]) -> str:
    text = ""
    for piece in pieces:
        if piece in _BREAKS or not text or text.endswith("\n"):
            text += piece
        else:
            text += " " + piece
    return text.strip(" ")
