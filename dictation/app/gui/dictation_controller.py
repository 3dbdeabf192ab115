"""The dictation flow, apart from any window: take, live decoding, transcription, delivery.

Any trigger may call `start()` / `stop()` (Space in the window, the on-screen button, and
later a tray icon or a system-wide key); any view may listen to the signals. Delivering a
dictation means: the `dictated` signal (views put the text where they show it), the
profile's history, and the clipboard when the profile's settings ask for it.

Nothing the user says is lost: a take of any length is decoded while it is recorded
(`LiveTake`: pieces that ended at a pause are decoded meanwhile, only the tail at
release); its audio is kept (`PendingKeeper`) from release until its text is
delivered, so a failed transcription can be retried and a crash leaves it to be offered
at the next start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication

from dictation.app.commands import apply_commands
from dictation.app.gui.corrections import apply_correction
from dictation.app.gui.live_take import LiveTake
from dictation.app.gui.pending_keeper import Kept, KeptDictations, PendingKeeper
from dictation.app.gui.profile_session import ProfileSession
from dictation.app.gui.recorder import Recorder
from dictation.app.gui.take_watcher import TakeWatcher
from dictation.app.gui.transcription_service import TranscriptionService
from dictation.app.profiles import ProfileError

log = logging.getLogger(__name__)

# The capture keeps at most 600 s of a take (MicrophoneStream's max_take_seconds) and
# drops what comes later: the take is ended just before, and its text delivered.
MAX_TAKE_SECONDS = 598.0
CAP_NOTE = (
    "This dictation reached the {limit} limit of one take and was ended there; "
    "everything up to that point was kept. Press again to go on."
)


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
      corrected(str old_text, str new_text): the last dictation's text was corrected;
        views replace it where they show it.
      pending_changed(int): how many dictations wait with their audio kept, untranscribed
        (a failed transcription, or left by a crash); `retry_pending` transcribes them.
      file_transcribed(Path, str), file_failed(Path, str message): `transcribe_file` results.
    """

    listening_changed = Signal(bool)
    partial = Signal(str)
    dictated = Signal(str, str)
    history_added = Signal(str)
    status = Signal(str, str)
    correction_saved = Signal()
    corrected = Signal(str, str)
    pending_changed = Signal(int)
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
        self.kept = KeptDictations(PendingKeeper(session), self)
        self.kept.changed.connect(self.pending_changed)
        self.watcher = TakeWatcher(transcription, self)
        self.watcher.partial.connect(self._partial)
        self.watcher.cap_reached.connect(self._cap_reached)
        self.max_take_seconds = MAX_TAKE_SECONDS
        self.last_audio: np.ndarray | None = None
        self.last_hypothesis = ""
        self.last_confidence: float | None = None  # the model's, for learning from use
        self.last_text = ""  # what the last dictation put in the text (after commands)
        self._listening = False
        self._stopping = False
        self._capped = False
        self._unavailable = ""  # why there is no microphone, for a refused start
        recorder.recording_changed.connect(self._recording_changed)
        recorder.error.connect(self._recording_error)
        session.opened.connect(self._profile_opened)

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
        live = LiveTake(self.recorder.source, self.session.settings.get("beam"), self)
        self._capped = False
        self._set_listening(True)
        if live.readable():
            self.transcription.current_transcriber(live.start_decoding, self._model_unavailable)
        preview = bool(self.session.settings.get("live_preview", True))
        self.watcher.watch(live, preview, int(self.max_take_seconds * self.recorder.sample_rate))
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
        live = self.watcher.stop()
        self._set_listening(False)
        if audio is None or audio.size == 0:
            if live is not None:
                live.cancel()
            return
        note = CAP_NOTE.format(limit=_duration(self.max_take_seconds)) if self._capped else ""
        self._transcribe_take(audio, self.recorder.sample_rate, live, note)

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
        if recording or self._stopping:
            return
        live = self.watcher.stop()  # cancelled or failed elsewhere: no take will come
        if live is not None:
            live.cancel()
        self._set_listening(False)

    def _recording_error(self, message: str) -> None:
        if self._listening:
            self.status.emit(message, "bad")

    def _model_unavailable(self, message: str) -> None:
        log.warning("no model for live decoding (the take is decoded at release): %s", message)

    # -- while the take runs -------------------------------------------------------------

    def _partial(self, text: str) -> None:
        if self._listening:
            self.partial.emit(text)

    def _cap_reached(self) -> None:
        """The take is as long as the capture keeps: end it and deliver what was said."""
        self._capped = True
        self.stop()

    # -- transcripts ---------------------------------------------------------------------

    def dictate(self, audio: np.ndarray, sample_rate: int) -> None:
        """Keep and transcribe a take recorded elsewhere, then deliver it."""
        self._transcribe_take(audio, sample_rate, None, "")

    def _transcribe_take(self, audio: np.ndarray, sample_rate: int, live: LiveTake | None, note: str) -> None:
        kept, error = self.kept.keep(audio, sample_rate)  # before anything can fail
        if error:
            note = f"{note} (Its recording could not be saved to disk: {error}.)".strip()
        self.status.emit("Transcribing\u2026", "idle")

        # `_dictated` is looked up when the result comes, so a test may wrap it.
        def done(transcript: Any) -> None:
            if live is not None:
                live.done()
            self._dictated(audio, transcript, kept, note)

        def failed(message: str) -> None:
            if live is not None:
                live.done()
            self._failed(kept, message)

        job = live.finish_job(audio) if live is not None else None
        if job is None:  # nothing decoded while recording: the whole take now
            self.transcription.transcribe(audio, sample_rate, done, failed, beam=self.session.settings.get("beam"))
        else:
            self.transcription.submit(job, done, failed)

    def _dictated(self, audio: np.ndarray, transcript: Any, kept: Kept | None = None, note: str = "") -> None:
        settings = self.session.settings
        hypothesis = str(transcript.text).strip()
        text = apply_commands(hypothesis) if settings.get("commands") else hypothesis
        if not text.strip():
            self.kept.delivered(kept)  # nothing to deliver
            self._say("idle", "Nothing was recognised. Hold the key while you speak.", note)
            return
        self.last_audio, self.last_hypothesis, self.last_text = audio, hypothesis, text
        self.last_confidence = getattr(transcript, "confidence", None)
        self.dictated.emit(text, hypothesis)
        history_error = self._save_history(text)
        self.history_added.emit(text)
        copied = bool(settings.get("auto_copy"))
        if copied:
            QGuiApplication.clipboard().setText(text)
        if history_error and not copied:
            # Only in the text area now: the audio stays, to be offered at the next start.
            self.kept.left_on_disk(kept)
            self._say("bad", f"Could not save to history: {history_error}. Its recording is kept.", note)
            return
        self.kept.delivered(kept)
        if history_error:
            self._say("bad", f"Could not save to history: {history_error}. The text was copied to the clipboard.", note)
        else:
            self._say("good" if copied else "idle", "Copied to the clipboard." if copied else "", note)

    def _say(self, state: str, *parts: str) -> None:
        self.status.emit(" ".join(part for part in parts if part), state)

    def _failed(self, kept: Kept, message: str) -> None:
        self.kept.failed(kept)
        self.status.emit(
            f"Transcription failed: {message}. The recording is kept: \u201cTranscribe again\u201d tries once more.",
            "bad",
        )

    def _save_history(self, text: str) -> str:
        """Append `text` to the open profile's history; the error in words, "" if saved."""
        profile = self.session.profile
        if profile is None:
            return ""
        try:
            profile.append_history(text)
        except (ProfileError, OSError) as exc:
            return str(exc)
        return ""

    def add_to_history(self, text: str) -> None:
        """Keep `text` in the open profile's history (and tell the views)."""
        error = self._save_history(text)
        if error:
            self.status.emit(f"Could not save to history: {error}", "bad")
        self.history_added.emit(text)

    # -- kept dictations -----------------------------------------------------------------

    def _profile_opened(self, profile: Any) -> None:
        """Another profile opened: offer the dictations it (or no profile) still keeps
        (`pending_changed`)."""
        self.forget_last()
        self.kept.reload()

    def retry_pending(self) -> None:
        """Transcribe the kept dictations again; each is discarded once delivered."""
        ready, errors = self.kept.take_for_retry()
        for error in errors:
            self.status.emit(f"A kept recording cannot be read ({error}).", "bad")
        for kept, audio in ready:
            self._transcribe_kept(kept, audio)

    def _transcribe_kept(self, kept: Kept, audio: np.ndarray) -> None:
        self.status.emit("Transcribing\u2026", "idle")
        self.transcription.transcribe(
            audio,
            16000,
            lambda transcript: self._dictated(audio, transcript, kept),
            lambda message: self._failed(kept, message),
            beam=self.session.settings.get("beam"),
        )

    def discard_pending(self) -> None:
        """Delete the kept recordings waiting to be transcribed (the user asked to)."""
        self.kept.discard_waiting()

    # -- corrections ---------------------------------------------------------------------

    def save_correction(self, corrected: str) -> None:
        """Save the last dictation's audio with the corrected text, for the next adaptation,
        and put the corrected text where the wrong one went (text area, history, clipboard)."""
        profile = self.session.profile
        if profile is None or self.last_audio is None:
            return
        old = self.last_text
        try:
            new, problem = apply_correction(
                profile, self.session.settings, self.last_audio, self.last_hypothesis, old, corrected
            )
        except (ProfileError, OSError) as exc:
            self.status.emit(f"The correction could not be saved: {exc}", "bad")
            return
        if old and new != old:
            self.last_text = new
            self.corrected.emit(old, new)
        self.correction_saved.emit()
        self._say("good", "Correction saved. It will be used the next time you adapt.", problem)

    def forget_last(self) -> None:
        """Another profile opened: the last dictation is not its to correct."""
        self.last_audio, self.last_hypothesis, self.last_text = None, "", ""

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


def _duration(seconds: float) -> str:
    """E.g. "10-minute" or "6-second" (rounded)."""
    if seconds >= 90:
        return f"{round(seconds / 60)}-minute"
    return f"{round(seconds)}-second"
