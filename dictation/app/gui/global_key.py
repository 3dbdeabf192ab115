"""The system-wide key for the GUI: a `dictation.app.hotkeys` backend behind Qt signals.

The backend is chosen and started on a thread of its own (the Wayland portal may wait on
the desktop's confirmation dialog), and its press/release callbacks run on the
backend's thread; both reach the GUI thread only as queued Qt signals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from dictation.app.hotkeys import HotkeyBackend, HotkeyError, KeyCombo, KeySpecError, choose_backend, parse_key

log = logging.getLogger(__name__)

OFF, STARTING, ACTIVE, FAILED = "off", "starting", "active", "failed"

Chooser = Callable[[KeyCombo], HotkeyBackend]


class GlobalKey(QObject):
    """One key combination, listened to anywhere on the desktop while `apply`-ed.

    Signals: pressed(), released() (GUI thread; one per physical press and release),
    state_changed(str state) with state off / starting / active / failed (`problem` says
    why it failed, `description` what is in use).
    `key_up` is set while the key is up; readable from any thread (text typed while the
    key is held would be swallowed by its grab).
    """

    pressed = Signal()
    released = Signal()
    state_changed = Signal(str)
    _started = Signal(int, object, str)  # generation, backend or None, problem

    def __init__(self, parent: QObject | None = None, chooser: Chooser = choose_backend) -> None:
        super().__init__(parent)
        self.chooser = chooser
        self.state = OFF
        self.problem = ""
        self.description = ""
        self.combo: KeyCombo | None = None
        self.backend: HotkeyBackend | None = None
        self.key_up = threading.Event()
        self.key_up.set()
        self._generation = 0
        self._started.connect(self._on_started)

    @property
    def reports_release(self) -> bool:
        return self.backend is None or self.backend.reports_release

    def apply(self, enabled: bool, key: str) -> None:
        """Listen to `key` (when `enabled`), replacing whatever was listened to before."""
        if enabled and self.state in (STARTING, ACTIVE) and self.combo is not None and key == str(self.combo):
            return
        self.stop()
        if not enabled:
            return
        try:
            combo = parse_key(key)
        except KeySpecError as exc:
            self._set_state(FAILED, str(exc))
            return
        self.combo = combo
        generation = self._generation
        self._set_state(STARTING, "")
        threading.Thread(target=self._start, args=(generation, combo), name="global-key-start", daemon=True).start()

    def _start(self, generation: int, combo: KeyCombo) -> None:  # on its own thread
        backend: HotkeyBackend | None = None
        try:
            backend = self.chooser(combo)
            backend.start(self._pressed, self._released)
        except (HotkeyError, OSError, ValueError) as exc:
            self._emit_started(generation, None, str(exc))
            return
        except Exception as exc:  # a backend bug must not leave the setting spinning
            log.exception("starting the system-wide key failed")
            self._emit_started(generation, None, f"{type(exc).__name__}: {exc}")
            return
        self._emit_started(generation, backend, "")

    def _emit_started(self, generation: int, backend: HotkeyBackend | None, problem: str) -> None:
        try:
            self._started.emit(generation, backend, problem)
        except RuntimeError:  # the app quit while the key was being set up
            if backend is not None:
                backend.stop()

    def _on_started(self, generation: int, backend: HotkeyBackend | None, problem: str) -> None:
        if generation != self._generation:  # stopped or re-applied meanwhile
            if backend is not None:
                backend.stop()
            return
        if backend is None:
            log.warning("system-wide key %s unavailable: %s", self.combo, problem)
            self._set_state(FAILED, problem)
            return
        self.backend = backend
        self.description = f"{self.combo} through the {backend.name} backend"
        log.info("system-wide key: %s", self.description)
        self._set_state(ACTIVE, "")

    # -- on the backend's thread ---------------------------------------------------------

    def _pressed(self) -> None:
        self.key_up.clear()
        self.pressed.emit()

    def _released(self) -> None:
        self.key_up.set()
        self.released.emit()

    # -- stopping ------------------------------------------------------------------------

    def stop(self) -> None:
        """Release the key (idempotent)."""
        self._generation += 1
        backend, self.backend = self.backend, None
        if backend is not None:
            try:
                backend.stop()
            except Exception:  # the display may be gone already
                log.debug("stopping the key backend", exc_info=True)
        self.key_up.set()
        self.description = ""
        if self.state != OFF:
            self._set_state(OFF, "")

    def _set_state(self, state: str, problem: str) -> None:
        self.state, self.problem = state, problem
        self.state_changed.emit(state)

    def summary(self) -> str:
        """One line for the settings page: what is in use, or why nothing is."""
        if self.state == ACTIVE:
            return f"In use: {self.description}."
        if self.state == STARTING:
            return f"Setting up {self.combo}\u2026"
        if self.state == FAILED:
            return f"Not available: {self.problem}"
        return "Off."
