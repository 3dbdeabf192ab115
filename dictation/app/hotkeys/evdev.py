"""evdev backend: the key read straight from the keyboards in /dev/input (any desktop,
Wayland included), in plain Python (struct input_event), no compiled module.

Needs read access to the keyboard devices, which on most distributions means being
in the `input` group. The key is only watched, not taken: the focused application
sees it too, so choose a key that does nothing there (F9, Pause, Scroll_Lock, ...).
The kernel marks auto-repeat itself (value 2), so no filtering is needed.
"""

from __future__ import annotations

import logging
import os
import select
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from dictation.app.hotkeys.base import Callback, HotkeyBackend, HotkeyError
from dictation.app.hotkeys.keys import KeyCombo

log = logging.getLogger(__name__)

DEVICES_LIST = Path("/proc/bus/input/devices")
INPUT_DIR = Path("/dev/input")
EVENT = struct.Struct("llHHi")  # struct input_event: timeval, type, code, value
EV_KEY = 1
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2
FIX_PERMISSION = "sudo usermod -aG input $USER   (then log out and back in)"

# Linux key codes (input-event-codes.h) by X keysym, for the keys a user would pick.
_ROWS = {"qwertyuiop": 16, "asdfghjkl": 30, "zxcvbnm": 44}
LINUX_KEYS: dict[int, int] = {ord(c): start + i for row, start in _ROWS.items() for i, c in enumerate(row)}
LINUX_KEYS.update({ord(str(d % 10)): 1 + d for d in range(1, 11)})  # 1..9 -> 2..10, 0 -> 11
LINUX_KEYS.update({0xFFBE + i: 59 + i for i in range(10)})  # F1..F10
LINUX_KEYS.update({0xFFC8: 87, 0xFFC9: 88})  # F11, F12
LINUX_KEYS.update({0xFFCA + i: 183 + i for i in range(12)})  # F13..F24
LINUX_KEYS.update(
    {
        0x20: 57,  # space
        0x2D: 12,  # minus
        0x3D: 13,  # equal
        0x5B: 26,  # bracketleft
        0x5D: 27,  # bracketright
        0x3B: 39,  # semicolon
        0x27: 40,  # apostrophe
        0x60: 41,  # grave
        0x5C: 43,  # backslash
        0x2C: 51,  # comma
        0x2E: 52,  # period
        0x2F: 53,  # slash
        0xFF1B: 1,  # Escape
        0xFF08: 14,  # BackSpace
        0xFF09: 15,  # Tab
        0xFF0D: 28,  # Return
        0xFF8D: 96,  # KP_Enter
        0xFFE5: 58,  # Caps_Lock
        0xFF7F: 69,  # Num_Lock
        0xFF14: 70,  # Scroll_Lock
        0xFF61: 99,  # Print
        0xFF13: 119,  # Pause
        0xFF63: 110,  # Insert
        0xFFFF: 111,  # Delete
        0xFF50: 102,  # Home
        0xFF57: 107,  # End
        0xFF55: 104,  # Prior (Page_Up)
        0xFF56: 109,  # Next (Page_Down)
        0xFF52: 103,  # Up
        0xFF54: 108,  # Down
        0xFF51: 105,  # Left
        0xFF53: 106,  # Right
        0xFF67: 127,  # Menu (KEY_COMPOSE, the PC keyboard's menu key)
        0xFFE3: 29,  # Control_L
        0xFFE4: 97,  # Control_R
        0xFFE1: 42,  # Shift_L
        0xFFE2: 54,  # Shift_R
        0xFFE9: 56,  # Alt_L
        0xFFEA: 100,  # Alt_R
        0xFE03: 100,  # ISO_Level3_Shift (AltGr)
        0xFFEB: 125,  # Super_L
        0xFFEC: 126,  # Super_R
    }
)
MODIFIER_CODES = {"ctrl": (29, 97), "shift": (42, 54), "alt": (56, 100), "super": (125, 126)}


@dataclass(frozen=True)
class InputDevice:
    name: str
    path: Path


def keyboards(devices_list: Path | None = None) -> list[InputDevice]:
    """Devices that have a `kbd` handler and the letter keys (not power buttons)."""
    try:
        text = (devices_list or DEVICES_LIST).read_text(errors="replace")
    except OSError:
        return []
    found = []
    bits = struct.calcsize("l") * 8
    for block in text.split("\n\n"):
        name, handlers, key_words = "", [], []
        for line in block.splitlines():
            if line.startswith("N: Name="):
                name = line[len("N: Name=") :].strip().strip('"')
            elif line.startswith("H: Handlers="):
                handlers = line[len("H: Handlers=") :].split()
            elif line.startswith("B: KEY="):
                key_words = line[len("B: KEY=") :].split()
        events = [h for h in handlers if h.startswith("event")]
        if "kbd" not in handlers or not events or not key_words:
            continue
        mask = 0
        for word in key_words:  # most significant word first
            mask = (mask << bits) | int(word, 16)
        if all(mask >> code & 1 for code in (30, 44, 57)):  # A, Z, space
            found.append(InputDevice(name, INPUT_DIR / events[0]))
    return found


