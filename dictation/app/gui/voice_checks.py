"""The two uses of the voice embedding the user sees (issue 28), when the base model has
a voice graph (`dictation.app.voice`; without one both are skipped, silently):

- Enrollment: a saved take whose voice is far from the profile's other takes (at least
  MIN_OTHER_TAKES of them) gets the wizard's "different speaker, re-record?" notice.
- The first dictation after launch: when the open profile's voice does not match it and
  another profile's clearly does, a status-bar banner offers to switch to that profile.

The embeddings run on the transcription service's worker (about 50 ms for a 5 s take),
so the window never waits; the profile's voice (`voice.npz`) is brought up to date there
too, when a profile opens and after each enrollment take.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget

from dictation.app.gui.style import label
from dictation.app.profiles import list_profiles
from dictation.app.profiles.root import profiles_dir
from dictation.app.voice import VoiceEmbedder, read_prototype, similarity, update_profile_voice

log = logging.getLogger(__name__)

MIN_OTHER_TAKES = 3  # fewer takes give no prototype worth comparing with
# Another profile is suggested only when it matches this much better than the open one
# (cosine), besides passing the threshold itself while the open one does not.
SUGGEST_MARGIN = 0.1


class ProfileSuggestion(QWidget):
    """Status-bar banner: "This sounds like <name>. Switch profile?" [Switch] [Dismiss]."""

    switch_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = ""
        self.text = label("", "notice", wrap=False)
        self.switch_button = QPushButton("Switch")
        self.dismiss_button = QPushButton("Dismiss")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        layout.addWidget(self.switch_button)
        layout.addWidget(self.dismiss_button)
        self.switch_button.clicked.connect(lambda: self.switch_requested.emit(self.name))
        self.switch_button.clicked.connect(self.hide)
        self.dismiss_button.clicked.connect(self.hide)
        self.hide()

    def suggest(self, name: str) -> None:
        self.name = name
        self.text.setText(f"This sounds like {name}. Switch profile?")
        self.show()


class VoiceChecks(QObject):
    """Signals: other_voice(str take_id, float similarity): an enrollment take sounds like
    another speaker; suggested(str name): the first dictation sounds like that profile."""

    other_voice = Signal(str, float)
    suggested = Signal(str)

    def __init__(self, services: Any, transcription: Any, session: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.transcription = transcription
        self.session = session
        self._embedder: VoiceEmbedder | None = None  # made and used on the worker thread only
        self._first_dictation = True  # the suggestion is looked for once per launch
        self.wizard: Any = None  # the parts `install` wires in
        self.recorder: Any = None
        self.controller: Any = None
        self.suggestion: ProfileSuggestion | None = None

    @classmethod
    def install(cls, window: Any) -> VoiceChecks:
        """Wire the checks into the main window: its wizard, dictation and status bar."""
        checks = cls(window.services, window.transcription, window.session, window)
        checks.wizard = window.wizard
        checks.recorder = window.recorder
        checks.controller = window.dictation_controller
        window.wizard.take_saved.connect(checks.take_saved)
        window.dictation_controller.dictated.connect(lambda *_: checks.dictated())
        window.session.opened.connect(checks.profile_opened)
        checks.suggestion = ProfileSuggestion()
        window.statusBar().insertPermanentWidget(0, checks.suggestion)
        checks.suggestion.switch_requested.connect(window.open_profile)
        checks.suggested.connect(checks.suggestion.suggest)
        return checks

    # -- worker thread -------------------------------------------------------------------

    def _voice(self) -> VoiceEmbedder:
        """The base model's voice graph (loaded on first use; not available: no checks)."""
        if self._embedder is None:
            try:
                model_dir: Path | None = self.services.base_model_dir()
            except Exception as exc:  # no base model: dictation says so itself
                log.warning("no voice checks: %s", exc)
                model_dir = None
            self._embedder = VoiceEmbedder(model_dir)
            if not self._embedder.available:
                log.info("no voice checks: %s", self._embedder.problem)
        return self._embedder

    def _check_take(self, profile: Any, take_id: str, audio: np.ndarray, rate: int) -> tuple[str, float, bool] | None:
        voice = self._voice()
        embedding = voice.embed(audio, rate) if voice.available else None
        if embedding is None:
            return None
        record = update_profile_voice(profile, voice, {take_id: embedding})
        if record is None or record.count(without=take_id) < MIN_OTHER_TAKES:
            return None
        others = record.prototype(without=take_id)
        assert others is not None
        return take_id, similarity(embedding, others), voice.is_other_voice(embedding, others)

    def _match(self, profile: Any, audio: np.ndarray, rate: int) -> str | None:
        """The other profile this dictation's voice matches clearly better, or None."""
        voice = self._voice()
        embedding = voice.embed(audio, rate) if voice.available else None
        if embedding is None:
            return None
        record = update_profile_voice(profile, voice)
        own = record.prototype() if record is not None else None
        if own is None or not voice.is_other_voice(embedding, own):
            return None
        floor = max(voice.threshold, similarity(embedding, own) + SUGGEST_MARGIN)
        best: tuple[float, str] | None = None
        for name in list_profiles():
            if name == profile.name:
                continue
            theirs = read_prototype(profiles_dir() / name, voice.model_version)
            if theirs is None:
                continue
            score = similarity(embedding, theirs)
            if score >= floor and (best is None or score > best[0]):
                best = (score, name)
        return best[1] if best is not None else None

    # -- GUI thread ----------------------------------------------------------------------

    def profile_opened(self, profile: Any) -> None:
        """Bring the opened profile's voice up to date in the background."""
        if self.suggestion is not None:
            self.suggestion.hide()
        # Queued after the window's model preload (submitted once the opening returns), so
        # a first launch builds the base model there, with its "preparing" notice.
        QTimer.singleShot(0, lambda: self._update_voice(profile))

    def _update_voice(self, profile: Any) -> None:
        if self.session.profile is not profile:
            return  # another profile opened meanwhile
        self.transcription.submit(
            lambda: update_profile_voice(profile, self._voice()),
            lambda _: None,
            lambda message: log.warning("the voice of profile %s was not updated: %s", profile.name, message),
        )

    def take_saved(self, take: Any, audio: np.ndarray) -> None:
        profile, rate = self.session.profile, int(self.recorder.sample_rate)

        def done(result: tuple[str, float, bool] | None) -> None:
            if result is None or not result[2] or self.session.profile is not profile:
                return
            self.other_voice.emit(result[0], result[1])
            if self.wizard is not None:
                self.wizard.show_voice_notice(result[0])

        self.transcription.submit(
            lambda: self._check_take(profile, take.id, audio, rate),
            done,
            lambda message: log.warning("the voice check of a take failed: %s", message),
        )

    def dictated(self) -> None:
        """After the first dictation since launch, look for a profile that matches better."""
        if not self._first_dictation:
            return
        profile, audio = self.session.profile, self.controller.last_audio
        if profile is None or audio is None:
            return
        self._first_dictation = False
        rate = int(self.recorder.sample_rate)

        def done(name: str | None) -> None:
            if name and self.session.profile is profile:
                self.suggested.emit(name)

        self.transcription.submit(
            lambda: self._match(profile, audio, rate),
            done,
            lambda message: log.warning("the voice match of a dictation failed: %s", message),
        )
