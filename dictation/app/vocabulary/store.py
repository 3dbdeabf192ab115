"""A profile's vocabulary entries, kept in its ``vocabulary.json``.

The file keeps the format the profiles package reads: ``{"words": [...]}``, the phrases
in order (what `Profile.vocabulary()` returns), plus ``"entries"``: the sounds-like
spellings and replacements of the phrases that have them. ``words`` decides which
phrases exist; an entry whose phrase is no longer among them is ignored (an older
version rewrote the list). `Profile.save_vocabulary` writes the word list alone (the
details are dropped): the app and the CLI write through `VocabularyStore`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from dictation.app import storage
from dictation.app.vocabulary.entries import (
    MAX_ENTRIES,
    VocabularyEntry,
    VocabularyError,
    entry_from_json,
    make_entry,
    merge,
)


class VocabularyStore:
    """Entries of one open profile (`dictation.app.profiles.Profile`); every change is
    written at once, atomically."""

    def __init__(self, profile: Any) -> None:
        self.profile = profile
        self.path = profile.settings_store.vocabulary_path

    def entries(self) -> list[VocabularyEntry]:
        """The entries in the order saved; [] for none (or a damaged file, set aside)."""
        words = self.profile.vocabulary()  # sets a damaged file aside and says so
        details: dict[str, VocabularyEntry] = {}
        try:
            raw = json.loads(self.path.read_bytes().decode("utf-8"))
        except (OSError, ValueError):
            raw = {}
        records = raw.get("entries") if isinstance(raw, dict) else None
        for record in records if isinstance(records, list) else []:
            entry = entry_from_json(record)
            if entry is not None:
                details[entry.key] = entry
        out = []
        for word in words:
            try:
                plain = make_entry(word)
            except VocabularyError:
                continue  # written by hand or by an older version: left out, not fatal
            detailed = details.get(plain.key)
            out.append(VocabularyEntry(plain.phrase, detailed.sounds_like, detailed.replacement) if detailed else plain)
        return merge(out)

    def save(self, entries: Iterable[VocabularyEntry]) -> list[VocabularyEntry]:
        """Replace all entries (one per phrase, any case); returns what was saved."""
        merged = merge(entries)
        if len(merged) > MAX_ENTRIES:
            raise VocabularyError(f"a vocabulary holds at most {MAX_ENTRIES} entries, not {len(merged)}")
        data = {
            "words": [e.phrase for e in merged],
            "entries": [e.to_json() for e in merged if e.sounds_like or e.replacement],
        }
        with self.profile.location.writing():
            storage.atomic_write_json(self.path, data, make_parents=False)
        return merged

    def add(self, new: Iterable[VocabularyEntry]) -> list[VocabularyEntry]:
        """Add entries (one for a phrase already there replaces it in its place)."""
        return self.save([*self.entries(), *new])

    def remove(self, phrases: Iterable[str]) -> tuple[list[str], list[str]]:
        """Remove the entries of these phrases (any case, any spacing); returns
        (removed, not found), each as given."""
        entries = self.entries()
        keys = {e.key for e in entries}
        removed, missing = [], []
        drop = set()
        for phrase in phrases:
            key = " ".join(phrase.split()).casefold()
            if key in keys:
                removed.append(phrase)
                drop.add(key)
            else:
                missing.append(phrase)
        if drop:
            self.save([e for e in entries if e.key not in drop])
        return removed, missing
