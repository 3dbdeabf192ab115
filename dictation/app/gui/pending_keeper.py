"""Keeping a dictation's audio until its text is delivered (the GUI side of
`dictation.app.profiles.PendingDictations`).

The audio is saved before it is transcribed and discarded once its text reached the
user; a failed transcription or a crash leaves it there, to be transcribed again.
The open profile's store is used, the shared one (`without_profile`) when no profile is
open or the profile was deleted meanwhile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from dictation.app.profiles import PendingDictations, ProfileDeletedError, ProfileError

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Kept:
    """The kept audio of one dictation: in a store, or (when it could not be written)
    only in memory (`store` None, `audio` set)."""

    store: PendingDictations | None
    id: str
    wav_path: Path | None
    audio: np.ndarray | None = None


class PendingKeeper:
    """Saves, lists, reads back and discards kept dictation audio for `session`'s profile."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._unwritten = 0

    def _stores(self) -> list[PendingDictations]:
        stores = []
        if self.session.profile is not None:
            try:
                stores.append(PendingDictations.for_profile(self.session.profile))
            except ProfileError:
                log.debug("the profile has no pending store", exc_info=True)
        stores.append(PendingDictations.without_profile())
        return stores

    def keep(self, audio: np.ndarray, sample_rate: int = 16000) -> tuple[Kept, str]:
        """Save `audio`; (what was kept, "") or, when it cannot be written, (the audio
        held in memory only, why it could not be written)."""
        error = "no store"
        for store in self._stores():
            try:
                pending_id = store.save_pending(audio, sample_rate)
            except ProfileDeletedError:
                continue  # the next store (without a profile) takes it
            except (ProfileError, OSError) as exc:
                error = str(exc)
                break
            return Kept(store, pending_id, store.folder / f"{pending_id}.wav"), ""
        log.warning("a dictation's audio could not be written to disk: %s", error)
        self._unwritten += 1
        return Kept(None, f"memory-{self._unwritten}", None, np.asarray(audio, np.float32)), error

    def discard(self, kept: Kept | None) -> None:
        """The text was delivered: the audio is not needed any more."""
        if kept is None or kept.store is None:
            return
        try:
            kept.store.discard_pending(kept.id)
        except (ProfileError, OSError):
            log.warning("could not delete the kept audio %s", kept.wav_path, exc_info=True)

    def leftovers(self, exclude: set[str] | None = None) -> list[Kept]:
        """Kept dictations not delivered (a crash, a failed transcription), oldest first."""
        found: list[Kept] = []
        seen: set[Path] = set()
        for store in self._stores():
            try:
                items = store.pending()
            except OSError:
                log.warning("cannot list the kept dictations in %s", store.folder, exc_info=True)
                continue
            for item in items:
                if item.id in (exclude or set()) or item.wav_path in seen:
                    continue
                seen.add(item.wav_path)
                found.append(Kept(store, item.id, item.wav_path))
        return sorted(found, key=lambda kept: kept.id)

    @staticmethod
    def load(kept: Kept) -> np.ndarray:
        """The kept audio (16 kHz mono float32); AudioFileError when it cannot be read."""
        from dictation.app.audio import load_audio

        if kept.audio is not None or kept.wav_path is None:
            return np.asarray(kept.audio, np.float32)
        return load_audio(kept.wav_path)


class KeptDictations(QObject):
    """The dictations of this session whose audio is kept: in flight (being transcribed)
    or waiting (their transcription failed, or a crash left them) to be tried again.

    Signals: changed(int): how many wait.
    """

    changed = Signal(int)

    def __init__(self, keeper: PendingKeeper, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.keeper = keeper
        self.waiting: list[Kept] = []
        self._in_flight: set[str] = set()

    def keep(self, audio: np.ndarray, sample_rate: int) -> tuple[Kept, str]:
        """Keep a take's audio before it is transcribed (see `PendingKeeper.keep`)."""
        kept, error = self.keeper.keep(audio, sample_rate)
        self._in_flight.add(kept.id)
        return kept, error

    def delivered(self, kept: Kept | None) -> None:
        """Its text reached the user: the audio goes."""
        if kept is not None:
            self._in_flight.discard(kept.id)
            self.keeper.discard(kept)

    def left_on_disk(self, kept: Kept | None) -> None:
        """Its text was shown but not kept anywhere: the audio stays for the next start."""
        if kept is not None:
            self._in_flight.discard(kept.id)

    def failed(self, kept: Kept) -> None:
        """Its transcription failed: it waits to be tried again."""
        self._in_flight.discard(kept.id)
        self.waiting.append(kept)
        self.changed.emit(len(self.waiting))

    def reload(self) -> int:
        """Another profile opened: what it (or no profile) keeps waits now; the count."""
        in_memory = [kept for kept in self.waiting if kept.store is None]
        self.waiting = in_memory + self.keeper.leftovers(exclude=self._in_flight)
        self.changed.emit(len(self.waiting))
        return len(self.waiting)

    def take_for_retry(self) -> tuple[list[tuple[Kept, np.ndarray]], list[str]]:
        """The waiting dictations with their audio, now in flight; and why any that
        cannot be read stay waiting."""
        ready: list[tuple[Kept, np.ndarray]] = []
        errors: list[str] = []
        waiting, self.waiting = self.waiting, []
        for kept in waiting:
            try:
                audio = self.keeper.load(kept)
            except Exception as exc:  # unreadable: it stays, the user may discard it
                self.waiting.append(kept)
                errors.append(str(exc))
                continue
            self._in_flight.add(kept.id)
            ready.append((kept, audio))
        self.changed.emit(len(self.waiting))
        return ready, errors

    def discard_waiting(self) -> None:
        """Delete the waiting recordings (the user asked to)."""
        for kept in self.waiting:
            self.keeper.discard(kept)
        self.waiting = []
        self.changed.emit(0)
