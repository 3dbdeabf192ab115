"""The app outside its window: the tray icon (where the desktop has a tray), the overlay
and the start/stop sounds, following `AnywhereDictation`."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QSystemTrayIcon

from dictation.app.gui.anywhere import LISTENING, AnywhereDictation
from dictation.app.gui.dictation_controller import DictationController
from dictation.app.gui.overlay import Overlay
from dictation.app.gui.recorder import Recorder
from dictation.app.gui.sounds import Sounds
from dictation.app.gui.tray import ProfilesSource, Tray


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


class Presence(QObject):
    """Owns the tray (None without a system tray), the overlay and the sounds.

    The tray's requests go to the callables given: open the window, open a profile, quit.
    """

    def __init__(
        self,
        anywhere: AnywhereDictation,
        controller: DictationController,
        recorder: Recorder,
        profiles: ProfilesSource,
        open_window: Callable[[], None],
        open_profile: Callable[[str], object],
        quit_app: Callable[[], None],
        parent: QObject | None = None,
        with_tray: bool | None = None,
    ) -> None:
        super().__init__(parent)
        self.anywhere = anywhere
        self.overlay = Overlay()
        self.sounds = Sounds()
        self.tray: Tray | None = None
        self._last_state = "idle"
        if tray_available() if with_tray is None else with_tray:
            self.tray = Tray(profiles, self)
            self.tray.start_stop_requested.connect(anywhere.toggle)
            self.tray.open_requested.connect(open_window)
            self.tray.profile_requested.connect(open_profile)
            self.tray.pause_toggled.connect(anywhere.set_paused)
            self.tray.quit_requested.connect(quit_app)
            anywhere.key.state_changed.connect(lambda _: self._key_changed())
            self.tray.show()
        anywhere.state_changed.connect(self._state_changed)
        anywhere.notice.connect(self._notice)
        controller.partial.connect(self.overlay.set_partial)
        recorder.level_changed.connect(self.overlay.set_level)

    def _settings(self, name: str, default: bool) -> bool:
        return bool(self.anywhere.settings.get(name, default))

    def _state_changed(self, state: str, external: bool) -> None:
        if self.tray is not None:
            self.tray.set_state(state)
        if not external:
            self._last_state = state
            return
        if self._settings("overlay", True):
            self.overlay.set_state(state)
        if self._settings("sounds", False):
            if state == LISTENING:
                self.sounds.play_start()
            elif self._last_state == LISTENING:
                self.sounds.play_stop()
        self._last_state = state

    def _key_changed(self) -> None:
        if self.tray is not None:
            self.tray.set_key_summary(self.anywhere.key.summary())

    def _notice(self, text: str) -> None:
        if self.tray is not None and self.tray.is_visible():
            self.tray.notify(text)
        elif self._settings("overlay", True):
            self.overlay.show_notice(text)

    def close(self) -> None:
        self.overlay.close()
        if self.tray is not None:
            self.tray.hide()
