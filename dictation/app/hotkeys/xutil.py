"""Small X11 helpers shared by the key grab and text delivery (python-xlib).

- `open_display()`: a connection, or HotkeyError-style message via X11Unavailable
- `modifier_masks(display)`: which modifier bit Alt, Super and NumLock sit on here
- `set_detectable_autorepeat(display)`: XKB's per-client flag, so a held key sends
  presses only (python-xlib has no XKB module; these are the two requests it needs)
"""

from __future__ import annotations

import os
from typing import Any

from Xlib import XK, X
from Xlib.protocol import rq

# keysym names that put a modifier bit on, per canonical modifier
_MODIFIER_KEYSYMS = {
    "shift": ("Shift_L", "Shift_R"),
    "ctrl": ("Control_L", "Control_R"),
    "alt": ("Alt_L", "Alt_R", "Meta_L", "Meta_R"),
    "super": ("Super_L", "Super_R", "Hyper_L", "Hyper_R"),
    "numlock": ("Num_Lock",),
}
_DEFAULT_MASKS = {
    "shift": X.ShiftMask,
    "lock": X.LockMask,
    "ctrl": X.ControlMask,
    "alt": X.Mod1Mask,
    "numlock": X.Mod2Mask,
    "super": X.Mod4Mask,
}
_MOD_BITS = (X.ShiftMask, X.LockMask, X.ControlMask, X.Mod1Mask, X.Mod2Mask, X.Mod3Mask, X.Mod4Mask, X.Mod5Mask)
_XKB_USE_CORE_KBD = 0x100
_XKB_PCF_DETECTABLE_AUTOREPEAT = 1


class X11Unavailable(Exception):
    """No X display can be used; the message says why."""


def open_display() -> Any:
    """A new python-xlib connection to $DISPLAY."""
    if not os.environ.get("DISPLAY"):
        raise X11Unavailable("DISPLAY is not set (no X11 session)")
    from Xlib import display as xdisplay
    from Xlib.error import ConnectionClosedError, DisplayError

    try:
        return xdisplay.Display()
    except (DisplayError, ConnectionClosedError, OSError) as exc:
        raise X11Unavailable(f"cannot connect to the X display {os.environ['DISPLAY']}: {exc}") from exc


def modifier_masks(display: Any) -> dict[str, int]:
    """Mask of each modifier (shift, lock, ctrl, alt, numlock, super) on this server."""
    masks = dict(_DEFAULT_MASKS)
    mapping = display.get_modifier_mapping()
    for name, keysym_names in _MODIFIER_KEYSYMS.items():
        keycodes = {display.keysym_to_keycode(XK.string_to_keysym(k)) for k in keysym_names} - {0}
        for bit, row in enumerate(mapping):
            if keycodes & set(row):
                masks[name] = _MOD_BITS[bit]
                break
    return masks


def modifier_keycode(display: Any, modifier: str) -> int:
    """The keycode of the left-hand key of a canonical modifier (0 if none)."""
    for keysym_name in _MODIFIER_KEYSYMS[modifier]:
        keycode = display.keysym_to_keycode(XK.string_to_keysym(keysym_name))
        if keycode:
            return int(keycode)
    return 0


class _XkbUseExtension(rq.ReplyRequest):
    _request = rq.Struct(
        rq.Card8("opcode"),
        rq.Opcode(0),
        rq.RequestLength(),
        rq.Card16("wanted_major"),
        rq.Card16("wanted_minor"),
    )
    _reply = rq.Struct(
        rq.ReplyCode(),
        rq.Bool("supported"),
        rq.Card16("sequence_number"),
        rq.ReplyLength(),
        rq.Card16("server_major"),
        rq.Card16("server_minor"),
        rq.Pad(20),
    )


class _XkbPerClientFlags(rq.ReplyRequest):
    _request = rq.Struct(
        rq.Card8("opcode"),
        rq.Opcode(21),
        rq.RequestLength(),
        rq.Card16("device_spec"),
        rq.Pad(2),
        rq.Card32("change"),
        rq.Card32("value"),
        rq.Card32("ctrls_to_change"),
        rq.Card32("auto_ctrls"),
        rq.Card32("auto_ctrl_values"),
    )
    _reply = rq.Struct(
        rq.ReplyCode(),
        rq.Card8("device_id"),
        rq.Card16("sequence_number"),
        rq.ReplyLength(),
        rq.Card32("supported"),
        rq.Card32("value"),
        rq.Card32("auto_ctrls"),
        rq.Card32("auto_ctrl_values"),
        rq.Pad(8),
    )


def set_detectable_autorepeat(display: Any) -> bool:
    """Ask XKB to report a held key as repeated presses without releases; True if set."""
    info = display.query_extension("XKEYBOARD")
    if info is None:
        return False
    opcode = info.major_opcode
    used = _XkbUseExtension(display=display.display, opcode=opcode, wanted_major=1, wanted_minor=0)
    if not used.supported:
        return False
    reply = _XkbPerClientFlags(
        display=display.display,
        opcode=opcode,
        device_spec=_XKB_USE_CORE_KBD,
        change=_XKB_PCF_DETECTABLE_AUTOREPEAT,
        value=_XKB_PCF_DETECTABLE_AUTOREPEAT,
        ctrls_to_change=0,
        auto_ctrls=0,
        auto_ctrl_values=0,
    )
    return bool(reply.supported & _XKB_PCF_DETECTABLE_AUTOREPEAT and reply.value & _XKB_PCF_DETECTABLE_AUTOREPEAT)
