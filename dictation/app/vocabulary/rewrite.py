"""The written form of vocabulary entries, applied to decoded text.

- An entry with a replacement: the phrase (or its sounds-like spelling) said becomes the
  replacement ("em dash" -> "\u2014", "my address" -> the address).
- An entry with a sounds-like spelling: that spelling in the text becomes the phrase
  ("win" -> "Nguyen" when the user said so).
- A phrase with capitals ("gRPC", "McAllister") is written with the vocabulary's casing
  wherever the recogniser wrote it in another case; an all-lowercase phrase is left as
  the recogniser cased it (the start of a sentence stays capitalised).

Matches are whole words, any case, with any spaces or hyphens between the words; the
longest phrase wins where two overlap, and every match is replaced once (a replacement
is never rewritten again).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dictation.app.vocabulary.entries import VocabularyEntry


def _spoken_key(text: str) -> str:
    return " ".join(re.split(r"[\s\-]+", text.casefold())).strip()


def _pattern_for(words: str) -> str:
    return r"[\s\-]+".join(re.escape(w) for w in re.split(r"[\s\-]+", words.strip()) if w)


class TextRewriter:
    """Rewrites decoded text with the entries' written forms (see the module docstring)."""

    def __init__(self, entries: Iterable[VocabularyEntry]) -> None:
        targets: dict[str, str] = {}
        for entry in entries:
            said = [entry.phrase] + ([entry.sounds_like] if entry.sounds_like else [])
            for form in said:
                if form == entry.phrase and not entry.replacement and form == form.lower():
                    continue  # nothing to rewrite: the recogniser's casing stands
                targets.setdefault(_spoken_key(form), entry.written)
        self._targets = targets
        if not targets:
            self._regex: re.Pattern[str] | None = None
            return
        forms = sorted(targets, key=len, reverse=True)
        alternatives = "|".join(_pattern_for(f) for f in forms)
        self._regex = re.compile(rf"(?<![\w'])(?:{alternatives})(?![\w'])", re.IGNORECASE)

    def __bool__(self) -> bool:
        return self._regex is not None

    def __call__(self, text: str) -> str:
        if self._regex is None or not text:
            return text
        return self._regex.sub(lambda m: self._targets.get(_spoken_key(m.group(0)), m.group(0)), text)
