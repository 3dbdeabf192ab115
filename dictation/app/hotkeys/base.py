"""What every system-wide key backend offers, and the error they raise."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from dictation.app.hotkeys.keys import KeyCombo

Callback = Callable[[], None]


class HotkeyError(Exception):
    """The key cannot be listened to (taken, not on the keyboard, no permission); the
    message is meant for the user."""


class HotkeyBackend(ABC):
    """Reports presses and releases of one key combination anywhere on the desktop.

    `start(on_press, on_release)` grabs the key or raises HotkeyError; the callbacks run
    on the backend's own thread, once per physical press and release (auto-repeat is
    filtered out). `stop()` releases the key; it is idempotent.
    """

    name = "?"
    # False where releases are not reported (hold-to-talk then cannot work).
    reports_release = True

    def __init__(self, combo: KeyCombo) -> None:
        self.combo = combo

    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(usable here, why not / what it is)."""

    @abstractmethod
    def start(self, on_press: Callback, on_release: Callback) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> HotkeyBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
