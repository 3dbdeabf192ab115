"""Driving a running dictation take: feeding its decoder, previewing it, capping it.

Every FEED_INTERVAL_MS the take's new audio goes to its `LiveTake` (pieces that ended at
a pause are decoded meanwhile); every PARTIAL_INTERVAL_MS the audio after the decoded
pieces is transcribed greedily for the live preview, unless a piece is being decoded
(which needs the CPU more). `partial` shows the pieces' text and the preview together.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.gui.live_take import LiveTake

log = logging.getLogger(__name__)

PARTIAL_INTERVAL_MS = 900
PARTIAL_MIN_SECONDS = 0.8
PARTIAL_CHARS = 160  # the preview shows the end of a long dictation's text
FEED_INTERVAL_MS = 250  # the running take is read and fed to the decoder this often


class TakeWatcher(QObject):
    """Watches one `LiveTake` at a time (`watch` ... `stop`).

    Signals: partial(str): what was heard so far (decoded pieces, then the preview);
    cap_reached(): the take holds `max_samples` (the controller ends it).
    """

    partial = Signal(str)
    cap_reached = Signal()

    def __init__(self, transcription: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.transcription = transcription
        self.live: LiveTake | None = None
        self.max_samples = 0
        self._show_preview = True
        self._preview = ""  # the preview's text of the audio after the decoded pieces
        self._preview_busy = False
        self._feed_timer = QTimer(self)
        self._feed_timer.setInterval(FEED_INTERVAL_MS)
        self._feed_timer.timeout.connect(self._feed_tick)
        self._partial_timer = QTimer(self)
        self._partial_timer.setInterval(PARTIAL_INTERVAL_MS)
        self._partial_timer.timeout.connect(self._partial_tick)

    def watch(self, live: LiveTake, show_preview: bool, max_samples: int) -> None:
        self.stop()
        self.live, self._show_preview, self.max_samples, self._preview = live, show_preview, max_samples, ""
        live.pieces_changed.connect(self._pieces_decoded)
        if live.readable():
            self._feed_timer.start()
            if show_preview:
                self._partial_timer.start()

    def stop(self) -> LiveTake | None:
        """Stop watching; the take that was watched."""
        self._feed_timer.stop()
        self._partial_timer.stop()
        live, self.live = self.live, None
        if live is not None:
            live.pieces_changed.disconnect(self._pieces_decoded)
        return live

    def _feed_tick(self) -> None:
        live = self.live
        if live is None:
            return
        if live.pump() >= self.max_samples > 0:
            self.cap_reached.emit()

    def _pieces_decoded(self, text: str) -> None:
        self._preview = ""  # it covered audio that the piece now holds
        self._show()

    def _partial_tick(self) -> None:
        live = self.live
        if self._preview_busy or live is None or live.decoding():
            return
        audio = live.preview_audio()
        if audio.size < PARTIAL_MIN_SECONDS * SAMPLE_RATE:
            return
        self._preview_busy = True

        def done(transcript: Any) -> None:
            self._preview_busy = False
            if self.live is live:  # the final text may already be on its way
                self._preview = str(transcript.text).strip()
                self._show()

        def failed(message: str) -> None:
            self._preview_busy = False
            log.debug("partial transcription failed: %s", message)

        self.transcription.transcribe(audio, SAMPLE_RATE, done, failed, beam=1)  # greedy: half the CPU

    def _show(self) -> None:
        live = self.live
        if live is None or not self._show_preview:
            return
        text = " ".join(part for part in (live.text.strip(), self._preview) if part)
        if len(text) > PARTIAL_CHARS:
            text = "\u2026" + text[-PARTIAL_CHARS:].split(" ", 1)[-1]
        self.partial.emit(text)
