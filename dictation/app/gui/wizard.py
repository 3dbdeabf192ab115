"""Enrollment wizard: read one prompt at a time; each take is checked, then saved at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QStackedWidget, QVBoxLayout, QWidget

from dictation.app.enrollment import Prompt, TakeCheck
from dictation.app.gui import playback
from dictation.app.gui.recorder import Recorder
from dictation.app.gui.style import set_state
from dictation.app.gui.wizard_pages import DonePage, PromptPage

log = logging.getLogger(__name__)

SESSION_SIZE = 10

# check(audio, sample_rate, prompt_text, on_done(TakeCheck), on_error(str)) -> None
Checker = Callable[[np.ndarray, int, str, Callable[[TakeCheck], None], Callable[[str], None]], None]


class EnrollmentWizard(QWidget):
    """One prompt at a time. Signals: adapt_requested(), takes_changed(int total),
    take_saved(Take, np.ndarray audio) (for the voice check, `gui.voice_checks`)."""

    adapt_requested = Signal()
    takes_changed = Signal(int)
    take_saved = Signal(object, object)

    def __init__(self, recorder: Recorder, checker: Checker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.recorder = recorder
        self.checker = checker
        self.profile: Any = None
        self.prompts: list[Prompt] = []
        self.session: list[Prompt] = []
        self.index = 0
        self.last_audio: np.ndarray | None = None
        self.last_check: TakeCheck | None = None
        self.accepted: dict[str, str] = {}  # prompt id -> take id, this session
        self._checking = False
        self._build()
        recorder.level_changed.connect(self.meter.set_level)
        recorder.recording_changed.connect(self._recording_changed)

    # -- layout --------------------------------------------------------------------------

    def _build(self) -> None:
        self.prompt_page = PromptPage()
        self.done_page = DonePage()
        # The pages' widgets under the wizard's own names (the logic below and tests use them).
        page = self.prompt_page
        self.progress_label, self.progress, self.prompt_label = page.progress_label, page.progress, page.prompt_label
        self.rec_indicator, self.meter, self.status = page.rec_indicator, page.meter, page.status
        self.record_button, self.play_button, self.skip_button = page.record_button, page.play_button, page.skip_button
        self.keep_button, self.next_button = page.keep_button, page.next_button
        self.done_text, self.more_button = self.done_page.done_text, self.done_page.more_button
        self.adapt_button = self.done_page.adapt_button
        self.voice_notice = page.voice_notice

        self.pages = QStackedWidget()
        self.pages.addWidget(self.prompt_page)
        self.pages.addWidget(self.done_page)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.pages)

        self.record_button.pressed.connect(self.press)
        self.record_button.released.connect(self.release)
        self.play_button.clicked.connect(self.play)
        self.skip_button.clicked.connect(self.next_prompt)
        self.keep_button.clicked.connect(self.keep_anyway)
        self.next_button.clicked.connect(self.next_prompt)
        self.more_button.clicked.connect(self.start_session)
        self.adapt_button.clicked.connect(self.adapt_requested)
        self.voice_notice.rerecord_button.clicked.connect(self.rerecord)
        # Enter goes on to the next sentence once the take is accepted (as "Next" does).
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self._enter)

    # -- session -------------------------------------------------------------------------

    def set_profile(self, profile: Any, prompts: list[Prompt]) -> None:
        self.profile = profile
        self.prompts = list(prompts)
        self.start_session()

    def recorded_prompt_ids(self) -> set[str]:
        if self.profile is None:
            return set()
        return {take.prompt_id for take in self.profile.takes()}

    def start_session(self) -> None:
        """Queue the next SESSION_SIZE prompts not yet recorded (all done: start over)."""
        done = self.recorded_prompt_ids()
        todo = [p for p in self.prompts if p.id not in done] or list(self.prompts)
        self.session = todo[:SESSION_SIZE]
        self.index = 0
        self.accepted = {}
        self._show_prompt()

    def current_prompt(self) -> Prompt | None:
        if 0 <= self.index < len(self.session):
            return self.session[self.index]
        return None

    def _show_prompt(self) -> None:
        prompt = self.current_prompt()
        if prompt is None:
            self._show_done()
            return
        self.pages.setCurrentIndex(0)
        total = len(self.session)
        self.progress_label.setText(f"Sentence {self.index + 1} of {total}")
        self.progress.setRange(0, total)
        self.progress.setValue(self.index)
        self.prompt_label.setText(prompt.text)
        self.last_audio = None
        self.last_check = None
        self.voice_notice.hide()
        if self.recorder.available():
            set_state(self.status, "", "idle")
        else:
            set_state(self.status, "No microphone: connect one and choose it in Settings.", "bad")
        self._update_buttons()

    def microphone_changed(self) -> None:
        """The microphone appeared or went away: update the hint and buttons only."""
        if self.current_prompt() is None:
            return
        if not self.recorder.available():
            set_state(self.status, "No microphone: connect one and choose it in Settings.", "bad")
        elif self.status.text().startswith("No microphone"):
            set_state(self.status, "", "idle")
        self._update_buttons()

    def _show_done(self) -> None:
        total = len(self.profile.takes()) if self.profile is not None else 0
        self.done_text.setText(
            f"{len(self.accepted)} sentences recorded in this session; {total} in your profile "
            "in all. You can adapt the model to your voice now, or record more sentences first: "
            "on the project's test voices 10 sentences cut word errors by about a fifth, 30 by "
            "about a third. From 20 sentences on, adaptation takes twice the steps (a few minutes "
            "on a CPU)."
        )
        self.adapt_button.setEnabled(total > 0)
        self.pages.setCurrentIndex(1)

    def next_prompt(self) -> None:
        if self.recorder.is_recording() or self._checking:
            return
        playback.stop()
        self.index += 1
        self._show_prompt()

    def _enter(self) -> None:
        if self.pages.currentIndex() == 0 and self.next_button.isEnabled():
            self.next_prompt()

    def _update_buttons(self) -> None:
        recording = self.recorder.is_recording()
        busy = recording or self._checking
        self.record_button.setEnabled(self.recorder.available() and not self._checking)
        self.record_button.setText(
            "Recording\u2026 release to stop"
            if recording
            else "Re-record"
            if self.last_audio is not None
            else "Hold to record"
        )
        self.record_button.setProperty("recording", recording)
        self.record_button.style().unpolish(self.record_button)
        self.record_button.style().polish(self.record_button)
        self.play_button.setEnabled(self.last_audio is not None and not busy)
        accepted = self.last_check is not None and self.last_check.ok
        self.next_button.setEnabled(accepted and not busy)
        self.skip_button.setEnabled(not busy)
        misread = self.last_check is not None and self.last_check.problem == "misread"
        self.keep_button.setVisible(misread and not busy)

    # -- push-to-talk (Space is routed here by the main window) --------------------------

    def wants_push_to_talk(self) -> bool:
        return self.pages.currentIndex() == 0 and self.current_prompt() is not None

    def press(self) -> None:
        if self._checking or not self.wants_push_to_talk():
            return
        playback.stop()
        if self.recorder.begin():
            self.voice_notice.hide()
            set_state(self.status, "", "idle")

    def release(self) -> None:
        if self.recorder.is_recording():
            self.recorder.end()

    def _recording_changed(self, recording: bool) -> None:
        if recording:
            set_state(self.rec_indicator, "\u25cf Recording", "recording")
        else:
            set_state(self.rec_indicator, "Ready", "idle")
        self._update_buttons()

    def handle_take(self, audio: np.ndarray) -> None:
        """Check a finished take (the main window routes takes here while enrolling)."""
        prompt = self.current_prompt()
        if prompt is None:
            return
        self.last_audio = audio
        self.last_check = None
        self._checking = True
        set_state(self.status, "Checking the recording\u2026", "idle")
        self._update_buttons()
        sample_rate = self.recorder.sample_rate
        self.checker(
            audio, sample_rate, prompt.text, lambda result: self._checked(prompt, audio, result), self._check_failed
        )

    def _checked(self, prompt: Prompt, audio: np.ndarray, result: TakeCheck) -> None:
        self._checking = False
        if prompt is not self.current_prompt():
            self._update_buttons()
            return  # the user moved on while it was checked
        self.last_check = result
        if result.ok:
            try:
                self._save(prompt, audio, result)
            except Exception as exc:
                self.last_check = None
                set_state(self.status, f"The take could not be saved: {exc}", "bad")
                self._update_buttons()
                return
            set_state(self.status, "\u2713 Good take, saved. Press Next for the next sentence.", "good")
        else:
            set_state(self.status, f"{result.reason} Please record it again, or skip it.", "bad")
        self._update_buttons()

    def keep_anyway(self) -> None:
        """Save a take the misread check rejected, on the user's word."""
        prompt, check = self.current_prompt(), self.last_check
        if prompt is None or check is None or check.problem != "misread" or self.last_audio is None:
            return
        quality = {**check.quality, "kept_by_user": True}
        accepted = TakeCheck(None, "Kept at your request.", quality)
        try:
            self._save(prompt, self.last_audio, accepted)
        except Exception as exc:
            set_state(self.status, f"The take could not be saved: {exc}", "bad")
            return
        self.last_check = accepted
        set_state(self.status, "\u2713 Kept, saved. Press Next for the next sentence.", "good")
        self._update_buttons()

    def _check_failed(self, message: str) -> None:
        self._checking = False
        self.last_check = None
        set_state(self.status, f"The recording could not be checked: {message}", "bad")
        self._update_buttons()

    def _save(self, prompt: Prompt, audio: np.ndarray, result: TakeCheck) -> None:
        take = self.profile.add_take(prompt.id, prompt.text, audio, result.quality)
        old = self.accepted.get(prompt.id)
        self.accepted[prompt.id] = take.id
        if old is not None:  # a re-recorded prompt replaces its earlier take
            self.profile.remove_take(old)
        self.takes_changed.emit(len(self.profile.takes()))
        self.take_saved.emit(take, audio)

    # -- the voice check (`gui.voice_checks` decides; the wizard shows) -------------------

    def show_voice_notice(self, take_id: str) -> None:
        """The saved take `take_id` sounds like another speaker: say so while it is still
        the current sentence's take (the user may have moved on meanwhile)."""
        prompt = self.current_prompt()
        if prompt is not None and self.accepted.get(prompt.id) == take_id and not self.recorder.is_recording():
            self.voice_notice.show()

    def rerecord(self) -> None:
        """Drop the flagged take of this sentence and wait for a new recording."""
        prompt = self.current_prompt()
        self.voice_notice.hide()
        if prompt is None or self.recorder.is_recording() or self._checking:
            return
        take_id = self.accepted.pop(prompt.id, None)
        if take_id is not None:
            try:
                self.profile.remove_take(take_id)
            except Exception as exc:
                set_state(self.status, f"The take could not be removed: {exc}", "bad")
                return
            self.takes_changed.emit(len(self.profile.takes()))
        playback.stop()
        self.last_audio, self.last_check = None, None
        set_state(self.status, "Record the sentence again (hold Space or the button).", "idle")
        self._update_buttons()

    def play(self) -> None:
        if self.last_audio is None:
            return
        problem = playback.play(self.last_audio, self.recorder.sample_rate)
        if problem:
            set_state(self.status, problem, "bad")
