"""A profile's own words: names, places, product names, jargon (issue 27).

- `entries`: `VocabularyEntry` (phrase, sounds-like spelling, replacement) and the plain
  text form the vocabulary page imports and exports.
- `store`: `VocabularyStore(profile)`, the entries in the profile's vocabulary.json.
- `trie`: the token trie and `PhraseBias`, the bounded bonus inside the beam search.
- `verify`: the biased text kept only where a phrase replaces words the model was unsure of.
- `phonetic`: a rule-based sound key of spelling and a distance between keys.
- `repair`: `PhoneticRepair`, unsure sound-alikes of a phrase rewritten if the decoder agrees.
- `rewrite`: `TextRewriter`, the written forms applied to decoded text.
- `decoding_vocabulary`: `DecodingVocabulary`, what a `runtime.Transcriber` is given.

numpy only: the dictation path imports it.
"""

from __future__ import annotations

from typing import Any

from dictation.app.vocabulary.decoding_vocabulary import DEFAULT_MODE, MODES, DecodingVocabulary
from dictation.app.vocabulary.entries import (
    VocabularyEntry,
    VocabularyError,
    format_text,
    make_entry,
    parse_text,
)
from dictation.app.vocabulary.rewrite import TextRewriter
from dictation.app.vocabulary.store import VocabularyStore
from dictation.app.vocabulary.trie import BiasWeights, PhraseBias, PhraseTrie

__all__ = [
    "DEFAULT_MODE",
    "MODES",
    "BiasWeights",
    "DecodingVocabulary",
    "PhraseBias",
    "PhraseTrie",
    "TextRewriter",
    "VocabularyEntry",
    "VocabularyError",
    "VocabularyStore",
    "for_profile",
    "format_text",
    "make_entry",
    "parse_text",
]


def for_profile(profile: Any, mode: str = DEFAULT_MODE) -> DecodingVocabulary | None:
    """The profile's vocabulary for a transcriber; None when it has no entries (then
    decoding is exactly as without one)."""
    entries = VocabularyStore(profile).entries()
    return DecodingVocabulary(entries, mode) if entries else None
