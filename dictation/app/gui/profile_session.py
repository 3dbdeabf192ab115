"""The open profile and its settings, shared by the window and the controllers.

Also remembers the last used profile in the data root (`gui.json`), so the app reopens it.
"""

from __future__ import annotations

import json
import logging

from PySide6.QtCore import QObject, Signal

from dictation.app import storage
from dictation.app.gui.settings_dialog import with_defaults
from dictation.app.profiles import Profile, ProfileError, list_profiles

log = logging.getLogger(__name__)

GUI_STATE = "gui.json"  # app-level state (last used profile) in the data root


def read_gui_state() -> dict:
    path = storage.data_root() / GUI_STATE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_gui_state(state: dict) -> None:
    try:
        storage.atomic_write_json(storage.data_root() / GUI_STATE, state)
    except OSError:
        log.warning("could not save the window state", exc_info=True)


class ProfileSession(QObject):
    """Which profile is open, with its settings (every known key present).

    Signals: settings_save_failed(str message); opened(Profile): a profile was opened;
    notice(str): what the profile left out or set aside when it opened (unreadable
    takes, damaged settings replaced by defaults), said once per opening, never a
    refusal of the profile.
    """

    settings_save_failed = Signal(str)
    opened = Signal(object)
    notice = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.profile: Profile | None = None
        self.settings: dict = with_defaults({})

    @staticmethod
    def profile_to_open() -> str | None:
        """The last used profile if it still exists, else the first one; None if there are
        none. Raises OSError when the data folder cannot be read."""
        names = list_profiles()
        if not names:
            return None
        last = read_gui_state().get("last_profile")
        return last if last in names else names[0]

    def open(self, name: str) -> Profile:
        """Open `name` and remember it as the last used profile.

        Raises CorruptProfileError, ProfileError or OSError; the session is unchanged then."""
        profile = Profile.open(name)
        settings = with_defaults(profile.settings())
        self.profile, self.settings = profile, settings
        write_gui_state({**read_gui_state(), "last_profile": profile.name})
        self.opened.emit(profile)
        try:
            notice = profile.notice()
        except (ProfileError, OSError) as exc:  # reading what is damaged failed too: say so
            notice = f"Some files of profile {profile.name!r} cannot be read ({exc})."
        if notice:
            self.notice.emit(notice)
        return profile

    def close(self) -> None:
        self.profile = None

    def is_open(self, name: str) -> bool:
        return self.profile is not None and self.profile.name == name

    def update_settings(self, values: dict) -> None:
        """Change settings and save them in the profile."""
        self.settings.update(values)
        self.save_settings()

    def save_settings(self) -> None:
        if self.profile is None:
            return
        try:
            self.profile.save_settings(self.settings)
        except (ProfileError, OSError) as exc:
            self.settings_save_failed.emit(f"Settings could not be saved: {exc}")
