"""Dictated text into the focused application, off the GUI thread.

Typing and pasting block (the paste waits for the other application to ask for the
text, and reading the clipboard may need this very process's GUI thread to answer when
the app owns the clipboard), so one worker thread owns the `Delivery` (its X
connections are not shared between threads) and reports each `DeliveryResult` back
through a queued Qt signal.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from dictation.app.delivery import DEFAULT_OUTPUT, DEFAULT_PASTE_KEY, Delivery, DeliveryResult
from dictation.app.listen import JOIN_WITHIN_S

log = logging.getLogger(__name__)

DeliveryFactory = Callable[[str, str], Delivery]
KEY_UP_WAIT_S = 5.0  # toggle mode stops on a press: the text waits for its release


@dataclass(frozen=True)
class _Job:
    text: str
    output: str
    paste_key: str


class TextDelivery(QObject):
    """Delivers texts one after another on its worker thread.

    Signals: delivered(DeliveryResult) on the GUI thread. `key_up` (a threading.Event,
    set while the system-wide key is up) is waited on before each delivery.
    """

    delivered = Signal(object)

    def __init__(
        self,
        key_up: threading.Event | None = None,
        factory: DeliveryFactory = Delivery,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.key_up = key_up
        self.factory = factory
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._delivery: Delivery | None = None
        self._made_for: tuple[str, str] | None = None
        self._last: tuple[float, int | None, str] | None = None  # time, window, text

    def deliver(self, text: str, output: str = DEFAULT_OUTPUT, paste_key: str = DEFAULT_PASTE_KEY) -> None:
        """Queue `text` for the focused application (returns at once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="text-delivery", daemon=True)
            self._thread.start()
        self._jobs.put(_Job(text, output, paste_key))

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued deliveries, then close the session's output."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout)

    # -- the worker thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                result = self._deliver(job)
                try:
                    self.delivered.emit(result)
                except RuntimeError:  # the app is gone; the text is in the history
                    return
        finally:
            self._close_delivery()

    def _deliver(self, job: _Job) -> DeliveryResult:
        if self.key_up is not None and not self.key_up.wait(KEY_UP_WAIT_S):
            log.warning("the key is still held after %.0f s; delivering anyway", KEY_UP_WAIT_S)
        try:
            delivery = self._delivery_for(job.output, job.paste_key)
        except Exception as exc:  # no display, bad paste key: the GUI keeps it on the clipboard
            log.warning("no text delivery here: %s", exc)
            return DeliveryResult(job.text, "lost", f"Could not {job.output} the text ({exc}).")
        window = getattr(delivery.backend, "focused_window", lambda: None)()
        prefix = ""
        if self._last is not None:
            at, last_window, last_text = self._last
            if time.monotonic() - at < JOIN_WITHIN_S and last_window == window and not last_text[-1:].isspace():
                prefix = " "  # sentence after sentence into the same field
        result = delivery.deliver(prefix + job.text)
        self._last = (time.monotonic(), window, job.text) if result.ok else None
        return DeliveryResult(job.text, result.how, result.notice)

    def _delivery_for(self, output: str, paste_key: str) -> Delivery:
        if self._delivery is None or self._made_for != (output, paste_key):
            self._close_delivery()
            self._delivery = self.factory(output, paste_key)
            self._made_for = (output, paste_key)
        return self._delivery

    def _close_delivery(self) -> None:
        delivery, self._delivery = self._delivery, None
        if delivery is not None:
            try:
                delivery.close()
            except Exception:
                log.debug("closing the text delivery", exc_info=True)
