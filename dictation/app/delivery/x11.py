"""Text into the focused X11 window: typed (XTEST, or `xdotool type`), pasted (clipboard
+ paste key, then the user's clipboard back), or left on the clipboard."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time

from Xlib import X

from dictation.app.delivery.errors import DeliveryError
from dictation.app.delivery.x11_clipboard import X11Clipboard, client_base
from dictation.app.delivery.x11_typing import TypingError, XTestTyper
from dictation.app.hotkeys.keys import KeyCombo
from dictation.app.hotkeys.xutil import X11Unavailable, modifier_masks, open_display

log = logging.getLogger(__name__)

PASTE_TIMEOUT_S = 2.0  # the focused application must ask for the text within this
PASTE_GRACE_S = 0.05  # after its first request, for any further format it asks for
MODIFIER_WAIT_S = 2.0  # for the user to let go of the key's modifiers
TYPISTS = ("xtest", "xdotool")


class X11Output:
    """Delivery on an X11 display (one connection for keys, two for the clipboard)."""

    name = "x11"

    def __init__(self, typist: str = "xtest") -> None:
        if typist not in TYPISTS:
            raise ValueError(f"typist must be one of {TYPISTS}")
        try:
            self.display = open_display()
            self.clipboard = X11Clipboard()
        except X11Unavailable as exc:
            raise DeliveryError(str(exc)) from exc
        self.display.set_error_handler(lambda error, request: log.debug("X error (delivery): %s", error))
        self.typist = typist
        self._modifiers = modifier_masks(self.display)
        self._keys: XTestTyper | None = None
        self._keys_problem = ""
        try:
            self._keys = XTestTyper(self.display)
        except TypingError as exc:  # the text can still go to the clipboard
            self._keys_problem = str(exc)

    def _keyboard(self) -> XTestTyper:
        if self._keys is None:
            raise DeliveryError(self._keys_problem)
        return self._keys

    def focused_window(self) -> int | None:
        """Id of the window that gets typed keys, or None when none does."""
        root = self.display.screen().root
        focus = self.display.get_input_focus().focus
        focus_id = focus if isinstance(focus, int) else int(focus.id)
        if focus_id == X.PointerRoot:  # keys go to the window under the pointer
            child = root.query_pointer().child
            focus_id = child if isinstance(child, int) else int(child.id)
        if focus_id in (X.NONE, root.id):
            return None
        return focus_id

    def no_focus_reason(self) -> str | None:
        return None if self.focused_window() is not None else "no window has the keyboard focus"

    def wait_modifiers_released(self, timeout: float = MODIFIER_WAIT_S) -> None:
        """Typing while the user still holds Ctrl or Alt would send shortcuts instead."""
        held = self._modifiers["ctrl"] | self._modifiers["alt"] | self._modifiers["shift"] | self._modifiers["super"]
        root = self.display.screen().root
        deadline = time.monotonic() + timeout
        while root.query_pointer().mask & held:
            if time.monotonic() > deadline:
                log.warning("modifier keys still held after %.1f s; typing anyway", timeout)
                return
            time.sleep(0.02)

    def type_text(self, text: str) -> None:
        self.wait_modifiers_released()
        if self.typist == "xdotool":
            self._xdotool_type(text)
            return
        self._keyboard().type_text(text)  # TypingError / NotTypable are DeliveryErrors

    @staticmethod
    def _xdotool_type(text: str) -> None:
        tool = shutil.which("xdotool")
        if tool is None:
            raise DeliveryError("xdotool is not installed (sudo apt-get install xdotool)")
        result = subprocess.run([tool, "type", "--delay", "1", "--", text], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise DeliveryError(f"xdotool type failed: {result.stderr.strip()}")

    def paste(self, text: str, paste_key: KeyCombo) -> None:
        """Paste through the clipboard, then give the user's clipboard back (all its formats).

        When the application never asks for the text, the text stays on the clipboard
        and DeliveryError says so."""
        keyboard = self._keyboard()
        saved = self.clipboard.read()
        generation = self.clipboard.set_text(text)
        target = self.focused_window()
        self.wait_modifiers_released()
        keyboard.press_combo(paste_key)
        client = client_base(target, self.display) if target is not None else None
        if not self.clipboard.wait_for_paste(generation, client, PASTE_TIMEOUT_S):
            raise DeliveryError(f"the focused application did not paste on {paste_key}")
        time.sleep(PASTE_GRACE_S)
        if self.clipboard.still_offering(generation):  # unless the user copied something since
            self.clipboard.own(saved)

    def to_clipboard(self, text: str) -> None:
        self.clipboard.set_text(text)

    def close(self) -> None:
        if self._keys is not None:
            self._keys.close()
        self.clipboard.close()
        self.display.close()
