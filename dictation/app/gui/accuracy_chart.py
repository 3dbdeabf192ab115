"""A small before/after accuracy bar chart painted with QPainter."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QWidget

_BEFORE = QColor("#9aa5b1")
_AFTER = QColor("#2f7dd1")


class AccuracyChart(QWidget):
    """Two horizontal bars: word accuracy (%) before and after adaptation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bars: list[tuple[str, float, QColor]] = []
        self.setMinimumHeight(90)
        self.setAccessibleName("Accuracy before and after adaptation")

    def sizeHint(self) -> QSize:
        return QSize(360, 96)

    def values(self) -> list[tuple[str, float]]:
        return [(label, value) for label, value, _ in self._bars]

    def set_values(self, before: float | None, after: float | None) -> None:
        """Accuracies in percent (0..100); None hides that bar."""
        self._bars = []
        if before is not None:
            self._bars.append(("Before", _clamp(before), _BEFORE))
        if after is not None:
            self._bars.append(("After", _clamp(after), _AFTER))
        self.update()

    def paintEvent(self, event) -> None:
        if not self._bars:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        painter.setFont(font)
        metrics = painter.fontMetrics()
        label_w = max(metrics.horizontalAdvance(label) for label, _, _ in self._bars) + 12
        value_w = metrics.horizontalAdvance("100.0 %") + 12
        row_h = min(34.0, self.height() / len(self._bars))
        track_w = max(10.0, self.width() - label_w - value_w)
        for i, (label, value, color) in enumerate(self._bars):
            y = i * row_h
            bar_h = row_h * 0.6
            bar_y = y + (row_h - bar_h) / 2
            painter.setPen(self.palette().text().color())
            painter.drawText(QRectF(0, y, label_w, row_h), Qt.AlignmentFlag.AlignVCenter, label)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#eceff3"))
            painter.drawRoundedRect(QRectF(label_w, bar_y, track_w, bar_h), 3, 3)
            painter.setBrush(color)
            painter.drawRoundedRect(QRectF(label_w, bar_y, track_w * value / 100.0, bar_h), 3, 3)
            painter.setPen(self.palette().text().color())
            painter.drawText(
                QRectF(label_w + track_w + 8, y, value_w, row_h),
                Qt.AlignmentFlag.AlignVCenter,
                f"{value:.1f} %",
            )
        painter.end()


def _clamp(value: float) -> float:
    return min(max(float(value), 0.0), 100.0)
