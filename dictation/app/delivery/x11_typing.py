"""Typing text into the focused X11 window with XTEST (python-xlib).

Each character becomes its keysym (Latin-1 directly, anything else as a Unicode keysym,
0x1000000 + code point). A character the keyboard map has is typed with its keycode
(and Shift when it sits on the shifted level); one it lacks (é on a US map, emoji) is
put on a spare keycode (one with no symbols) for the time of the typing. Clients read
the new map when they handle the MappingNotify, which can be after we have sent the
keys, so spare keycodes are only set back to nothing a while later (`RESTORE_AFTER_S`),
never while text typed with them may still be waiting in a client's queue, and never
re-used within one text: a text with more such characters than free keycodes raises
NotTypable (the caller pastes it instead).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from Xlib import XK, X
from Xlib.ext import xtest

from dictation.app.delivery.errors import DeliveryError, NotTypable
from dictation.app.hotkeys.keys import KeyCombo
from dictation.app.hotkeys.xutil import modifier_keycode, modifier_masks

log = logging.getLogger(__name__)

RESTORE_AFTER_S = 1.0
_SPECIAL = {"\n": "Return", "\t": "Tab", "\b": "BackSpace"}


class TypingError(DeliveryError):
    """The text could not be typed; the message says why."""


def char_keysym(char: str) -> int:
    """The X keysym that types `char`."""
    if char in _SPECIAL:
        return int(XK.string_to_keysym(_SPECIAL[char]))
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x1000000 + code


class XTestTyper:
    """Types into whatever window has the keyboard focus, over its own X connection."""

    def __init__(self, display: Any) -> None:
        self.display = display
        if display.query_extension("XTEST") is None:
            raise TypingError("the X server does not offer XTEST (synthetic key events)")
        self._lock = threading.Lock()
        self._restore_timer: threading.Timer | None = None
        self._spare: list[int] = []
        self._mapped: dict[int, int] = {}  # keysym -> spare keycode currently holding it

    # -- keyboard map

    def _keyboard_map(self) -> tuple[dict[int, tuple[int, bool]], list[int]]:
        """keysym -> (keycode, needs Shift) for the first two levels; spare keycodes."""
        first = self.display.display.info.min_keycode
        count = self.display.display.info.max_keycode - first + 1
        rows = self.display.get_keyboard_mapping(first, count)
        found: dict[int, tuple[int, bool]] = {}
        spare: list[int] = []
        for offset, row in enumerate(rows):
            keycode = first + offset
            if keycode in self._mapped.values():
                spare.append(keycode)
                continue
            if not any(row):
                spare.append(keycode)
                continue
            for level, keysym in enumerate(row[:2]):
                if keysym and keysym not in found:
                    found[keysym] = (keycode, level == 1)
        return found, spare

    def _put_on_spare(self, keysyms: list[int], spare: list[int]) -> dict[int, int]:
        """Map each keysym onto a spare keycode (both levels); returns keysym -> keycode."""
        placed = {}
        for keysym, keycode in zip(keysyms, spare):
            self.display.change_keyboard_mapping(keycode, [(keysym, keysym)])
            placed[keysym] = keycode
        self.display.sync()
        return placed

    def _restore_spares(self) -> None:
        with self._lock:
            self._clear_spares()

    def _clear_spares(self) -> None:
        for keycode in sorted(set(self._mapped.values())):
            self.display.change_keyboard_mapping(keycode, [(X.NoSymbol, X.NoSymbol)])
        self._mapped.clear()
        self.display.sync()

    # -- typing

    def _tap(self, keycode: int, shift_keycode: int = 0) -> None:
        if shift_keycode:
            xtest.fake_input(self.display, X.KeyPress, shift_keycode)
        xtest.fake_input(self.display, X.KeyPress, keycode)
        xtest.fake_input(self.display, X.KeyRelease, keycode)
        if shift_keycode:
            xtest.fake_input(self.display, X.KeyRelease, shift_keycode)

    def type_text(self, text: str) -> None:
        """Type `text` (any Unicode) into the focused window."""
        with self._lock:
            if self._restore_timer is not None:
                self._restore_timer.cancel()
            try:
                self._type(text)
            finally:
                self._restore_timer = threading.Timer(RESTORE_AFTER_S, self._restore_spares)
                self._restore_timer.daemon = True
                self._restore_timer.start()

    def _type(self, text: str) -> None:
        keymap, spare = self._keyboard_map()
        shift = modifier_keycode(self.display, "shift")
        caps_on = bool(self.display.screen().root.query_pointer().mask & modifier_masks(self.display)["lock"])
        keysyms = [char_keysym(char) for char in text]
        new = {k for k in keysyms if k not in keymap and k not in self._mapped}
        free = [k for k in spare if k not in self._mapped.values()]
        if len(new) > len(free):
            if len(new) <= len(spare):  # the keycodes of the last text are free again by now
                self._clear_spares()
                free = list(spare)
            else:
                # Re-using a keycode within one text races with clients that read the new
                # keymap only when they handle the keys: some would get the wrong letters.
                raise NotTypable(
                    f"the text has {len(new)} characters the keyboard map lacks and only {len(spare)} keycodes are free"
                )
        for char, keysym in zip(text, keysyms):
            if keysym in keymap:
                keycode, shifted = keymap[keysym]
                if caps_on and char.lower() != char.upper():
                    shifted = not shifted  # CapsLock flips the case of letters only
                self._tap(keycode, shift if shifted else 0)
                continue
            if keysym not in self._mapped:
                # One mapping change for all the characters this text still lacks.
                wanted = [k for k in dict.fromkeys(keysyms) if k in new and k not in self._mapped]
                self._mapped.update(self._put_on_spare(wanted, free))
                free = free[len(wanted) :]
            self._tap(self._mapped[keysym])
        self.display.sync()

    def press_combo(self, combo: KeyCombo) -> None:
        """Press and release a key combination (e.g. the paste key)."""
        with self._lock:
            keycode = self.display.keysym_to_keycode(combo.keysym)
            if not keycode:
                raise TypingError(f"the key {combo.key} is not on this keyboard layout")
            modifiers = [modifier_keycode(self.display, m) for m in combo.modifiers]
            for code in modifiers:
                xtest.fake_input(self.display, X.KeyPress, code)
            xtest.fake_input(self.display, X.KeyPress, keycode)
            xtest.fake_input(self.display, X.KeyRelease, keycode)
            for code in reversed(modifiers):
                xtest.fake_input(self.display, X.KeyRelease, code)
            self.display.sync()

    def close(self) -> None:
        """Put the spare keycodes back to nothing now."""
        with self._lock:
            if self._restore_timer is not None:
                self._restore_timer.cancel()
            self._clear_spares()