class EvdevHotkey(HotkeyBackend):
    name = "evdev"

    def __init__(self, combo: KeyCombo) -> None:
        super().__init__(combo)
        self._fds: list[int] = []
        self._thread: threading.Thread | None = None
        self._wake_read, self._wake_write = -1, -1

    @classmethod
    def available(cls) -> tuple[bool, str]:
        devices = keyboards()
        if not devices:
            return False, f"no keyboard devices listed in {DEVICES_LIST}"
        readable = [d for d in devices if os.access(d.path, os.R_OK)]
        if not readable:
            paths = ", ".join(str(d.path) for d in devices)
            return False, f"no permission to read the keyboards ({paths}). Fix: {FIX_PERMISSION}"
        return True, f"reading {len(readable)} keyboard(s) from {INPUT_DIR}"

    def start(self, on_press: Callback, on_release: Callback) -> None:
        if self._thread is not None:
            return
        code = LINUX_KEYS.get(self.combo.keysym)
        if code is None:
            raise HotkeyError(f"the evdev backend does not know the key {self.combo.key}; choose e.g. F9 or Pause")
        fds = []
        for device in keyboards():
            try:
                fds.append(os.open(device.path, os.O_RDONLY | os.O_NONBLOCK))
            except OSError as exc:
                log.debug("cannot open %s: %s", device.path, exc)
        if not fds:
            raise HotkeyError(f"cannot read any keyboard device. Fix: {FIX_PERMISSION}")
        self.start_on(fds, code, on_press, on_release)

    def start_on(self, fds: list[int], code: int, on_press: Callback, on_release: Callback) -> None:
        """Watch already opened event streams (devices, or a pipe in the tests)."""
        self._fds = fds
        self._wake_read, self._wake_write = os.pipe()
        watcher = _KeyWatcher(code, set(self.combo.modifiers), on_press, on_release)
        self._thread = threading.Thread(target=self._run, args=(watcher,), name="evdev-hotkey", daemon=True)
        self._thread.start()
        log.info("watching %s on %d keyboard device(s)", self.combo, len(fds))

    def _run(self, watcher: _KeyWatcher) -> None:
        pending = {fd: b"" for fd in self._fds}
        while pending:
            ready, _, _ = select.select([*pending, self._wake_read], [], [])
            if self._wake_read in ready:
                return
            for fd in ready:
                try:
                    data = pending[fd] + os.read(fd, EVENT.size * 64)
                except BlockingIOError:
                    continue
                except OSError as exc:  # unplugged keyboard
                    log.info("keyboard device gone: %s", exc)
                    data = b""
                if not data and fd in pending:
                    del pending[fd]
                    continue
                whole = len(data) - len(data) % EVENT.size
                for _, _, kind, code, value in EVENT.iter_unpack(data[:whole]):
                    if kind == EV_KEY:
                        watcher.key(code, value)
                pending[fd] = data[whole:]

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        os.write(self._wake_write, b"x")
        thread.join(timeout=5)
        for fd in (*self._fds, self._wake_read, self._wake_write):
            os.close(fd)
        self._fds = []


class _KeyWatcher:
    """Turns key events from all keyboards into presses and releases of one combination."""

    def __init__(self, code: int, modifiers: set[str], on_press: Callback, on_release: Callback) -> None:
        self.code, self.modifiers = code, modifiers
        self.on_press, self.on_release = on_press, on_release
        self.held: set[int] = set()
        self.active = False

    def _held_modifiers(self) -> set[str]:
        return {name for name, codes in MODIFIER_CODES.items() if self.held & set(codes) and self.code not in codes}

    def key(self, code: int, value: int) -> None:
        if value == KEY_REPEAT:
            return
        if code == self.code:
            if value == KEY_DOWN and not self.active and self._held_modifiers() == self.modifiers:
                self.active = True
                self._call(self.on_press)
            elif value == KEY_UP and self.active:
                self.active = False
                self._call(self.on_release)
        if value == KEY_DOWN:
            self.held.add(code)
        else:
            self.held.discard(code)

    @staticmethod
    def _call(callback: Callback) -> None:
        try:
            callback()
        except Exception:  # a failing listener must not stop the watching
            log.exception("hotkey callback failed")
