"""A correction of the last dictation ("Mark as correct"): saved with its audio for the
next adaptation, and put where the wrong words went (history, clipboard; the views
replace them in the text)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtGui import QGuiApplication

from dictation.app.commands import apply_commands
from dictation.app.profiles import ProfileError


def apply_correction(
    profile: Any, settings: dict, audio: np.ndarray, hypothesis: str, old_text: str, corrected: str
) -> tuple[str, str]:
    """Save `corrected` as the text of the dictation `audio` (recognised as `hypothesis`,
    delivered as `old_text`); replace `old_text` in the history and, when the clipboard
    still holds it, there. Returns (the new text, what could not be corrected or "").
    Raises ProfileError/OSError when the correction itself cannot be saved."""
    profile.add_correction(audio, hypothesis, corrected)
    new_text = apply_commands(corrected) if settings.get("commands") else corrected
    if not old_text or new_text == old_text:
        return new_text, ""
    problem = ""
    try:
        profile.replace_history(old_text, new_text)
    except (ProfileError, OSError) as exc:
        problem = f"The history could not be corrected: {exc}"
    clipboard = QGuiApplication.clipboard()
    if settings.get("auto_copy") and clipboard.text() == old_text:
        clipboard.setText(new_text)
    return new_text, problem
