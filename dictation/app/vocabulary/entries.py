"""A vocabulary entry and the plain text form the vocabulary page imports and exports.

One entry per line::

    # comments and blank lines are ignored
    Kubernetes
    Nguyen | win
    em dash | | \u2014
    my address | | 12 Long Road\\nCambridge

`phrase | sounds like | written as`: the phrase is what is said (and written, unless a
replacement is given); "sounds like" is an optional spelling of how it is said, in
ordinary words, for names the recogniser cannot spell; "written as" is an optional text
written instead (``\\n`` is a line break, ``\\\\`` a backslash). A line with a
single field is the phrase alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_PHRASE_CHARS = 100
MAX_REPLACEMENT_CHARS = 2000
MAX_ENTRIES = 2000
SEPARATOR = "|"


class VocabularyError(ValueError):
    """An entry or a file line that cannot be used; the message says why."""


def clean_words(text: str) -> str:
    """Words separated by single spaces, no edge whitespace."""
    return " ".join(text.split())


@dataclass(frozen=True)
class VocabularyEntry:
    phrase: str
    sounds_like: str = ""
    replacement: str = ""

    @property
    def key(self) -> str:
        """Entries are one per phrase, whatever its case."""
        return self.phrase.casefold()

    @property
    def written(self) -> str:
        """What is written for it: the replacement, else the phrase."""
        return self.replacement or self.phrase

    def to_json(self) -> dict[str, str]:
        record = {"phrase": self.phrase}
        if self.sounds_like:
            record["sounds_like"] = self.sounds_like
        if self.replacement:
            record["replacement"] = self.replacement
        return record


def make_entry(phrase: str, sounds_like: str = "", replacement: str = "") -> VocabularyEntry:
    """A checked entry: phrase and sounds-like as single-spaced words, no separator or
    line break in them; the replacement kept as given (it may hold line breaks)."""
    phrase, sounds_like = clean_words(phrase), clean_words(sounds_like)
    if not phrase:
        raise VocabularyError("a vocabulary entry needs a word or phrase")
    for name, value in (("phrase", phrase), ("sounds-like spelling", sounds_like)):
        if SEPARATOR in value:
            raise VocabularyError(f"the {name} {value!r} may not contain {SEPARATOR!r}")
        if len(value) > MAX_PHRASE_CHARS:
            raise VocabularyError(f"the {name} {value[:40]!r}... is longer than {MAX_PHRASE_CHARS} characters")
    if not any(ch.isalnum() for ch in phrase):
        raise VocabularyError(f"the phrase {phrase!r} has no letters or digits to say")
    if len(replacement) > MAX_REPLACEMENT_CHARS:
        raise VocabularyError(f"the replacement for {phrase!r} is longer than {MAX_REPLACEMENT_CHARS} characters")
    if sounds_like.casefold() == phrase.casefold():
        sounds_like = ""
    return VocabularyEntry(phrase, sounds_like, replacement.strip(" \t"))


def entry_from_json(record: object) -> VocabularyEntry | None:
    """An entry from vocabulary.json's "entries" list; None for a record of the wrong shape."""
    if not isinstance(record, dict) or not isinstance(record.get("phrase"), str):
        return None
    sounds, replacement = record.get("sounds_like", ""), record.get("replacement", "")
    if not isinstance(sounds, str) or not isinstance(replacement, str):
        return None
    try:
        return make_entry(record["phrase"], sounds, replacement)
    except VocabularyError:
        return None


def merge(entries: Iterable[VocabularyEntry]) -> list[VocabularyEntry]:
    """One entry per phrase (any case); a later entry for a phrase replaces the earlier one
    in its place."""
    merged: dict[str, VocabularyEntry] = {}
    for entry in entries:
        merged[entry.key] = entry
    return list(merged.values())


# -- the plain text form ---------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "n\\":
            out.append("\n" if text[i + 1] == "n" else "\\")
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_line(line: str) -> VocabularyEntry | None:
    """The entry on one line of the text form; None for a blank or comment line."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    fields = [f.strip() for f in stripped.split(SEPARATOR, 2)]
    fields += [""] * (3 - len(fields))
    phrase, sounds_like, replacement = fields
    return make_entry(phrase, sounds_like, _unescape(replacement))


def parse_text(text: str) -> list[VocabularyEntry]:
    """Entries of a whole file in the text form; VocabularyError names the first bad line."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            entry = parse_line(line)
        except VocabularyError as exc:
            raise VocabularyError(f"line {number}: {exc}") from None
        if entry is not None:
            entries.append(entry)
    return merge(entries)


def format_line(entry: VocabularyEntry) -> str:
    if entry.replacement:
        return f"{entry.phrase} | {entry.sounds_like} | {_escape(entry.replacement)}".replace(" |  |", " | |")
    if entry.sounds_like:
        return f"{entry.phrase} | {entry.sounds_like}"
    return entry.phrase


HEADER = "# dictation vocabulary: one entry per line, phrase | sounds like | written as (both optional)\n"


def format_text(entries: Iterable[VocabularyEntry]) -> str:
    """The text form of `entries`, a header comment first; `parse_text` reads it back."""
    return HEADER + "".join(format_line(e) + "\n" for e in entries)
