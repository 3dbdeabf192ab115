"""A profile's settings (``settings.json``) and own words (``vocabulary.json``).

Both are optional: a missing file means the defaults (the GUI's ``with_defaults``
fills in every key) or no words. A damaged one (half-written, not JSON, wrong shape)
must not refuse the whole profile: it is renamed aside (``settings.damaged-<time>.json``,
never deleted), a warning is logged, the defaults are used, and `recovered()` tells
the app what happened so it can tell the user.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from dictation.app import storage
from dictation.app.profiles.errors import CorruptProfileError, ProfileError, UnreadableFile
from dictation.app.profiles.files import SETTINGS_JSON, VOCABULARY_JSON, ProfileLocation, keep_aside, read_json_dict


class SettingsStore:
    """Reads and writes settings and vocabulary; keeps damaged files aside."""

    def __init__(self, location: ProfileLocation) -> None:
        self.location = location
        self.settings_path = location.path / SETTINGS_JSON
        self.vocabulary_path = location.path / VOCABULARY_JSON
        self._recovered: list[UnreadableFile] = []

    def settings(self) -> dict:
        """Saved settings; {} when never saved or when the file was damaged (kept aside)."""
        if not self.settings_path.exists():
            return {}
        try:
            return read_json_dict(self.settings_path)
        except CorruptProfileError as exc:
            self._set_aside(self.settings_path, exc, "the default settings are used")
            return {}

    def save_settings(self, settings: dict) -> None:
        if not isinstance(settings, dict):
            raise ProfileError("settings must be a dict")
        try:
            json.dumps(settings)
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"settings are not JSON-serialisable: {exc}") from exc
        with self.location.writing():
            storage.atomic_write_json(self.settings_path, settings, make_parents=False)

    def vocabulary(self) -> list[str]:
        """The user's own words (names, jargon), in the order saved; [] when the file was
        damaged (kept aside)."""
        if not self.vocabulary_path.exists():
            return []
        try:
            return _words(self.vocabulary_path)
        except CorruptProfileError as exc:
            self._set_aside(self.vocabulary_path, exc, "no own words are used until you add them again")
            return []

    def save_vocabulary(self, words: list[str]) -> None:
        """Save the word list: stripped, duplicates (any case) and empties dropped."""
        seen: set[str] = set()
        cleaned = []
        for word in words:
            if not isinstance(word, str):
                raise ProfileError(f"vocabulary entries must be strings, not {type(word).__name__}")
            word = " ".join(word.split())
            if word and word.casefold() not in seen:
                seen.add(word.casefold())
                cleaned.append(word)
        with self.location.writing():
            storage.atomic_write_json(self.vocabulary_path, {"words": cleaned}, make_parents=False)

    def recovered(self) -> list[UnreadableFile]:
        """Damaged files this store has set aside since the profile was opened."""
        return list(self._recovered)

    def problems(self) -> list[UnreadableFile]:
        """Damaged settings/vocabulary files as they lie now (reads only, moves nothing)."""
        found = []
        for path, read in ((self.settings_path, read_json_dict), (self.vocabulary_path, _words)):
            if path.exists():
                try:
                    read(path)
                except CorruptProfileError as exc:
                    found.append(UnreadableFile(path, str(exc.__cause__ or exc)))
        return found

    def _set_aside(self, path: Path, exc: CorruptProfileError, consequence: str) -> None:
        logger = logging.getLogger(__name__)
        if any(p.path == path and p.kept_at is None for p in self._recovered):
            return  # could not be moved before either: said once is enough
        try:
            with self.location.writing():
                kept = keep_aside(path)
        except (OSError, ProfileError) as move_exc:
            logger.warning("%s is damaged (%s) and could not be moved aside (%s); %s", path, exc, move_exc, consequence)
            problem = UnreadableFile(path, f"is damaged and could not be set aside; {consequence}")
        else:
            logger.warning("%s was damaged (%s); kept it as %s; %s", path, exc, kept, consequence)
            problem = UnreadableFile(path, f"was damaged; {consequence}", kept_at=kept)
        self._recovered.append(problem)


def _words(path: Path) -> list[str]:
    words = read_json_dict(path).get("words")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise CorruptProfileError(f"profile file {path} has no list of words under 'words'")
    return words
