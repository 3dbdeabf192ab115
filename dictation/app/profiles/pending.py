"""Pending dictations: a dictation's audio is kept until its text is delivered.

The rule this store serves: nothing the user says is lost. The audio of a dictation
is saved *before* it is transcribed, and discarded only once its text has reached the
user (typed, pasted, copied or shown and kept). A crash, a failed transcription or a
closed window in between leaves the audio here, and the next start can offer it again.

API (all of it)::

    store = PendingDictations.for_profile(profile)  # <profile>/pending/
    store = PendingDictations.without_profile()     # <data root>/pending/, no profile open
    pending_id = store.save_pending(audio)          # 16 kHz mono float32; WAV written atomically, 0600
    store.pending()                                 # [PendingDictation(id, wav_path, created)], oldest first
    store.discard_pending(pending_id)               # after delivery; an id already gone is fine

``Profile.save_pending``, ``Profile.pending`` and ``Profile.discard_pending`` do the same
for an open profile. Read the audio back with ``dictation.app.audio.load_audio(item.wav_path)``.
Pending audio is never exported with a profile (it stays on this machine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dictation.app import storage
from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.profiles.errors import ProfileError
from dictation.app.profiles.files import PENDING, ProfileLocation, new_id
from dictation.app.profiles.takes import checked_audio, wav_bytes

_ID = re.compile(r"^\d{8}T\d{6}\.\d{6}-[0-9a-f]{6}$")


@dataclass(frozen=True)
class PendingDictation:
    """The kept audio of one dictation whose text was not delivered yet."""

    id: str
    wav_path: Path
    created: str  # ISO time (UTC) the audio was saved


class PendingDictations:
    """The pending-dictation folder of a profile, or the shared one when no profile is open."""

    def __init__(self, folder: Path, location: ProfileLocation | None = None) -> None:
        self.folder = folder
        self._location = location  # set: the folder lies in a profile (writes guarded)

    @classmethod
    def for_profile(cls, profile: object) -> PendingDictations:
        """The store of an open `Profile` (its ``pending_store``)."""
        store = getattr(profile, "pending_store", None)
        if not isinstance(store, PendingDictations):
            raise ProfileError(f"{profile!r} is not an open profile")
        return store

    @classmethod
    def without_profile(cls) -> PendingDictations:
        """The store used while no profile is open: ``<data root>/pending/``."""
        return cls(storage.data_root(create=False) / PENDING)

    def save_pending(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> str:
        """Keep a dictation's audio (WAV, written atomically, 0600); return its id.

        ProfileError for empty or non-finite audio (nothing is written then);
        StorageError/DiskFullError when it cannot be written; ProfileDeletedError
        when the profile was deleted meanwhile (keep it in `without_profile()` then).
        """
        data = wav_bytes(checked_audio(audio), sample_rate)
        pending_id = new_id()
        path = self.folder / f"{pending_id}.wav"
        if self._location is None:
            storage.ensure_private_dir(self.folder.parent)  # the data root: private too
            storage.ensure_private_dir(self.folder)
            storage.atomic_write_bytes(path, data)
        else:
            self._location.ensure_subdir(self.folder.name)
            with self._location.writing():
                storage.atomic_write_bytes(path, data, make_parents=False)
        return pending_id

    def pending(self) -> list[PendingDictation]:
        """The kept dictations not yet delivered, oldest first ([] when there are none)."""
        if not self.folder.is_dir():
            return []
        storage.remove_stale_temp_files(self.folder)
        found = []
        for path in sorted(self.folder.glob("*.wav")):
            if _ID.match(path.stem) and path.is_file():
                found.append(PendingDictation(path.stem, path, _created(path.stem)))
        return found

    def discard_pending(self, pending_id: str) -> None:
        """Delete a dictation's kept audio once its text was delivered."""
        if not isinstance(pending_id, str) or not _ID.match(pending_id):
            raise ProfileError(f"not a pending dictation id: {pending_id!r}")
        path = self.folder / f"{pending_id}.wav"
        if self._location is not None and not self._location.exists():
            return  # the profile was deleted, and its pending audio with it
        path.unlink(missing_ok=True)


def _created(pending_id: str) -> str:
    stamp = datetime.strptime(pending_id.split("-", 1)[0], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    return stamp.isoformat(timespec="seconds")
