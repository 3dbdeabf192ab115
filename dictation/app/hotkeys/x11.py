"""X11 backend: a passive grab of the key on the root window (python-xlib).

The grab is made once per NumLock/CapsLock combination, since X matches the modifier
state exactly and a lit NumLock would otherwise disable the key. Auto-repeat is turned
into repeated presses by XKB where it can be (detectable auto-repeat), and
`RepeatFilter` drops whatever repeats still come as release+press pairs.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Any

from dictation.app.hotkeys.base import Callback, HotkeyBackend, HotkeyError
from dictation.app.hotkeys.keys import KeyCombo
from dictation.app.hotkeys.repeat import PRESS, RepeatFilter

log = logging.getLogger(__name__)


def session_is_x11() -> bool:
    """True when the desktop session is X11 (not Wayland with Xwayland's DISPLAY)."""
    session = os.environ.get("XDG_SESSION_TYPE", "").lower()
    if session:
        return session == "x11"
    return bool(os.environ.get("DISPLAY")) and not os.environ.get("WAYLAND_DISPLAY")


class X11Hotkey(HotkeyBackend):
    name = "x11"

    def __init__(self, combo: KeyCombo) -> None:
        super().__init__(combo)
        self._display: Any = None
        self._thread: threading.Thread | None = None
        self._wake_read, self._wake_write = -1, -1
        self._grabs: list[tuple[int, int]] = []
        self.detectable_autorepeat = False

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            from dictation.app.hotkeys.xutil import X11Unavailable, open_display
        except ImportError as exc:  # python-xlib missing from this install
            return False, f"python-xlib is not installed ({exc})"
        try:
            display = open_display()
        except X11Unavailable as exc:
            return False, str(exc)
        display.close()
        return True, f"X11 key grab on {os.environ.get('DISPLAY')}"

    def start(self, on_press: Callback, on_release: Callback) -> None:
        from Xlib import X
        from Xlib.error import BadAccess, CatchError

        from dictation.app.hotkeys.xutil import (
            X11Unavailable,
            modifier_masks,
            open_display,
            set_detectable_autorepeat,
        )

        if self._display is not None:
            return
        try:
            display = open_display()
        except X11Unavailable as exc:
            raise HotkeyError(str(exc)) from exc
        keycode = display.keysym_to_keycode(self.combo.keysym)
        if not keycode:
            display.close()
            raise HotkeyError(f"the key {self.combo.key} is not on this keyboard layout")
        masks = modifier_masks(display)
        wanted = 0
        for modifier in self.combo.modifiers:
            wanted |= masks[modifier]
        root = display.screen().root
        catch = CatchError(BadAccess)
        for lock in (0, masks["lock"], masks["numlock"], masks["lock"] | masks["numlock"]):
            grab = (keycode, wanted | lock)
            if grab in self._grabs:
                continue
            root.grab_key(keycode, wanted | lock, True, X.GrabModeAsync, X.GrabModeAsync, onerror=catch)
            self._grabs.append(grab)
        display.sync()
        if catch.get_error() is not None:
            for grabbed_keycode, modifiers in self._grabs:
                root.ungrab_key(grabbed_keycode, modifiers)
            self._grabs.clear()
            display.close()
            raise HotkeyError(f"{self.combo} is already taken by another application; choose another key")
        self.detectable_autorepeat = set_detectable_autorepeat(display)
        self._display = display
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(
            target=self._run, args=(keycode, on_press, on_release), name="x11-hotkey", daemon=True
        )
        self._thread.start()
        log.info(
            "grabbed %s (keycode %d) on the X11 root window; detectable auto-repeat: %s",
            self.combo,
            keycode,
            self.detectable_autorepeat,
        )

    def _run(self, keycode: int, on_press: Callback, on_release: Callback) -> None:
        from Xlib import X

        display = self._display
        repeats = RepeatFilter()

        def emit(events: list[str]) -> None:
            for event in events:
                try:
                    (on_press if event == PRESS else on_release)()
                except Exception:  # a failing listener must not end the key grab
                    log.exception("hotkey %s callback failed", event)

        try:
            while True:
                timeout = None if repeats.deadline is None else max(0.0, repeats.deadline - time.monotonic())
                ready, _, _ = select.select([display.fileno(), self._wake_read], [], [], timeout)
                if self._wake_read in ready:
                    return
                while display.pending_events():
                    event = display.next_event()
                    if event.type == X.KeyPress and event.detail == keycode:
                        emit(repeats.press(event.time))
                    elif event.type == X.KeyRelease and event.detail == keycode:
                        emit(repeats.release(event.time, time.monotonic()))
                emit(repeats.flush(time.monotonic()))
        except Exception:  # the X connection broke (server gone): nothing more will come
            log.exception("the X11 key listener stopped")

    def stop(self) -> None:
        display, self._display = self._display, None
        if display is None:
            return
        os.write(self._wake_write, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            root = display.screen().root
            for keycode, modifiers in self._grabs:
                root.ungrab_key(keycode, modifiers)
            display.sync()
        except Exception as exc:  # the server may be gone; its grabs went with it
            log.debug("ungrabbing the key: %s", exc)
        finally:
            self._grabs.clear()
            display.close()
            os.close(self._wake_read)
            os.close(self._wake_write)
