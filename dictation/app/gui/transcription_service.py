"""The GUI's transcription service: loads speech models and runs them on a worker thread.

(Not to be confused with the command line: this is what the window, the dictation
controller and the enrollment check use to turn audio into text.) One worker thread (a
QThreadPool of size 1) serialises model loading and decoding, so a model swap after
adaptation can never race a running transcription, and the GUI thread never blocks on
onnxruntime.

Models load through `dictation.app.model_choice.load_model`: a profile's adapted model
that fails to load falls back to its previous model, then to the base model, whose
cache is rebuilt when it is broken. Each such problem is told once, in plain words
(`model_notice`), and `loaded_kind()` says which model really is in use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from dictation.app.enrollment import TakeCheck, check_take
from dictation.app.gui.services import Services
from dictation.app.gui.workers import run_in_pool

log = logging.getLogger(__name__)


class TranscriptionService(QObject):
    """Holds the base and the profile's transcriber; all calls return at once.

    Signals: busy_changed(bool); model_notice(str): a model could not be used and
    another one is used instead (or the base model is being built), in plain words, once;
    model_loaded(str kind): the model in use was loaded ("adapted", "previous", "base").
    """

    busy_changed = Signal(bool)
    model_notice = Signal(str)
    model_loaded = Signal(str)
    _notice_from_worker = Signal(str)  # emitted on the worker thread, delivered on the GUI's

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._lock = threading.Lock()
        self._cache: dict[Path | None, Any] = {}
        self._kinds: dict[Path | None, str] = {}  # which model each cached entry really is
        self._model_dir: Path | None = None  # None: the base model
        self._vocabulary: Any = None  # the open profile's (`dictation.app.vocabulary`), None: none
        self._profile: Any = None  # whose models the chain falls back through
        self._pending = 0
        self._notice_from_worker.connect(self._relay_notice)

    # -- models (the loaders run on the worker thread) ----------------------------------

    def set_profile(self, profile: Any) -> None:
        """The open profile (None: none), whose adapted and previous models come first."""
        with self._lock:
            self._profile = profile

    def set_model_dir(self, model_dir: Path | None) -> None:
        """Use this adapted model from now on (None: the base model)."""
        with self._lock:
            self._model_dir = Path(model_dir) if model_dir is not None else None

    def model_dir(self) -> Path | None:
        with self._lock:
            return self._model_dir

    def set_vocabulary(self, vocabulary: Any) -> None:
        """Dictate with this `DecodingVocabulary` from the next transcription on (None: none)."""
        with self._lock:
            self._vocabulary = vocabulary

    def _dictation_transcriber(self, model_dir: Path | None) -> Any:
        """The model's transcriber with the open profile's vocabulary (worker thread only:
        the jobs run one at a time, so setting it here cannot race a transcription)."""
        transcriber = self._transcriber(model_dir)
        with self._lock:
            transcriber.vocabulary = self._vocabulary
        return transcriber

    def loaded_kind(self) -> str | None:
        """Which model the current choice really loaded: "adapted", "previous" or "base"
        (None: not loaded yet)."""
        with self._lock:
            return self._kinds.get(self._model_dir)

    def _transcriber(self, model_dir: Path | None) -> Any:
        """The transcriber for `model_dir` (worker thread only), loaded on first use."""
        with self._lock:
            cached = self._cache.get(model_dir)
            profile = self._profile
        if cached is None:
            cached, kind = self._load(model_dir, profile)
            with self._lock:
                if kind == "base":  # a profile's model fell back: one base model in memory
                    cached = self._cache.setdefault(None, cached)
                    self._kinds[None] = "base"
                self._cache[model_dir], self._kinds[model_dir] = cached, kind
        return cached

    def _load(self, model_dir: Path | None, profile: Any) -> tuple[Any, str]:
        from dictation.app.model_choice import load_model

        def notice(problem: Any) -> None:
            self._notice_from_worker.emit(str(problem.message))

        def building(message: str) -> None:
            self._notice_from_worker.emit(f"{message[0].upper()}{message[1:]}")

        in_profile = profile is not None and model_dir is not None and model_dir.parent == Path(profile.path)
        if model_dir is None or in_profile:
            loaded = load_model(profile if in_profile else None, on_problem=notice, on_build=building)
            return loaded.transcriber, loaded.kind
        return self.services.make_transcriber(model_dir), "adapted"  # a folder outside any profile

    @Slot(str)
    def _relay_notice(self, message: str) -> None:
        self.model_notice.emit(message)

    def forget(self, model_dir: Path) -> None:
        """Drop a cached model (it was replaced on disk)."""
        with self._lock:
            self._cache.pop(Path(model_dir), None)
            self._kinds.pop(Path(model_dir), None)

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
            lambda: self._dictation_transcriber(model_dir).transcribe(audio, sample_rate, beam=beam),
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
            lambda: self._dictation_transcriber(model_dir).transcribe(load_audio(path), SAMPLE_RATE, beam=beam),
            on_done,
            on_error,
        )

    def current_transcriber(self, on_done: Callable[[Any], None], on_error: Callable[[str], None]) -> None:
        """Hand the current model's transcriber to `on_done` (GUI thread), loading it
        first if needed (for work that runs it on its own thread, like long dictation)."""
        model_dir = self.model_dir()
        self.submit(lambda: self._dictation_transcriber(model_dir), on_done, on_error)

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
        """Load the current model in the background so the first dictation is quick;
        `model_loaded` tells which one it is."""
        model_dir = self.model_dir()

        def loaded(_: Any) -> None:
            with self._lock:
                kind = self._kinds.get(model_dir)
            if kind is not None and model_dir == self.model_dir():
                self.model_loaded.emit(kind)

        self.submit(lambda: self._transcriber(model_dir), loaded, self._preload_failed)

    def _preload_failed(self, message: str) -> None:
        log.warning("model preload failed: %s", message)
        self.model_notice.emit(f"No speech model can be used: {message}")

    def wait(self, msecs: int = -1) -> bool:
        """Wait for queued jobs (used on shutdown and in tests)."""
        return self.pool.waitForDone(msecs)
