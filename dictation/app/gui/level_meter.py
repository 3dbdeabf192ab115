"""A horizontal input level meter (0..1) with a short peak hold."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

_GREEN = QColor("#3a9d5d")
_AMBER = QColor("#d49a1f")
_RED = QColor("#c8443c")
_TRACK = QColor("#e3e6ea")


class LevelMeter(QWidget):
    """Shows the current microphone level; amber near the top, red when clipping."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._level = 0.0
        self._peak = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName("Microphone level")

    def sizeHint(self) -> QSize:
        return QSize(220, 14)

    def level(self) -> float:
        return self._level

    def set_level(self, level: float) -> None:
        """Set the level (0..1; values outside are clamped)."""
        level = min(max(float(level), 0.0), 1.0)
        self._level = level
        # Peak hold decays slowly so short syllables stay visible.
        self._peak = max(level, self._peak * 0.92)
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(_TRACK)
        painter.drawRoundedRect(rect, 4, 4)
        color = _GREEN if self._level < 0.7 else _AMBER if self._level < 0.95 else _RED
        painter.setBrush(color)
        filled = QRectF(rect.x(), rect.y(), rect.width() * self._level, rect.height())
        if filled.width() > 0:
            painter.drawRoundedRect(filled, 4, 4)
        if self._peak > 0.01:
            x = rect.x() + rect.width() * self._peak
            painter.setBrush(QColor("#55606b"))
            painter.drawRect(QRectF(x - 1, rect.y(), 2, rect.height()))
        painter.end()
