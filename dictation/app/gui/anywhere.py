"""Dictating into any application from the GUI: the system-wide key and the tray's
start/stop drive the `DictationController`, and their text goes where the cursor is.

- Hold mode: the key's press starts a take, its release ends it.
- Toggle mode (and any take started from the tray): a press starts, the next press
  ends it, and so does `silence_s` of silence.
- A take started here is "external": its text is typed / pasted / put on the clipboard
  in the focused application (`dictation.app.delivery`, on a worker thread) unless this
  app's own window has the focus, where the Dictate page already shows it. What cannot
  be delivered stays on the clipboard, and the controller keeps it in the history.

`state_changed(state, external)` follows every dictation (idle / listening /
transcribing), for the tray and the overlay.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from dictation.app.delivery import DeliveryResult
from dictation.app.gui.dictation_controller import DictationController
from dictation.app.gui.global_key import GlobalKey
from dictation.app.gui.recorder import Recorder
from dictation.app.gui.text_delivery import TextDelivery
from dictation.app.gui.transcription_service import TranscriptionService
from dictation.app.listen import SilenceWatch

log = logging.getLogger(__name__)

IDLE, LISTENING, TRANSCRIBING = "idle", "listening", "transcribing"
SILENCE_CHECK_MS = 100


def level_to_dbfs(level: float) -> float:
    """The recorder's 0..1 meter level (a -60..0 dBFS scale) back in dBFS."""
    return float(level) * 60.0 - 60.0


class AnywhereDictation(QObject):
    """Signals: state_changed(str state, bool external), notice(str) for the user,
    delivered(DeliveryResult)."""

    state_changed = Signal(str, bool)
    notice = Signal(str)
    delivered = Signal(object)

    def __init__(
        self,
        controller: DictationController,
        recorder: Recorder,
        transcription: TranscriptionService,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings: dict = {}
        self.paused = False
        self.external = False  # the running (or last) take was started here
        self.state = IDLE
        self.key = GlobalKey(self)
        self.text_delivery = TextDelivery(self.key.key_up, parent=self)
        self._starting = False
        self._busy = False
        self._silence = SilenceWatch()
        self._silence_timer = QTimer(self)
        self._silence_timer.setInterval(SILENCE_CHECK_MS)
        self._silence_timer.timeout.connect(self._check_silence)

        self.key.pressed.connect(self.key_pressed)
        self.key.released.connect(self.key_released)
        recorder.level_changed.connect(lambda level: self._silence.level(level_to_dbfs(level)))
        transcription.busy_changed.connect(self._busy_changed)
        controller.listening_changed.connect(self._listening_changed)
        controller.dictated.connect(self._dictated)
        self.text_delivery.delivered.connect(self._delivered)

    # -- settings ------------------------------------------------------------------------

    def configure(self, settings: dict) -> None:
        """Take the (profile's) settings: listen to the key they name, or to none."""
        self.settings = dict(settings)
        self._apply_key()

    def set_paused(self, paused: bool) -> None:
        """Pause: the key is released (another application may use it) until resumed."""
        self.paused = paused
        self._apply_key()

    def _apply_key(self) -> None:
        enabled = bool(self.settings.get("hotkey")) and not self.paused
        self.key.apply(enabled, str(self.settings.get("listen_key") or ""))

    def _hold_mode(self) -> bool:
        return self.settings.get("listen_mode", "hold") == "hold" and self.key.reports_release

    # -- triggers ------------------------------------------------------------------------

    def key_pressed(self) -> None:
        listening = self.controller.is_listening()
        if self._hold_mode():
            if not listening:
                self._start(auto_stop=False)
        elif listening:
            if self.external:
                self.controller.stop()
        else:
            self._start(auto_stop=True)

    def key_released(self) -> None:
        if self._hold_mode() and self.external and self.controller.is_listening():
            self.controller.stop()

    def toggle(self) -> None:
        """Start or stop from the tray (a started take stops by itself after silence)."""
        if self.controller.is_listening():
            self.controller.stop()
        else:
            self._start(auto_stop=True)

    def _start(self, auto_stop: bool) -> bool:
        self._starting = True
        try:
            started = self.controller.start()  # refused: the controller says why
        finally:
            self._starting = False
        if started and auto_stop:
            self._silence.reset()
            self._silence_timer.start()
        return started

    def _check_silence(self) -> None:
        silence_s = float(self.settings.get("listen_silence_s") or 0)
        if not self.controller.is_listening():
            self._silence_timer.stop()
        elif silence_s > 0 and self._silence.silent_for() >= silence_s:
            log.info("stopping after %.1f s of silence", silence_s)
            self._silence_timer.stop()
            self.controller.stop()

    # -- the dictation's course ----------------------------------------------------------

    def _listening_changed(self, listening: bool) -> None:
        if listening:
            self.external = self._starting  # a take from Space or the window's button is not
            self._set_state(LISTENING)
            return
        self._silence_timer.stop()
        # The controller submits the transcription right after saying the take ended.
        QTimer.singleShot(0, lambda: self._set_state(TRANSCRIBING if self._busy else IDLE))

    def _busy_changed(self, busy: bool) -> None:
        self._busy = busy
        if not busy and self.state == TRANSCRIBING:
            self._set_state(IDLE)

    def _set_state(self, state: str) -> None:
        if state == TRANSCRIBING and self.controller.is_listening():
            return  # a new take started meanwhile
        if state != self.state:
            self.state = state
            self.state_changed.emit(state, self.external)

    def _dictated(self, text: str, hypothesis: str) -> None:
        if not self.external:
            return
        self.external = False
        if QApplication.activeWindow() is not None:
            return  # this app has the focus: its Dictate page shows the text
        output = str(self.settings.get("listen_output") or "type")
        paste_key = str(self.settings.get("paste_key") or "ctrl+v")
        # After the controller's own handling (its clipboard copy), so the paste mode
        # saves and restores the clipboard as it is then.
        QTimer.singleShot(0, lambda: self.text_delivery.deliver(text, output, paste_key))

    def _delivered(self, result: DeliveryResult) -> None:
        if result.how == "lost":  # not even the X clipboard: Qt's clipboard may still work
            QGuiApplication.clipboard().setText(result.text)
            message = f"{result.notice} The app put it on the clipboard; it is in the history too."
        else:
            message = result.notice
        if message:
            log.warning("%s", message)
            self.notice.emit(message)
        self.delivered.emit(result)

    def shutdown(self) -> None:
        self._silence_timer.stop()
        self.key.stop()
        self.text_delivery.close()
