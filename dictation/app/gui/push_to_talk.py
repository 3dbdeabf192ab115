"""Space as a push-to-talk key inside one window (the key in the window is one trigger of
the dictation controller; the on-screen button is another).

Holding a key makes the X server repeat it. Qt flags the repeats (`isAutoRepeat`) when
it can tell, but not always: under Xvfb, and with some XKB set-ups, a held key arrives as
release/press pairs that look like real ones, which ended takes 1-3 s into a hold. So a
release is only committed when no press of the key follows within RELEASE_GRACE_MS: a
repeat's press comes at once (same X timestamp), a person's next press comes much later.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QWidget

# A repeat's press follows its release within a millisecond or two (the X server sends
# both at once); 50 ms leaves room for a busy event loop and is far below how fast a
# person can release and press a key again.
RELEASE_GRACE_MS = 50


class PushToTalkKey(QObject):
    """Space held anywhere in the window of `scope` (outside text fields, no modal dialog).

    `wanted()` says whether Space is push-to-talk now (the window knows which page can
    take it); `recording()` whether a take is running, whose release must not get lost.
    Signals: pressed(), released() (auto-repeat is ignored, flagged or not: a release
    followed by a press within RELEASE_GRACE_MS is a repeat; leaving the window while
    recording counts as a release at once, since the key's release goes to another window).
    """

    pressed = Signal()
    released = Signal()

    def __init__(self, scope: QWidget, wanted: Callable[[], bool], recording: Callable[[], bool]) -> None:
        super().__init__(scope)
        self.scope = scope  # its top-level window is looked up per event: it may be reparented
        self.wanted = wanted
        self.recording = recording
        self._installed = False
        self._held = False  # a press was reported and its release not yet
        self._release_timer = QTimer(self)
        self._release_timer.setSingleShot(True)
        self._release_timer.setInterval(RELEASE_GRACE_MS)
        self._release_timer.timeout.connect(self._commit_release)

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
        if self._release_timer.isActive():
            self._release_timer.stop()
            self._commit_release()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        etype = event.type()
        if etype == QEvent.Type.WindowDeactivate and obj is self.scope.window() and self.recording():
            self._release_timer.stop()
            self._held = False
            self.released.emit()
        if isinstance(event, QKeyEvent) and self._is_space_here(obj, event):
            if not event.isAutoRepeat():  # holding the key repeats it: only the first counts
                if etype == QEvent.Type.KeyPress:
                    self._press()
                else:
                    self._release_timer.start()  # committed unless a press follows at once
            return True
        return super().eventFilter(obj, event)

    def _press(self) -> None:
        if self._release_timer.isActive():  # an unflagged repeat: the key is still held
            self._release_timer.stop()
            return
        self._held = True
        self.pressed.emit()

    def _commit_release(self) -> None:
        self._held = False
        self.released.emit()

    def is_held(self) -> bool:
        """True from a press until its release is committed."""
        return self._held or self._release_timer.isActive()

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
