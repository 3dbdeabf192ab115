"""Key combinations as the user writes them: `ctrl+alt+space`, `super+h`, `F9`.

Modifier names and one key name joined by `+`, case-insensitive. The key is an X keysym
name (`space`, `F9`, `Return`, `h`, `Control_R`, ...). Parsing needs no display: the
keysym tables come from python-xlib's pure-Python `Xlib.XK`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

# Canonical modifier order, and the names each is known by. "meta" and "win" are the
# Windows/logo key (KDE calls it Meta), as in the XDG shortcuts format's LOGO.
MODIFIER_ORDER = ("ctrl", "alt", "shift", "super")
MODIFIER_NAMES = {
    "ctrl": "ctrl",
    "control": "ctrl",
    "alt": "alt",
    "shift": "shift",
    "super": "super",
    "win": "super",
    "logo": "super",
    "meta": "super",
}
# The XDG shortcuts specification's modifier names (GlobalShortcuts portal triggers).
_XDG_MODIFIERS = {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "super": "LOGO"}
_KEYSYM_GROUPS = ("latin2", "latin3", "latin4", "publishing", "technical", "special", "xkb", "xf86")


class KeySpecError(ValueError):
    """A key combination that cannot be used; the message says why, for the user."""


@dataclass(frozen=True)
class KeyCombo:
    """Modifiers (canonical names, canonical order) and one key (an X keysym name)."""

    modifiers: tuple[str, ...]
    key: str
    keysym: int

    def __str__(self) -> str:
        return "+".join((*self.modifiers, self.key))

    def xdg_trigger(self) -> str:
        """The combination in the XDG shortcuts format (`CTRL+ALT+space`)."""
        return "+".join((*(_XDG_MODIFIERS[m] for m in self.modifiers), self.key))


@functools.cache
def _keysym_names() -> dict[str, tuple[str, int]]:
    """lowercase name -> (keysym name, keysym); on a case clash the lowercase keysym
    (the key's unshifted symbol: `a`, not `A`) wins."""
    from Xlib import XK

    for group in _KEYSYM_GROUPS:
        try:
            XK.load_keysym_group(group)
        except ImportError:  # an older python-xlib without that table
            continue
    names: dict[str, tuple[str, int]] = {}
    for attribute in dir(XK):
        if not attribute.startswith("XK_"):
            continue
        name = attribute[3:]
        folded = name.lower()
        if folded not in names or name == folded:
            names[folded] = (name, int(getattr(XK, attribute)))
    return names


def keysym_for(name: str) -> tuple[str, int]:
    """(canonical keysym name, keysym) for a key name in any case; KeySpecError if unknown."""
    found = _keysym_names().get(name.strip().lower())
    if found is None:
        raise KeySpecError(
            f"unknown key name {name!r}: use an X keysym name such as space, F9, Return, Pause, h or Control_R"
        )
    return found


def parse_key(text: str) -> KeyCombo:
    """Parse `ctrl+alt+space` (modifiers, then one key; any case) into a KeyCombo."""
    parts = [part.strip() for part in str(text).split("+")]
    if not text or not text.strip():
        raise KeySpecError("no key given: write modifiers and one key joined by '+', e.g. ctrl+alt+space")
    if text.strip().endswith("+") and len(parts) > 1 and parts[-1] == "" and parts[-2] == "":
        parts = [*parts[:-2], "plus"]  # "ctrl++" means ctrl and the + key
    if any(part == "" for part in parts):
        raise KeySpecError(
            f"{text!r} has an empty part: write modifiers and one key joined by '+', e.g. ctrl+alt+space"
        )
    modifiers: set[str] = set()
    keys: list[str] = []
    for index, part in enumerate(parts):
        modifier = MODIFIER_NAMES.get(part.lower())
        # A modifier name as the last part is the key itself only when it stands alone
        # ("shift" alone is a key; "ctrl+shift" has no key).
        if modifier is not None and not (index == len(parts) - 1 and len(parts) == 1):
            if modifier in modifiers:
                raise KeySpecError(f"{text!r} names {part} twice")
            modifiers.add(modifier)
        else:
            keys.append(part)
    if not keys:
        raise KeySpecError(f"{text!r} has no key after its modifiers, e.g. {text}+space")
    if len(keys) > 1:
        raise KeySpecError(
            f"{text!r} names more than one key ({', '.join(keys)}): use modifiers "
            f"({', '.join(sorted(MODIFIER_NAMES))}) and one key"
        )
    key = keys[0]
    if key.lower() in MODIFIER_NAMES:  # a lone modifier name: its left-hand key
        key = {"ctrl": "Control_L", "alt": "Alt_L", "shift": "Shift_L", "super": "Super_L"}[MODIFIER_NAMES[key.lower()]]
    name, keysym = keysym_for(key)
    if {"ctrl", "alt"} <= modifiers and 0xFFBE <= keysym <= 0xFFC9:
        raise KeySpecError(f"{text!r}: Ctrl+Alt+F1 to F12 switch virtual terminals and never reach applications")
    ordered = tuple(m for m in MODIFIER_ORDER if m in modifiers)
    return KeyCombo(ordered, name, keysym)
