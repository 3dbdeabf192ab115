"""A small panel near the bottom centre of the screen while dictating into another
application: the microphone level and the words heard so far.

It never takes the keyboard focus (the text is meant for the application that has it):
it does not accept focus, is a frameless tool window, and is shown without activating.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt, QTimer
from PySide6.QtGui import QCursor, QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from dictation.app.gui.level_meter import LevelMeter

WIDTH = 460
BOTTOM_MARGIN = 56
NOTICE_MS = 6000
PARTIAL_CHARS = 160  # the end of a long partial: what was said last
OVERLAY_STYLE = """
QWidget#overlay { background: rgba(32, 36, 42, 232); border-radius: 10px; }
QLabel { color: #f2f4f7; font-size: 11pt; }
QLabel#state { font-weight: 600; }
QLabel#partial { color: #cfd6de; }
"""
STATE_TEXT = {"listening": "\u25cf Listening", "transcribing": "Transcribing\u2026"}

FLAGS = (
    Qt.WindowType.Tool
    | Qt.WindowType.FramelessWindowHint
    | Qt.WindowType.WindowStaysOnTopHint
    | Qt.WindowType.WindowDoesNotAcceptFocus
)


class Overlay(QWidget):
    """Shown by `set_state("listening" | "transcribing")`, hidden by `set_state("idle")`;
    `show_notice(text)` shows a message for a few seconds."""

    def __init__(self) -> None:
        super().__init__(None, FLAGS)
        self.setObjectName("overlay")
        self.setWindowTitle("Dictation overlay")
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setStyleSheet(OVERLAY_STYLE)
        self.setFixedWidth(WIDTH)
        self.state_label = QLabel("")
        self.state_label.setObjectName("state")
        self.meter = LevelMeter()
        self.partial_label = QLabel("")
        self.partial_label.setObjectName("partial")
        self.partial_label.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.state_label)
        top.addWidget(self.meter, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.addLayout(top)
        layout.addWidget(self.partial_label)
        self.state = "idle"
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self._notice_over)

    def set_state(self, state: str) -> None:
        self.state = state
        if state in STATE_TEXT:
            self._notice_timer.stop()
            self.state_label.setText(STATE_TEXT[state])
            self.meter.setVisible(state == "listening")
            if state == "listening":
                self.partial_label.setText("")
            self._show()
        elif not self._notice_timer.isActive():
            self.hide()

    def set_level(self, level: float) -> None:
        if self.isVisible():
            self.meter.set_level(level)

    def set_partial(self, text: str) -> None:
        text = text.strip()
        if len(text) > PARTIAL_CHARS:
            text = "\u2026" + text[-PARTIAL_CHARS:]
        self.partial_label.setText(text)

    def show_notice(self, text: str) -> None:
        self.state_label.setText("Dictation")
        self.meter.setVisible(False)
        self.partial_label.setText(text)
        self._notice_timer.start(NOTICE_MS)
        self._show()

    def _notice_over(self) -> None:
        if self.state not in STATE_TEXT:
            self.hide()

    def _show(self) -> None:
        self.adjustSize()
        self.move(self._place())
        if not self.isVisible():
            self.show()  # WA_ShowWithoutActivating: the focus stays where it is
        self.raise_()

    def _place(self) -> QPoint:
        """Bottom centre of the screen the pointer is on (where the user works)."""
        screen = QGuiApplication.screenAt(QCursor.pos()) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen is not None else QRect(0, 0, 1280, 800)
        x = area.x() + (area.width() - self.width()) // 2
        y = area.y() + area.height() - self.height() - BOTTOM_MARGIN
        return QPoint(x, y)
