"""The bundled model's measured learning curve, painted with QPainter (the style of
accuracy_chart): word error rate against the number of enrollment takes, for the base
model, the meta-learned (MAML) adaptation and, when measured, plain fine-tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QVBoxLayout, QWidget

from dictation.app.gui.style import label
from dictation.app.learning_curve import (
    NOT_MEASURED,
    CurveError,
    LearningCurve,
    curve_caption,
    curve_summary,
    load_learning_curve,
)

# (name, colour, dashed): the base line is grey and dashed like accuracy_chart's "Before".
SERIES = (
    ("Base model", QColor("#9aa5b1"), True),
    ("Adapted (meta-learned)", QColor("#2f7dd1"), False),
    ("Plain fine-tuning", QColor("#d1822f"), False),
)


class LearningCurveChart(QWidget):
    """Lines of WER (%) over the takes; one evenly spaced column per number of takes
    (the takes measured double, 10, 20, 40, 80, so even spacing reads as a log scale)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._takes: list[int] = []
        self._series: list[tuple[str, QColor, bool, list[float | None]]] = []
        self.setMinimumHeight(160)
        self.setAccessibleName("Measured learning curve: word error rate after N takes")

    def sizeHint(self) -> QSize:
        return QSize(420, 190)

    def series(self) -> dict[str, list[tuple[int, float]]]:
        """Name -> (takes, WER %) of each line drawn."""
        return {
            name: [(n, v) for n, v in zip(self._takes, values, strict=True) if v is not None]
            for name, _, _, values in self._series
        }

    def set_curve(self, curve: LearningCurve | None) -> None:
        self._takes, self._series = [], []
        if curve is not None:
            self._takes = [p.takes for p in curve.points]
            columns: list[list[float | None]] = [
                [100.0 * p.base_wer for p in curve.points],
                [100.0 * p.maml_wer for p in curve.points],
                [None if p.finetune_wer is None else 100.0 * p.finetune_wer for p in curve.points],
            ]
            for (name, color, dashed), values in zip(SERIES, columns, strict=True):
                if any(v is not None for v in values):
                    self._series.append((name, color, dashed, values))
        self.setAccessibleDescription(
            "; ".join(
                f"{name}: " + ", ".join(f"{n} takes {v:.1f} %" for n, v in pts) for name, pts in self.series().items()
            )
        )
        self.update()

    def paintEvent(self, event: Any) -> None:
        if not self._series:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = painter.fontMetrics()
        text_h = metrics.height() + 4
        text = self.palette().text().color()
        left = metrics.horizontalAdvance("100 %") + 8
        top = text_h * len(self._series)  # the legend, one line per series
        plot = QRectF(left, top + 4, max(10.0, self.width() - left - 12), max(10.0, self.height() - top - 2 * text_h))
        highest = max(v for *_, values in self._series for v in values if v is not None)
        ceiling = max(5.0, _nice_ceiling(highest * 1.15))
        # Axes: a light frame, the 0 and top gridlines with their labels.
        painter.setPen(QPen(QColor("#eceff3"), 1))
        painter.drawRect(plot)
        painter.drawLine(QPointF(plot.left(), plot.center().y()), QPointF(plot.right(), plot.center().y()))
        painter.setPen(text)
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for value, y in ((ceiling, plot.top()), (ceiling / 2, plot.center().y()), (0.0, plot.bottom())):
            painter.drawText(QRectF(0, y - text_h / 2, left - 6, text_h), right, f"{value:.0f} %")
        slot = plot.width() / len(self._takes)
        xs = [plot.left() + slot * (i + 0.5) for i in range(len(self._takes))]
        centre = Qt.AlignmentFlag.AlignCenter
        for x, n in zip(xs, self._takes, strict=True):
            painter.drawText(QRectF(x - slot / 2, plot.bottom() + 2, slot, text_h), centre, f"{n} takes")
        for i, (name, color, dashed, values) in enumerate(self._series):
            pen = QPen(color, 2.5, Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
            points = [
                QPointF(x, plot.bottom() - plot.height() * v / ceiling)
                for x, v in zip(xs, values, strict=True)
                if v is not None
            ]
            painter.setPen(pen)
            for a, b in zip(points, points[1:], strict=False):
                painter.drawLine(a, b)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            for p in points:
                painter.drawEllipse(p, 3.5, 3.5)
            # Legend: a short sample of the line, then the name.
            y = i * text_h + text_h / 2
            painter.setPen(pen)
            painter.drawLine(QPointF(left, y), QPointF(left + 24, y))
            painter.setPen(text)
            painter.drawText(QRectF(left + 30, i * text_h, plot.width(), text_h), Qt.AlignmentFlag.AlignVCenter, name)
        painter.end()


class LearningCurveView(QWidget):
    """The chart with its caption (what was measured, on whom, with which command), or a
    plain sentence when the bundle has no curve or its file is damaged."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chart = LearningCurveChart()
        self.summary = label("", "subtitle")
        self.caption = label("", "subtitle")
        for text in (self.summary, self.caption):
            text.setTextFormat(Qt.TextFormat.PlainText)  # a command line may hold "<"
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.chart, self.summary, self.caption):
            layout.addWidget(widget)
        self.curve: LearningCurve | None = None

    def load(self, bundle_dir: Path | None = None, shipped_version: str | None = None) -> None:
        """Show the curve of `bundle_dir` (default: the bundled model's)."""
        try:
            curve = load_learning_curve(bundle_dir)
        except CurveError as exc:
            self.show_curve(None, f"The measured learning curve cannot be shown: {exc}")
            return
        self.show_curve(curve, NOT_MEASURED, shipped_version)

    def show_curve(self, curve: LearningCurve | None, missing: str = NOT_MEASURED, shipped: str | None = None) -> None:
        self.curve = curve
        self.chart.set_curve(curve)
        self.chart.setVisible(curve is not None)
        self.summary.setText("" if curve is None else curve_summary(curve))
        self.summary.setVisible(curve is not None)
        self.caption.setText(missing if curve is None else curve_caption(curve, shipped))


def _nice_ceiling(value: float) -> float:
    """The next multiple of 5 (or of 1 below 5) at or above `value`."""
    step = 5.0 if value > 5 else 1.0
    return step * -(-value // step)
