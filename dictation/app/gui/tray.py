"""The tray icon: the dictation's state at a glance (idle / listening / transcribing) and
a menu to start or stop dictating, open the window, switch profiles, pause the
system-wide key and quit.

The three icons are the app icon, plain for idle and with a coloured dot for listening
(red) and transcribing (amber).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

log = logging.getLogger(__name__)

ICON_PX = 64
DOT_COLOURS = {"listening": QColor("#d93025"), "transcribing": QColor("#e0a020")}
STATE_WORDS = {"idle": "ready", "listening": "listening", "transcribing": "transcribing"}

ProfilesSource = Callable[[], tuple[list[str], str]]  # (profile names, the open one)


def app_pixmap(size: int = ICON_PX) -> QPixmap:
    """The app icon at `size` pixels; a drawn stand-in when the icon files are missing."""
    try:
        from dictation.app.desktop import DesktopError, icon_file

        path = icon_file(size)
        pixmap = QPixmap(str(path))
        if not pixmap.isNull():
            return pixmap
    except (DesktopError, ValueError):
        pass
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor("#2f7dd1"))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawRoundedRect(QRectF(2, 2, size - 4, size - 4), size / 5, size / 5)
    painter.setPen(QColor("white"))
    font = QFont()
    font.setPixelSize(int(size * 0.6))
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, "D")
    painter.end()
    return pixmap


def state_icon(base: QPixmap, state: str) -> QIcon:
    """The app icon with the state's dot in its lower right corner (none for idle)."""
    colour = DOT_COLOURS.get(state)
    if colour is None:
        return QIcon(base)
    pixmap = base.copy()
    size = min(pixmap.width(), pixmap.height())
    dot = size * 0.42
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QColor("white"))
    painter.setBrush(colour)
    painter.drawEllipse(QRectF(size - dot - 1, size - dot - 1, dot, dot))
    painter.end()
    return QIcon(pixmap)


class Tray(QObject):
    """Signals: start_stop_requested(), open_requested(), profile_requested(str name),
    pause_toggled(bool paused), quit_requested()."""

    start_stop_requested = Signal()
    open_requested = Signal()
    profile_requested = Signal(str)
    pause_toggled = Signal(bool)
    quit_requested = Signal()

    def __init__(self, profiles: ProfilesSource, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.profiles = profiles
        base = app_pixmap()
        self.icons = {state: state_icon(base, state) for state in STATE_WORDS}
        self.state = "idle"
        self.key_summary = ""
        self.icon = QSystemTrayIcon(self.icons["idle"], self)
        self.menu = QMenu()
        self.start_stop_action = self.menu.addAction("Start dictation")
        self.open_action = self.menu.addAction("Open Dictation")
        self.profile_menu = self.menu.addMenu("Profile")
        self.pause_action = self.menu.addAction("Pause the system-wide key")
        self.pause_action.setCheckable(True)
        self.menu.addSeparator()
        self.quit_action = self.menu.addAction("Quit")
        self.icon.setContextMenu(self.menu)
        self._profile_group = QActionGroup(self)

        self.start_stop_action.triggered.connect(self.start_stop_requested)
        self.open_action.triggered.connect(self.open_requested)
        self.pause_action.toggled.connect(self.pause_toggled)
        self.quit_action.triggered.connect(self.quit_requested)
        self.menu.aboutToShow.connect(self.refresh_profiles)
        self.icon.activated.connect(self._activated)
        self._update_tooltip()

    def show(self) -> None:
        self.refresh_profiles()
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def is_visible(self) -> bool:
        return self.icon.isVisible()

    def set_state(self, state: str) -> None:
        """Show idle / listening / transcribing."""
        self.state = state if state in self.icons else "idle"
        self.icon.setIcon(self.icons[self.state])
        self.start_stop_action.setText("Stop dictation" if self.state == "listening" else "Start dictation")
        self._update_tooltip()

    def set_key_summary(self, text: str) -> None:
        self.key_summary = text
        self._update_tooltip()

    def notify(self, text: str) -> None:
        if self.icon.isVisible():
            self.icon.showMessage("Dictation", text, QSystemTrayIcon.MessageIcon.Information, 6000)

    def refresh_profiles(self) -> None:
        """Rebuild the profile submenu (profiles may have come or gone)."""
        try:
            names, current = self.profiles()
        except OSError as exc:
            log.warning("listing profiles for the tray: %s", exc)
            names, current = [], ""
        self.profile_menu.clear()
        for action in self._profile_group.actions():
            self._profile_group.removeAction(action)
        for name in names:
            action = QAction(name, self.profile_menu)
            action.setCheckable(True)
            action.setChecked(name == current)
            action.triggered.connect(lambda _=False, name=name: self.profile_requested.emit(name))
            self._profile_group.addAction(action)
            self.profile_menu.addAction(action)
        self.profile_menu.setEnabled(bool(names))

    def _update_tooltip(self) -> None:
        lines = [f"Dictation: {STATE_WORDS[self.state]}"]
        if self.key_summary:
            lines.append(self.key_summary)
        self.icon.setToolTip("\n".join(lines))

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.open_requested.emit()
        elif reason == QSystemTrayIcon.ActivationReason.MiddleClick:
            self.start_stop_requested.emit()
