"""Dictated text where the cursor is, in any application: typed, pasted or on the clipboard.

- `deliver`        Delivery (output mode + paste key) and DeliveryResult; falls back to the clipboard
- `x11`            X11Output: XTEST typing, clipboard + paste key (python-xlib)
- `x11_typing`     XTestTyper: any Unicode character, spare keycodes for those the map lacks
- `x11_clipboard`  X11Clipboard: read every format, own the selection, know when it was pasted
- `wayland`        WaylandOutput: wtype / ydotool, wl-copy / wl-paste
"""

from __future__ import annotations

from dictation.app.delivery.deliver import (
    DEFAULT_OUTPUT,
    DEFAULT_PASTE_KEY,
    OUTPUT_MODES,
    Delivery,
    DeliveryResult,
    Output,
    session_output,
)
from dictation.app.delivery.errors import DeliveryError

__all__ = [
    "DEFAULT_OUTPUT",
    "DEFAULT_PASTE_KEY",
    "OUTPUT_MODES",
    "Delivery",
    "DeliveryError",
    "DeliveryResult",
    "Output",
    "session_output",
]
