"""A system-wide key: its presses and releases wherever the focus is.

- `keys`    parse_key("ctrl+alt+space") -> KeyCombo; KeySpecError for a bad key
- `repeat`  RepeatFilter: one press and one release per hold, whatever auto-repeat does
- `base`    HotkeyBackend (start(on_press, on_release), stop(), available()), HotkeyError
- `x11`     X11Hotkey: passive grab on the root window (python-xlib)
- `portal`  PortalHotkey: xdg-desktop-portal GlobalShortcuts over D-Bus (Wayland)
- `evdev`   EvdevHotkey: reads /dev/input keyboards (Wayland without the portal)

`choose_backend(combo)` picks X11 in an X11 session, else the portal, else evdev.
Nothing here imports python-xlib or jeepney until a backend is used.
"""

from __future__ import annotations

from dictation.app.hotkeys.base import Callback, HotkeyBackend, HotkeyError
from dictation.app.hotkeys.keys import KeyCombo, KeySpecError, parse_key

BACKENDS = ("x11", "portal", "evdev")

__all__ = [
    "BACKENDS",
    "Callback",
    "HotkeyBackend",
    "HotkeyError",
    "KeyCombo",
    "KeySpecError",
    "backend_class",
    "choose_backend",
    "parse_key",
]


def backend_class(name: str) -> type[HotkeyBackend]:
    if name == "x11":
        from dictation.app.hotkeys.x11 import X11Hotkey

        return X11Hotkey
    if name == "portal":
        from dictation.app.hotkeys.portal import PortalHotkey

        return PortalHotkey
    if name == "evdev":
        from dictation.app.hotkeys.evdev import EvdevHotkey

        return EvdevHotkey
    raise ValueError(f"unknown key backend {name!r}; one of {', '.join(BACKENDS)}")


def backend_order() -> list[str]:
    """Backends to try in this session, best first."""
    from dictation.app.hotkeys.x11 import session_is_x11

    return ["x11"] if session_is_x11() else ["portal", "evdev"]


def choose_backend(combo: KeyCombo, name: str | None = None) -> HotkeyBackend:
    """A backend for `combo` that can work here (not started); HotkeyError naming what
    each candidate lacks (with the fix, where there is one) when none can."""
    reasons = []
    for candidate in [name] if name else backend_order():
        cls = backend_class(candidate)
        usable, why = cls.available()
        if usable:
            return cls(combo)
        reasons.append(f"{candidate}: {why}")
    raise HotkeyError("no way to listen to a system-wide key here. " + " ".join(reasons))
