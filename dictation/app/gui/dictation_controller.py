"""The dictation flow, apart from any window: take, live preview, transcription, delivery.

Any trigger may call `start()` / `stop()` (Space in the window, the on-screen button, and
later a tray icon or a system-wide key); any view may listen to the signals. Delivering a
dictation means: the `dictated` signal (views put the text where they show it), the
profile's history, and the clipboard when the profile's settings ask for it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QGuiApplication

from dictation.app.commands import apply_commands
from dictation.app.gui.profile_session import ProfileSession
from dictation.app.gui.recorder import Recorder
from dictation.app.gui.transcription_service import TranscriptionService
from dictation.app.profiles import ProfileError

log = logging.getLogger(__name__)

# Live preview while the key is held: one partial transcription in flight at a time, of
# at most the last PARTIAL_MAX_SECONDS, so the final transcription waits for at most
# one short partial.
PARTIAL_INTERVAL_MS = 900
PARTIAL_MIN_SECONDS = 0.8
PARTIAL_MAX_SECONDS = 8.0


class DictationController(QObject):
    """Owns dictation takes: recording, previews, the final transcript and where it goes.

    Signals:
      listening_changed(bool): a dictation take started or ended.
      partial(str): what was heard so far, while the take goes on.
      dictated(str text, str hypothesis): a finished dictation (`text` after spoken
        commands, `hypothesis` as recognised, which a correction replaces).
      history_added(str): text kept in the profile's history.
      status(str text, str state): a message for the user; state "idle", "good" or "bad".
      correction_saved(): the correction of the last dictation was saved.
      file_transcribed(Path, str), file_failed(Path, str message): `transcribe_file` results.
    """

    listening_changed = Signal(bool)
    partial = Signal(str)
    dictated = Signal(str, str)
    history_added = Signal(str)
    status = Signal(str, str)
    correction_saved = Signal()
    file_transcribed = Signal(object, str)
    file_failed = Signal(object, str)

    def __init__(
        self,
        recorder: Recorder,
        transcription: TranscriptionService,
        session: ProfileSession,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.recorder = recorder
        self.transcription = transcription
        self.session = session
        self.last_audio: np.ndarray | None = None
        self.last_hypothesis = ""
        self._listening = False
        self._stopping = False
        self._unavailable = ""  # why there is no microphone, for a refused start
        self._partial_busy = False
        self._partial_timer = QTimer(self)
        self._partial_timer.setInterval(PARTIAL_INTERVAL_MS)
        self._partial_timer.timeout.connect(self._partial_tick)
        recorder.recording_changed.connect(self._recording_changed)
        recorder.error.connect(self._recording_error)

    # -- triggers ------------------------------------------------------------------------

    def is_listening(self) -> bool:
        """True while a dictation take is being recorded."""
        return self._listening

    def start(self) -> bool:
        """Start a dictation take. False (and a status message) if there is no microphone;
        False without a message while another take (an enrollment take) is recording."""
        if self._listening:
            return True
        if self.recorder.is_recording():
            return False
        if not self.recorder.begin():
            self.status.emit(self._unavailable or "No microphone.", "bad")
            return False
        self._set_listening(True)
        if self.session.settings.get("live_preview", True):
            self._partial_timer.start()
        return True

    def stop(self) -> None:
        """End the take and transcribe it (the result comes as `dictated`)."""
        if not self._listening:
            return
        self._stopping = True
        try:
            audio = self.recorder.end()  # a lost device still hands over what it captured
        finally:
            self._stopping = False
        self._set_listening(False)
        if audio is not None:
            self.dictate(audio, self.recorder.sample_rate)

    def toggle(self) -> None:
        """Start, or stop a running take (for triggers without a key release)."""
        if self._listening:
            self.stop()
        else:
            self.start()

    def cancel(self) -> None:
        """Drop the running take without transcribing it."""
        if self._listening:
            self.recorder.cancel()  # recording_changed(False) ends listening

    def set_microphone_state(self, available: bool, message: str) -> None:
        """Remember why there is no microphone, to say so when a start is refused."""
        self._unavailable = "" if available else message

    def _set_listening(self, listening: bool) -> None:
        if listening != self._listening:
            self._listening = listening
            self.listening_changed.emit(listening)

    def _recording_changed(self, recording: bool) -> None:
        if recording:
            return
        self._partial_timer.stop()
        if not self._stopping:  # cancelled or failed elsewhere: no take will come
            self._set_listening(False)

    def _recording_error(self, message: str) -> None:
        if self._listening:
            self.status.emit(message, "bad")

    # -- live preview --------------------------------------------------------------------

    def _partial_tick(self) -> None:
        """Transcribe the take so far (its last few seconds) and show it as a preview."""
        if self._partial_busy or not self._listening:
            return
        audio = self.recorder.snapshot()
        rate = self.recorder.sample_rate
        if audio is None or audio.size < PARTIAL_MIN_SECONDS * rate:
            return
        audio = audio[-int(PARTIAL_MAX_SECONDS * rate) :]
        self._partial_busy = True

        def done(transcript: Any) -> None:
            self._partial_busy = False
            if self._listening:  # the final text may already be on its way
                self.partial.emit(str(transcript.text))

        def failed(message: str) -> None:
            self._partial_busy = False
            log.debug("partial transcription failed: %s", message)

        self.transcription.transcribe(audio, rate, done, failed, beam=1)  # greedy: half the CPU

    # -- transcripts ---------------------------------------------------------------------

    def dictate(self, audio: np.ndarray, sample_rate: int) -> None:
        """Transcribe a take off the GUI thread, then deliver it."""
        self.status.emit("Transcribing\u2026", "idle")
        self.transcription.transcribe(
            audio,
            sample_rate,
            # Looked up when the result comes, so a test may wrap `_dictated`.
            lambda transcript: self._dictated(audio, transcript),
            lambda message: self.status.emit(f"Transcription failed: {message}", "bad"),
            beam=self.session.settings.get("beam"),
        )

    def _dictated(self, audio: np.ndarray, transcript: Any) -> None:
        settings = self.session.settings
        hypothesis = str(transcript.text).strip()
        text = apply_commands(hypothesis) if settings.get("commands") else hypothesis
        if not text.strip():
            self.status.emit("Nothing was recognised. Hold the key while you speak.", "idle")
            return
        self.last_audio, self.last_hypothesis = audio, hypothesis
        self.dictated.emit(text, hypothesis)
        self.add_to_history(text)
        if settings.get("auto_copy"):
            QGuiApplication.clipboard().setText(text)
            self.status.emit("Copied to the clipboard.", "good")
        else:
            self.status.emit("", "idle")

    def add_to_history(self, text: str) -> None:
        """Keep `text` in the open profile's history (and tell the views)."""
        profile = self.session.profile
        if profile is not None:
            try:
                profile.append_history(text)
            except (ProfileError, OSError) as exc:
                self.status.emit(f"Could not save to history: {exc}", "bad")
        self.history_added.emit(text)

    def save_correction(self, corrected: str) -> None:
        """Save the last dictation's audio with the corrected text, for the next adaptation."""
        profile = self.session.profile
        if profile is None or self.last_audio is None:
            return
        try:
            profile.add_correction(self.last_audio, self.last_hypothesis, corrected)
        except (ProfileError, OSError) as exc:
            self.status.emit(f"The correction could not be saved: {exc}", "bad")
            return
        self.correction_saved.emit()
        self.status.emit("Correction saved. It will be used the next time you adapt.", "good")

    def forget_last(self) -> None:
        """Another profile opened: the last dictation is not its to correct."""
        self.last_audio, self.last_hypothesis = None, ""

    # -- files ---------------------------------------------------------------------------

    def transcribe_file(self, path: Path) -> None:
        """Transcribe an audio file (no microphone needed); reading happens off the GUI
        thread too, since a long file takes a while to decode and resample."""
        self.transcription.transcribe_file(
            path,
            lambda transcript: self.file_transcribed.emit(path, str(transcript.text).strip()),
            lambda message: self.file_failed.emit(path, message),
            beam=self.session.settings.get("beam"),
        )
