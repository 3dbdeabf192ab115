"""The GUI's transcription service: loads `Transcriber`s and runs them on a worker thread.

(Not to be confused with the command line: this is what the window, the dictation
controller and the enrollment check use to turn audio into text.) One worker thread (a QThreadPool of size 1) serialises model loading and decoding, so a
model swap after adaptation can never race a running transcription, and the GUI thread
never blocks on onnxruntime.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from dictation.app.enrollment import TakeCheck, check_take
from dictation.app.gui.services import Services
from dictation.app.gui.workers import run_in_pool

log = logging.getLogger(__name__)


class TranscriptionService(QObject):
    """Holds the base and the profile's transcriber; all calls return at once.

    Signals: busy_changed(bool).
    """

    busy_changed = Signal(bool)

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._lock = threading.Lock()
        self._cache: dict[Path, Any] = {}
        self._model_dir: Path | None = None  # None: the base model
        self._pending = 0

    # -- models (the loaders run on the worker thread) ----------------------------------

    def set_model_dir(self, model_dir: Path | None) -> None:
        """Use this adapted model from now on (None: the base model)."""
        with self._lock:
            self._model_dir = Path(model_dir) if model_dir is not None else None

    def model_dir(self) -> Path | None:
        with self._lock:
            return self._model_dir

    def _transcriber(self, model_dir: Path | None) -> Any:
        path = Path(model_dir) if model_dir is not None else self.services.base_model_dir()
        with self._lock:
            cached = self._cache.get(path)
        if cached is None:
            cached = self.services.make_transcriber(path)
            with self._lock:
                self._cache[path] = cached
        return cached

    def forget(self, model_dir: Path) -> None:
        """Drop a cached model (it was replaced on disk)."""
        with self._lock:
            self._cache.pop(Path(model_dir), None)

    # -- jobs ----------------------------------------------------------------------------

    def submit(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None],
    ) -> None:
        """Run `fn` on the service's worker thread; callbacks on the GUI thread."""
        self._pending += 1
        if self._pending == 1:
            self.busy_changed.emit(True)

        def settle() -> None:
            self._pending -= 1
            if self._pending == 0:
                self.busy_changed.emit(False)

        def done(result: Any) -> None:
            settle()
            on_done(result)

        def error(message: str) -> None:
            settle()
            on_error(message)

        run_in_pool(self.pool, fn, done, error)

    def transcribe(
        self,
        audio: np.ndarray,
        sample_rate: int,
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None],
        beam: int | None = None,
    ) -> None:
        """Transcribe with the current model (the profile's adapted one, else base);
        `beam`: beam width (None: the runtime's default; 1 greedy, for live previews)."""
        model_dir = self.model_dir()
        self.submit(
            lambda: self._transcriber(model_dir).transcribe(audio, sample_rate, beam=beam),
            on_done,
            on_error,
        )

    def transcribe_file(
        self,
        path: Path,
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None],
        beam: int | None = None,
    ) -> None:
        """Read (any format libsndfile knows, resampled to 16 kHz) and transcribe a file."""
        from dictation.app.audio import SAMPLE_RATE, load_audio

        model_dir = self.model_dir()
        self.submit(
            lambda: self._transcriber(model_dir).transcribe(load_audio(path), SAMPLE_RATE, beam=beam),
            on_done,
            on_error,
        )

    def base_transcriber(self) -> Any:
        """The base model's transcriber (call on the worker thread only)."""
        return self._transcriber(None)

    def check_take(
        self,
        audio: np.ndarray,
        sample_rate: int,
        text: str,
        on_done: Callable[[TakeCheck], None],
        on_error: Callable[[str], None],
    ) -> None:
        """Check an enrollment take of `text`: the signal checks, then the base model's
        transcript (the wizard's `Checker`)."""

        def run() -> TakeCheck:
            result = check_take(audio, text, sample_rate)  # cheap checks first, no model needed
            if not result.ok:
                return result
            return check_take(audio, text, sample_rate, transcriber=self.base_transcriber())

        self.submit(run, on_done, on_error)

    def preload(self) -> None:
        """Load the current model in the background so the first dictation is quick."""
        model_dir = self.model_dir()
        self.submit(lambda: self._transcriber(model_dir), lambda _: None, _log_error)

    def wait(self, msecs: int = -1) -> bool:
        """Wait for queued jobs (used on shutdown and in tests)."""
        return self.pool.waitForDone(msecs)


def _log_error(message: str) -> None:
    log.warning("model preload failed: %s", message)
