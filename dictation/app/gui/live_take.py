"""One dictation take decoded while it is recorded (dictation of any length).

The take is read as it grows (`TakeFeed`) and fed to
`dictation.app.long_transcription.IncrementalDictation`, which cuts it at pauses and
decodes each finished piece on its own thread while the user goes on speaking; at
release only the tail is left to decode. The pieces' text comes back on the GUI thread
(`pieces_changed`), and the last few seconds after them are kept for the live preview.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.gui.take_feed import TakeFeed

if TYPE_CHECKING:
    from dictation.app.runtime import Transcriber

log = logging.getLogger(__name__)

PREVIEW_MAX_SECONDS = 8.0  # the live preview decodes at most this much (the newest audio)


class _CountingTranscriber:
    """A transcriber that counts the decodes running on it (so the live preview can wait
    while a piece is decoded, instead of fighting it for the CPU)."""

    def __init__(self, transcriber: Any) -> None:
        self._transcriber = transcriber
        self._lock = threading.Lock()
        self.running = 0

    def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.running += 1
        try:
            return self._transcriber.transcribe(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transcriber, name)


class LiveTake(QObject):
    """The running take's audio, fed to the long-dictation decoder as it arrives.

    `start_decoding(transcriber)` once the model is loaded (audio read before waits);
    `pump()` reads what is new (call it every few hundred ms); `finish_job(take)` gives
    the job that decodes the rest at release. Signals: pieces_changed(str text): the text
    of the pieces decoded so far.
    """

    pieces_changed = Signal(str)
    _piece_from_worker = Signal(str, float)

    def __init__(self, source: Any, beam: int | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.feed = TakeFeed(source)
        self.beam = beam
        self.text = ""  # the pieces decoded so far
        self.pieces_end = 0  # where they end (16 kHz samples into the take)
        self.broken = ""  # why feeding stopped ("" while it works)
        self._dictation: Any = None
        self._counting: _CountingTranscriber | None = None
        self._waiting: list[np.ndarray] = []  # audio read before the model was ready
        self._tail = np.zeros(0, np.float32)  # the newest audio, for the live preview
        self._closed = False
        self._piece_from_worker.connect(self._piece_arrived)

    # -- while recording -------------------------------------------------------------

    def start_decoding(self, transcriber: Any) -> None:
        """Begin decoding with `transcriber` (GUI thread); the audio so far goes first."""
        if self._dictation is not None or self._closed or self.broken:
            return
        from dictation.app.long_transcription import IncrementalDictation

        self._counting = _CountingTranscriber(transcriber)
        # Duck-typed: the decoder only calls transcribe() (and reads beam) on it.
        counting = cast("Transcriber", self._counting)
        self._dictation = IncrementalDictation(counting, beam=self.beam, listener=self._listener)
        waiting, self._waiting = self._waiting, []
        for chunk in waiting:
            self._feed(chunk)

    def pump(self) -> int:
        """Read the take's new audio and feed it; the take's length so far (samples)."""
        if self._closed or self.broken:
            return self.feed.fed
        try:
            new = self.feed.read()
        except Exception as exc:  # the source failed: the whole take is decoded at release
            self._break(f"reading the take failed: {exc}")
            return self.feed.fed
        if new is not None and new.size:
            keep = int(PREVIEW_MAX_SECONDS * SAMPLE_RATE)
            self._tail = np.concatenate([self._tail, new])[-keep:]
            self._feed(new)
        return self.feed.fed

    def readable(self) -> bool:
        """True when the take can be read while it records (live decoding and preview)."""
        return self.feed.readable()

    def decoding(self) -> bool:
        """True while a piece is being decoded."""
        return self._counting is not None and self._counting.running > 0

    def preview_audio(self) -> np.ndarray:
        """The newest audio not yet in a decoded piece (at most PREVIEW_MAX_SECONDS)."""
        tail_start = self.feed.fed - self._tail.size
        return self._tail[max(0, self.pieces_end - tail_start) :]

    def _feed(self, chunk: np.ndarray) -> None:
        if self._dictation is None:
            self._waiting.append(chunk)
            return
        try:
            self._dictation.feed(chunk)
        except Exception as exc:
            self._break(f"decoding while recording failed: {exc}")

    def _break(self, why: str) -> None:
        log.warning("live dictation stopped, the whole take is decoded at release: %s", why)
        self.broken = why
        self._waiting = []
        if self._dictation is not None:
            self._dictation.cancel()
            self._dictation = None

    def _listener(self, piece: Any, text: str) -> None:
        """A piece was decoded (on the decoder's thread)."""
        with contextlib.suppress(RuntimeError):  # the app quit meanwhile
            self._piece_from_worker.emit(text, float(piece.end_s))

    @Slot(str, float)
    def _piece_arrived(self, text: str, end_s: float) -> None:
        if self._closed:
            return
        self.text = text
        self.pieces_end = max(self.pieces_end, int(end_s * SAMPLE_RATE))
        self.pieces_changed.emit(text)

    # -- at release ------------------------------------------------------------------

    def finish_job(self, take: np.ndarray) -> Callable[[], Any] | None:
        """The job (for a worker thread) that decodes the rest of `take` and returns its
        `Transcript`; None when nothing was decoded live (decode the whole take then)."""
        self._closed = True
        dictation, self._dictation = self._dictation, None
        if dictation is None:
            return None
        rest = self.feed.rest(take)
        self._tail = np.zeros(0, np.float32)
        counting = self._counting
        beam = self.beam if self.beam is not None else getattr(counting, "beam", None)

        def job() -> Any:
            from dictation.app.runtime import Transcript

            started = time.perf_counter()
            if rest.size:
                dictation.feed(rest)
            text = dictation.finish()
            return Transcript(
                text=text,
                seconds=time.perf_counter() - started,
                audio_seconds=take.size / SAMPLE_RATE,
                beam=int(beam or 1),
                confidence=dictation.confidence,
            )

        return job

    def cancel(self) -> None:
        """Drop the take (the piece being decoded finishes in the background)."""
        self._closed = True
        self._waiting = []
        if self._dictation is not None:
            self._dictation.cancel()
            self._dictation = None
        self.done()

    def done(self) -> None:
        """The take is over: free its audio and the object (a late piece from the decoder's
        thread finds it gone, which `_listener` allows for)."""
        self._tail = np.zeros(0, np.float32)
        self.deleteLater()
