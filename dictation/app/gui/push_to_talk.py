"""Space as a push-to-talk key inside one window (the key in the window is one trigger of
the dictation controller; the on-screen button is another)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QWidget


class PushToTalkKey(QObject):
    """Space held anywhere in the window of `scope` (outside text fields, no modal dialog).

    `wanted()` says whether Space is push-to-talk now (the window knows which page can
    take it); `recording()` whether a take is running, whose release must not get lost.
    Signals: pressed(), released() (auto-repeat is ignored; leaving the window while
    recording counts as a release, since the key's release goes to another window).
    """

    pressed = Signal()
    released = Signal()

    def __init__(self, scope: QWidget, wanted: Callable[[], bool], recording: Callable[[], bool]) -> None:
        super().__init__(scope)
        self.scope = scope  # its top-level window is looked up per event: it may be reparented
        self.wanted = wanted
        self.recording = recording
        self._installed = False

    def install(self) -> None:
        """Start watching key events (an application-wide filter: Space goes to whichever
        widget has focus, and it must be caught before a button or list acts on it)."""
        app = QCoreApplication.instance()
        if app is not None and not self._installed:
            app.installEventFilter(self)
            self._installed = True

    def remove(self) -> None:
        app = QCoreApplication.instance()
        if app is not None and self._installed:
            app.removeEventFilter(self)
        self._installed = False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        etype = event.type()
        if etype == QEvent.Type.WindowDeactivate and obj is self.scope.window() and self.recording():
            self.released.emit()
        if isinstance(event, QKeyEvent) and self._is_space_here(obj, event):
            if not event.isAutoRepeat():  # holding the key repeats it: only the first counts
                if etype == QEvent.Type.KeyPress:
                    self.pressed.emit()
                else:
                    self.released.emit()
            return True
        return super().eventFilter(obj, event)

    def _is_space_here(self, obj: QObject, event: QKeyEvent) -> bool:
        """Space pressed or released in the window, and push-to-talk wants it now."""
        return (
            event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease)
            and event.key() == Qt.Key.Key_Space
            and isinstance(obj, QWidget)
            and obj.window() is self.scope.window()
            and QApplication.activeModalWidget() is None
            and (self.wanted() or self.recording())
        )
