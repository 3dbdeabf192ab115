"""Putting dictated text where the cursor is, in one of three output modes, never losing it.

`Delivery(output, paste_key).deliver(text)` types or pastes the text into the focused
application, or only puts it on the clipboard. When the text cannot be delivered (no
focused window, the key injection refused, the application did not paste) it goes to
the clipboard and the result carries a notice saying so; the caller keeps it in the
history as well.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Protocol

from dictation.app.delivery.errors import DeliveryError, NotTypable
from dictation.app.hotkeys.keys import KeyCombo, parse_key

log = logging.getLogger(__name__)

OUTPUT_MODES = ("type", "paste", "clipboard")
DEFAULT_OUTPUT = "type"
DEFAULT_PASTE_KEY = "ctrl+v"
_DONE = {"type": "typed", "paste": "pasted", "clipboard": "clipboard"}


class Output(Protocol):
    name: str

    def no_focus_reason(self) -> str | None: ...
    def type_text(self, text: str) -> None: ...
    def paste(self, text: str, paste_key: KeyCombo) -> None: ...
    def to_clipboard(self, text: str) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class DeliveryResult:
    text: str
    how: str  # "typed", "pasted", "clipboard" (asked for, or the fallback), or "lost"
    notice: str = ""  # what went wrong, for the user; "" when delivered as asked

    @property
    def ok(self) -> bool:
        return not self.notice


def session_output(typist: str | None = None) -> Output:
    """The output for this desktop session: X11 (python-xlib) or Wayland (tools)."""
    from dictation.app.hotkeys.x11 import session_is_x11

    if session_is_x11():
        from dictation.app.delivery.x11 import X11Output

        return X11Output(typist or os.environ.get("DICTATION_TYPIST", "xtest"))
    from dictation.app.delivery.wayland import WaylandOutput

    return WaylandOutput()


class Delivery:
    """Delivers texts in one output mode; holds the session's output open."""

    def __init__(self, output: str = DEFAULT_OUTPUT, paste_key: str = DEFAULT_PASTE_KEY, backend: Output | None = None):
        if output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {', '.join(OUTPUT_MODES)}, not {output!r}")
        self.output = output
        self.paste_key = parse_key(paste_key)  # KeySpecError for a bad key
        self.backend = backend if backend is not None else session_output()

    def deliver(self, text: str) -> DeliveryResult:
        if not text:
            return DeliveryResult(text, "typed" if self.output == "type" else self.output)
        try:
            if self.output != "clipboard":
                reason = self.backend.no_focus_reason()
                if reason:
                    raise DeliveryError(reason)
            how = _DONE[self.output]
            if self.output == "type":
                try:
                    self.backend.type_text(text)
                except NotTypable as exc:
                    log.info("pasting instead of typing: %s", exc)
                    self.backend.paste(text, self.paste_key)
                    how = "pasted"
            elif self.output == "paste":
                self.backend.paste(text, self.paste_key)
            else:
                self.backend.to_clipboard(text)
            return DeliveryResult(text, how)
        except Exception as exc:  # any failure: the text must still reach the clipboard
            problem = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, DeliveryError):
                log.exception("delivery failed")
        try:
            if self.output != "clipboard":
                self.backend.to_clipboard(text)
        except Exception as exc:
            log.exception("the clipboard fallback failed")
            return DeliveryResult(
                text,
                "lost",
                f"Could not deliver the text ({problem}), nor put it on the clipboard ({exc}); it is in the history.",
            )
        return DeliveryResult(
            text, "clipboard", f"Could not {self.output} the text ({problem}); it is on the clipboard."
        )

    def close(self) -> None:
        self.backend.close()
