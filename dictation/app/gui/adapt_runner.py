"""Qt wrapper around `AdaptationJob`: polls the worker process from a QTimer.

The job runs in its own process, so the GUI thread only ever calls the non-blocking
`job.poll()`; the window stays responsive for the whole run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)

POLL_MS = 200
# If the process is gone and has said nothing for this many polls, it crashed silently.
_SILENT_DEATH_POLLS = 5


class JobLike(Protocol):
    """What the runner needs from `dictation.app.adapt_job.AdaptationJob`."""

    def start(self) -> None: ...
    def cancel(self) -> None: ...
    def is_alive(self) -> bool: ...
    def poll(self) -> list[dict]: ...


JobFactory = Callable[[str, "int | None", str], JobLike]


def default_job_factory(profile_name: str, steps: int | None, device: str) -> JobLike:
    """The real adaptation job (imported lazily; it does not import torch in this process)."""
    from dictation.app.adapt_job import AdaptationJob

    return AdaptationJob(profile_name, steps=steps, device=device)


class AdaptRunner(QObject):
    """Starts one adaptation job and reports it through signals.

    Signals: progress(step, total, loss, eta_seconds), finished(done_message: dict),
    failed(message: str), cancelled(). Exactly one of finished/failed/cancelled is emitted.
    """

    progress = Signal(int, int, float, float)
    status = Signal(str)
    finished = Signal(dict)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, job: JobLike, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._cancel_requested = False
        self._dead_polls = 0
        self._over = False

    def is_running(self) -> bool:
        return not self._over and self._timer.isActive()

    def start(self) -> None:
        try:
            self.job.start()
        except Exception as exc:  # e.g. the process could not be spawned
            self._end()
            self.failed.emit(f"Adaptation could not start: {exc}")
            return
        self._timer.start()

    def cancel(self) -> None:
        """Ask the worker to stop; `cancelled` follows once it has."""
        if self._over:
            return
        self._cancel_requested = True
        self.job.cancel()

    def _end(self) -> None:
        self._over = True
        self._timer.stop()

    def _poll(self) -> None:
        if self._over:
            return
        try:
            messages = self.job.poll()
        except Exception as exc:
            self._end()
            self.failed.emit(f"Lost contact with the adaptation process: {exc}")
            return
        for message in messages:
            if self._handle(message):
                return
        if messages or self.job.is_alive():
            self._dead_polls = 0
            return
        self._dead_polls += 1
        if self._dead_polls >= _SILENT_DEATH_POLLS:
            self._end()
            if self._cancel_requested:
                self.cancelled.emit()
            else:
                self.failed.emit("The adaptation process stopped unexpectedly.")

    def _handle(self, message: dict[str, Any]) -> bool:
        """Handle one message; True when the job is over."""
        kind = message.get("type")
        if kind == "progress":
            eta = message.get("eta_seconds")  # None until the first step is timed
            self.progress.emit(
                int(message.get("step", 0)),
                int(message.get("total", 0)),
                float(message.get("loss", float("nan"))),
                float(eta) if eta is not None else -1.0,
            )
            return False
        if kind == "status":
            self.status.emit(str(message.get("message", "")))
            return False
        if kind == "done":
            self._end()
            self.finished.emit(dict(message))
            return True
        if kind == "error":
            self._end()
            text = str(message.get("message", "unknown error"))
            if text == "cancelled" or self._cancel_requested and "cancel" in text.lower():
                self.cancelled.emit()
            else:
                self.failed.emit(explain_error(text))
            return True
        log.debug("ignoring adaptation message %r", message)
        return False


def explain_error(message: str) -> str:
    """Turn a worker error into plain language (the technical text is kept at the end)."""
    lower = message.lower()
    if "out of memory" in lower or "memoryerror" in lower:
        return (
            "The computer ran out of memory while adapting. Close other programs, or choose "
            f"CPU in Settings, and try again. ({message})"
        )
    if ("cuda" in lower or "gpu" in lower) and any(
        word in lower for word in ("not available", "no gpu", "no cuda", "unavailable", "not found")
    ):
        return (
            "No usable graphics card (GPU) was found. Choose Auto or CPU as the compute device "
            f"in Settings. ({message})"
        )
    return message
