"""Text into the focused Wayland window through the tools a compositor allows.

Wayland gives ordinary clients no way to type into, or read the focus of, other
applications, so this uses what is installed:

- typing: `wtype` (wlroots compositors: Sway, Hyprland, river, labwc, Wayfire; any
  Unicode), else `ydotool` (any compositor, through /dev/uinput; ASCII only, since it
  types US key codes);
- clipboard: `wl-copy` / `wl-paste` (wl-clipboard; wlroots and KDE, not GNOME's Mutter);
  one format of the user's clipboard is given back after a paste (wl-copy offers one
  type at a time), the text one when there is one.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time

from dictation.app.delivery.errors import DeliveryError
from dictation.app.hotkeys.keys import KeyCombo

log = logging.getLogger(__name__)

CLIPBOARD_WAIT_S = 2.0  # at most, for wl-copy's child to take the selection
PASTE_WAIT_S = 0.3  # nothing tells when the application has pasted: wait this long
_TIMEOUT_S = 10
# Linux input key codes ydotool sends (input-event-codes.h), for the paste key.
_LINUX_MODIFIER_CODES = {"ctrl": 29, "shift": 42, "alt": 56, "super": 125}
_LINUX_KEY_CODES = {"v": 47, "Insert": 110}
_PREFERRED_TYPES = ("text/plain;charset=utf-8", "UTF8_STRING", "text/plain", "TEXT", "STRING")


def _run(argv: list[str], data: bytes | None = None, capture: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run a tool; `capture=False` for wl-copy, whose background child would hold pipes open."""
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    try:
        return subprocess.run(argv, input=data, stdout=output, stderr=output, timeout=_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeliveryError(f"{argv[0]} failed: {exc}") from exc


WTYPE_KEYMAP_WAIT_MS = 100


class WaylandOutput:
    name = "wayland"

    def __init__(self) -> None:
        self.wtype = shutil.which("wtype")
        self.ydotool = shutil.which("ydotool")
        self.wl_copy = shutil.which("wl-copy")
        self.wl_paste = shutil.which("wl-paste")

    def no_focus_reason(self) -> str | None:
        return None  # Wayland does not tell other clients which window has the focus

    def type_text(self, text: str) -> None:
        if self.wtype:
            # wtype sends its own keymap first; a client that has not applied it yet reads
            # the first key with the old one (the first character was lost in sway): wait.
            result = _run([self.wtype, "-s", str(WTYPE_KEYMAP_WAIT_MS), "--", text])
        elif self.ydotool and text.isascii():
            result = _run([self.ydotool, "type", "--", text])
        elif self.ydotool:
            raise DeliveryError("ydotool types only ASCII characters (install wtype, or use --output paste)")
        else:
            raise DeliveryError("typing on Wayland needs wtype (wlroots desktops) or ydotool")
        if result.returncode != 0:
            raise DeliveryError(f"typing failed: {result.stderr.decode(errors='replace').strip()}")

    def _press(self, combo: KeyCombo) -> None:
        if self.wtype:
            argv = [self.wtype, "-s", str(WTYPE_KEYMAP_WAIT_MS)]  # its keymap first (type_text)
            for modifier in combo.modifiers:
                argv += ["-M", modifier if modifier != "super" else "logo"]
            argv += ["-k", combo.key]
            for modifier in reversed(combo.modifiers):
                argv += ["-m", modifier if modifier != "super" else "logo"]
        elif self.ydotool and combo.key in _LINUX_KEY_CODES:
            codes = [_LINUX_MODIFIER_CODES[m] for m in combo.modifiers] + [_LINUX_KEY_CODES[combo.key]]
            argv = [self.ydotool, "key", *(f"{c}:1" for c in codes), *(f"{c}:0" for c in reversed(codes))]
        else:
            raise DeliveryError(f"cannot press {combo} here: install wtype (or ydotool for ctrl+v/shift+Insert)")
        result = _run(argv)
        if result.returncode != 0:
            raise DeliveryError(f"pressing {combo} failed: {result.stderr.decode(errors='replace').strip()}")

    def _saved_clipboard(self) -> tuple[str, bytes] | None:
        if not self.wl_paste:
            return None
        listed = _run([self.wl_paste, "--list-types"])
        types = listed.stdout.decode(errors="replace").split() if listed.returncode == 0 else []
        if not types:
            return None
        wanted = next((t for t in _PREFERRED_TYPES if t in types), types[0])
        data = _run([self.wl_paste, "--no-newline", "--type", wanted])
        return (wanted, data.stdout) if data.returncode == 0 else None

    def paste(self, text: str, paste_key: KeyCombo) -> None:
        if not self.wl_copy:
            raise DeliveryError("pasting on Wayland needs wl-copy (package wl-clipboard)")
        saved = self._saved_clipboard()
        self.to_clipboard(text)
        self._wait_for_clipboard(text)
        self._press(paste_key)
        time.sleep(PASTE_WAIT_S)
        if saved is None:
            _run([self.wl_copy, "--clear"], capture=False)
        else:
            _run([self.wl_copy, "--type", saved[0]], data=saved[1], capture=False)

    def _wait_for_clipboard(self, text: str) -> None:
        """wl-copy returns before its background child has taken the selection: a paste key
        sent at once pasted the previous clipboard. Wait until the clipboard holds `text`."""
        if not self.wl_paste:
            time.sleep(PASTE_WAIT_S)
            return
        deadline = time.monotonic() + CLIPBOARD_WAIT_S
        while time.monotonic() < deadline:
            held = _run([self.wl_paste, "--no-newline", "--type", "text/plain;charset=utf-8"])
            if held.returncode == 0 and held.stdout.decode(errors="replace") == text:
                return
            time.sleep(0.02)

    def to_clipboard(self, text: str) -> None:
        if not self.wl_copy:
            raise DeliveryError("the Wayland clipboard needs wl-copy (package wl-clipboard)")
        result = _run([self.wl_copy, "--type", "text/plain;charset=utf-8"], data=text.encode("utf-8"), capture=False)
        if result.returncode != 0:
            raise DeliveryError(f"wl-copy failed (exit status {result.returncode})")

    def close(self) -> None:
        return None
