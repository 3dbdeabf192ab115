"""Which microphones there are, opening the chosen one for the recorder, and getting it
back by itself when it goes away (unplugged, the sound server restarted).

While a microphone is open it is checked every RETRY_MS between takes (a stream that
ended or went silent is closed); while none is open, the chosen one (or the default) is
opened again every RETRY_MS on a background thread, so the app recovers without the
user picking another microphone in Settings.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from dictation.app.gui.first_run import NO_MIC_TEXT
from dictation.app.gui.recorder import AudioSource, Recorder
from dictation.app.gui.services import NoMicrophoneError, Services
from dictation.app.gui.workers import run_in_pool

log = logging.getLogger(__name__)

RETRY_MS = 2000  # how often a lost microphone is looked for, and an open one checked
RESCAN_EVERY = 5  # attempts between PortAudio device rescans (a newly plugged-in device)


class Microphones(QObject):
    """Lists input devices and gives the recorder its source.

    An injected `AudioSource` (tests, screenshots) stands in for every device.
    Signals: availability_changed(bool available, str message): after each `open`, and
    when the microphone is lost or comes back; `message` says why there is no microphone
    ("" when there is one). names_changed(list[str]): the device list was read again.
    """

    availability_changed = Signal(bool, str)
    names_changed = Signal(list)

    def __init__(
        self,
        services: Services,
        recorder: Recorder,
        injected_source: AudioSource | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.recorder = recorder
        self.injected_source = injected_source
        self.names: list[str] = []
        self.error = ""  # why the chosen microphone is not available ("" when it is)
        self.wanted = ""  # the microphone asked for ("" the default)
        self._generation = 0  # a newer `open` makes a running attempt's result stale
        self._attempting = False
        self._attempts = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._timer = QTimer(self)
        self._timer.setInterval(RETRY_MS)
        self._timer.timeout.connect(self._watch)

    def refresh(self) -> list[str]:
        """List the input devices again (the sound system may have changed)."""
        if self.injected_source is not None:
            self.names = [getattr(self.injected_source, "name", "Injected audio source")]
            return self.names
        try:
            self.names = self.services.list_microphones()
            self.error = ""
        except NoMicrophoneError as exc:
            self.names = []
            self.error = f"The sound system is not available ({exc})."
        self.names_changed.emit(self.names)
        return self.names

    def open(self, name: str) -> bool:
        """Open the microphone `name` ("" for the default) as the recorder's source."""
        self.wanted = name or ""
        self._generation += 1
        source: AudioSource | None
        if self.injected_source is not None:
            source = self.injected_source
            self.error = ""
        elif not self.names:
            source = None
            self.error = NO_MIC_TEXT
        else:
            self.recorder.set_source(None)  # release the old device before opening another
            try:
                source = self.services.open_microphone(name or None)
                self.error = ""
            except NoMicrophoneError as exc:
                source = None
                self.error = (
                    f"The microphone \u201c{name or 'default'}\u201d could not be "
                    f"opened ({exc}). It is tried again every few seconds; you can also "
                    "choose another one in Settings, or transcribe files (File \u2192 "
                    "Transcribe file\u2026)."
                )
        self.recorder.set_source(source)
        available = source is not None
        self.availability_changed.emit(available, self.error)
        if self.injected_source is None:
            self._timer.start()  # watch the open one, or look for the chosen one again
        return available

    def stop_watching(self) -> None:
        """No more checks or attempts (the window closes)."""
        self._timer.stop()
        self._generation += 1

    def _watch(self) -> None:
        """Check the open microphone between takes; try to open one when there is none."""
        if self._attempting or self.recorder.is_recording():
            return
        source = self.recorder.source
        if source is None:
            self._attempt()
            return
        check = getattr(source, "check", None)
        if check is None:
            return
        try:
            check()
        except Exception as exc:  # DeviceLostError, or whatever a dead stream raises
            log.warning("the microphone was lost: %s", exc)
            self.recorder.set_source(None)
            self.error = f"The microphone was lost ({exc}). Looking for it again\u2026"
            self.availability_changed.emit(False, self.error)

    def _attempt(self) -> None:
        """Open the wanted microphone on a background thread (opening waits for audio)."""
        self._attempting = True
        self._attempts += 1
        generation, name, rescan = self._generation, self.wanted, self._attempts % RESCAN_EVERY == 0
        services = self.services

        def attempt() -> tuple[list[str], AudioSource]:
            if rescan:
                _rescan_quietly()
            names = services.list_microphones()
            if not names:
                raise NoMicrophoneError(NO_MIC_TEXT)
            return names, services.open_microphone(name or None)

        def opened(result: Any) -> None:
            self._attempting = False
            names, source = result
            if generation != self._generation or self.recorder.source is not None:
                source.close()  # another microphone was chosen meanwhile
                return
            log.info("the microphone %r is back", name or "default")
            self.names, self.error = list(names), ""
            self.names_changed.emit(self.names)
            self.recorder.set_source(source)
            self.availability_changed.emit(True, "")

        def failed(message: str) -> None:
            self._attempting = False
            log.debug("the microphone %r is still unavailable: %s", name or "default", message)

        run_in_pool(self._pool, attempt, opened, failed)


def _rescan_quietly() -> None:
    """Let PortAudio see devices plugged in since it started (skipped while one is open)."""
    try:
        from dictation.app.audio import rescan_devices

        rescan_devices()
    except Exception:
        log.debug("device rescan failed", exc_info=True)
