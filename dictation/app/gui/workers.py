"""Run blocking work (transcription, take checks, model loading) off the GUI thread.

`run_in_pool(pool, fn, on_done, on_error)` runs `fn()` on a QThreadPool and delivers the
result or a plain-language error back on the GUI thread through Qt signals.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)


class _Signals(QObject):
    done = Signal(object)
    error = Signal(str)


class Task(QRunnable):
    """A QRunnable that calls `fn()` and emits `signals.done(result)` or `signals.error(msg)`."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _Signals()

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # every failure must reach the user, not die in a thread
            log.debug("background task failed\n%s", traceback.format_exc())
            self._emit(self.signals.error, describe_error(exc))
            return
        self._emit(self.signals.done, result)

    @staticmethod
    def _emit(signal: Any, value: Any) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # the app quit while this ran: nobody is left to tell
            log.debug("result of a background task dropped at shutdown")


def describe_error(exc: BaseException) -> str:
    """A one-line, plain-language description of an exception."""
    if isinstance(exc, MemoryError):
        return "The computer ran out of memory."
    text = str(exc).strip() or type(exc).__name__
    return text


class _Receiver(QObject):
    """Lives on the GUI thread, so its slots (and the callbacks) run there."""

    def __init__(self, on_done: Callable[[Any], None], on_error: Callable[[str], None]) -> None:
        super().__init__()
        self._on_done = on_done
        self._on_error = on_error

    @Slot(object)
    def done(self, result: Any) -> None:
        _live.pop(self, None)
        self._on_done(result)

    @Slot(str)
    def error(self, message: str) -> None:
        _live.pop(self, None)
        self._on_error(message)


_live: dict[_Receiver, Task] = {}  # keeps tasks and receivers alive until they report


def run_in_pool(
    pool: QThreadPool,
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[str], None],
) -> Task:
    """Run `fn` on `pool`; `on_done`/`on_error` are called on the GUI thread."""
    task = Task(fn)
    task.setAutoDelete(False)
    receiver = _Receiver(on_done, on_error)
    _live[receiver] = task
    task.signals.done.connect(receiver.done)
    task.signals.error.connect(receiver.error)
    pool.start(task)
    return task
