"""Push-to-talk recording for the GUI: wraps an audio source, publishes its level.

The audio source (normally `dictation.app.audio`'s capture, which keeps a pre-roll so the first
word is never cut) can be injected, which is how tests feed the window known audio.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)

LEVEL_MS = 33  # ~30 meter updates a second


class AudioSource(Protocol):
    """A running capture: always listening (for the meter and pre-roll), keeps takes on demand."""

    sample_rate: int

    def start_take(self) -> None: ...
    def stop_take(self) -> np.ndarray: ...
    # Optional: def peek_take(self) -> np.ndarray  (the take so far; enables the live preview)
    def level(self) -> float: ...
    def close(self) -> None: ...


class Recorder(QObject):
    """Push-to-talk on top of an `AudioSource`.

    Signals: level_changed(float 0..1), recording_changed(bool), take_ready(np.ndarray),
    error(str).
    """

    level_changed = Signal(float)
    recording_changed = Signal(bool)
    take_ready = Signal(object)
    error = Signal(str)

    def __init__(self, source: AudioSource | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source: AudioSource | None = None
        self._recording = False
        self._timer = QTimer(self)
        self._timer.setInterval(LEVEL_MS)
        self._timer.timeout.connect(self._tick)
        self.set_source(source)

    @property
    def source(self) -> AudioSource | None:
        return self._source

    @property
    def sample_rate(self) -> int:
        return int(getattr(self._source, "sample_rate", 16000))

    def available(self) -> bool:
        return self._source is not None

    def is_recording(self) -> bool:
        return self._recording

    def set_source(self, source: AudioSource | None) -> None:
        """Replace the audio source (closing the old one)."""
        if self._recording:
            self.cancel()
        old, self._source = self._source, source
        if old is not None and old is not source:
            _close_quietly(old)
        if source is None:
            self._timer.stop()
            self.level_changed.emit(0.0)
        else:
            self._timer.start()

    def begin(self) -> bool:
        """Start keeping audio (the pre-roll is included). False if there is no microphone."""
        if self._source is None or self._recording:
            return False
        try:
            self._source.start_take()
        except Exception as exc:
            self.error.emit(f"Could not start recording: {exc}")
            return False
        self._recording = True
        self.recording_changed.emit(True)
        return True

    def end(self) -> np.ndarray | None:
        """Stop and emit `take_ready` with the take (float32 mono)."""
        if self._source is None or not self._recording:
            return None
        self._recording = False
        try:
            audio = np.asarray(self._source.stop_take(), dtype=np.float32).reshape(-1)
        except Exception as exc:
            self.recording_changed.emit(False)
            self.error.emit(f"Recording failed: {exc}")
            # A lost device hands over what it captured (DeviceLostError.captured): keep it.
            captured = getattr(exc, "captured", None)
            if captured is None or np.asarray(captured).size == 0:
                return None
            audio = np.asarray(captured, dtype=np.float32).reshape(-1)
            self.take_ready.emit(audio)
            return audio
        self.recording_changed.emit(False)
        self.take_ready.emit(audio)
        return audio

    def snapshot(self) -> np.ndarray | None:
        """The take recorded so far, while it continues (None if not recording or unsupported)."""
        peek = getattr(self._source, "peek_take", None)
        if peek is None or not self._recording:
            return None
        try:
            return np.asarray(peek(), dtype=np.float32).reshape(-1)
        except Exception:
            log.debug("peek_take failed", exc_info=True)
            return None

    def cancel(self) -> None:
        """Stop without emitting a take."""
        if self._source is not None and self._recording:
            self._recording = False
            try:
                self._source.stop_take()
            except Exception:
                log.debug("stop_take failed during cancel", exc_info=True)
            self.recording_changed.emit(False)

    def close(self) -> None:
        self.set_source(None)

    def _tick(self) -> None:
        if self._source is None:
            return
        try:
            level = float(self._source.level())
        except Exception:
            level = 0.0
        self.level_changed.emit(level)


def _close_quietly(source: AudioSource) -> None:
    try:
        source.close()
    except Exception:
        log.debug("closing audio source failed", exc_info=True)
