"""The "What I learned" page: the consent to learn from use, the material kept (listen to
any item, delete any item) and accuracy over time.

Accuracy over time is measured two ways, both on the user's own dictations:
- per week, the share of words the user did not have to correct among the dictations
  kept for learning (accepted ones count as right; a correction's errors are the words
  between what was recognised and what the user wrote). Accepted dictations are kept
  only when the model was sure, so this leans optimistic; its trend is what it is for;
- per adaptation run, its check on recordings the adapted model did not learn from
  (before / after), as the Adapt page shows it.

Below them, for comparison, the bundled model's learning curve as measured before release
on held-out speakers (curve_chart; "not measured" when the bundle has none).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QScrollArea,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dictation.app.gui.accuracy_chart import AccuracyChart
from dictation.app.gui.adapt_view import accuracy_percent
from dictation.app.gui.curve_chart import LearningCurveView
from dictation.app.gui.learning import CONFIDENCE_THRESHOLD, Learning, learning_enabled
from dictation.app.gui.style import label, set_state
from dictation.app.profiles import ProfileError
from dictation.app.profiles.learned import LearnedItem

log = logging.getLogger(__name__)

COLUMNS = ("When", "Kind", "Text", "Model's confidence")
WEEKS_SHOWN = 12
CONSENT_TEXT = (
    "When this is on, a dictation you accept unchanged (it is copied or typed into an "
    "application and you do not correct it) and that the model was sure of is kept here "
    "with its recording, beside the corrections you make. When enough new material has "
    "gathered and you have not dictated for a few minutes, the model adapts to it in the "
    "background, at the lowest priority, so dictation never waits; the adaptation's check "
    "on your own recordings decides whether the new model is used. Everything stays on "
    "this computer. At most {cap} items are kept: the oldest accepted dictations make room, "
    "corrections stay until you delete them. When this is off, nothing new is kept."
)


def weekly_accuracy(items: list[LearnedItem], today: date | None = None) -> list[tuple[str, float]]:
    """(week label, % of words right) for each of the last `WEEKS_SHOWN` weeks with
    dictations, oldest first."""
    words_by_week: dict[date, list[int]] = {}
    for item in items:
        try:
            day = datetime.fromisoformat(item.created).date()
        except ValueError:
            continue
        week = day - timedelta(days=day.weekday())
        errors, words = item.word_errors()
        counts = words_by_week.setdefault(week, [0, 0])
        counts[0] += min(errors, words)
        counts[1] += words
    first = (today or date.today()) - timedelta(weeks=WEEKS_SHOWN)
    return [
        (week.strftime("%d %b"), 100.0 * (1 - errors / words))
        for week, (errors, words) in sorted(words_by_week.items())
        if words and week > first
    ]


def run_line(run: dict) -> str:
    """One adaptation run in words, e.g. "12 May 14:03, background: 91.0 % -> 93.5 %, installed"."""
    try:
        when = datetime.fromisoformat(run["started"]).astimezone().strftime("%d %b %H:%M")
    except ValueError:
        when = run["started"]
    parts = [f"{when}, {run.get('kind', 'manual')}"]
    before, after = accuracy_percent(run.get("before_wer")), accuracy_percent(run.get("after_wer"))
    if before is not None and after is not None:
        parts.append(f"words right {before:.1f} % \u2192 {after:.1f} %")
    parts.append({"installed": "new model in use", "kept": "model in use kept"}.get(run.get("status", ""), ""))
    return ": ".join([parts[0], ", ".join(p for p in parts[1:] if p) or str(run.get("status", ""))])


class AccuracyOverTime(QWidget):
    """Columns of accuracy (%) with a label under each, e.g. one per week."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._points: list[tuple[str, float]] = []
        self.setMinimumHeight(120)
        self.setAccessibleName("Accuracy on your dictations over time")

    def sizeHint(self) -> QSize:
        return QSize(420, 140)

    def points(self) -> list[tuple[str, float]]:
        return list(self._points)

    def set_points(self, points: list[tuple[str, float]]) -> None:
        self._points = [(text, min(max(float(value), 0.0), 100.0)) for text, value in points]
        self.update()

    def paintEvent(self, event: Any) -> None:
        if not self._points:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = painter.fontMetrics()
        text_h = metrics.height() + 4
        slot = self.width() / len(self._points)
        plot_h = max(10.0, self.height() - 2 * text_h)
        for i, (text, value) in enumerate(self._points):
            x = i * slot
            bar_h = plot_h * value / 100.0
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#eceff3"))
            painter.drawRoundedRect(QRectF(x + slot * 0.2, text_h, slot * 0.6, plot_h), 3, 3)
            painter.setBrush(QColor("#2f7dd1"))
            painter.drawRoundedRect(QRectF(x + slot * 0.2, text_h + plot_h - bar_h, slot * 0.6, bar_h), 3, 3)
            painter.setPen(self.palette().text().color())
            centre = Qt.AlignmentFlag.AlignCenter
            painter.drawText(QRectF(x, 0, slot, text_h), centre, f"{value:.0f} %")
            painter.drawText(QRectF(x, text_h + plot_h, slot, text_h), centre, text)
        painter.end()


def _shipped_version() -> str | None:
    from dictation.app.base_model import bundled_model_version
    from dictation.app.runtime import ModelMissingError

    try:
        return bundled_model_version()
    except (ModelMissingError, OSError):
        return None


class LearnedPage(QWidget):
    """The page; `attach(learning)` connects it to the open profile's material."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.learning: Learning | None = None
        self.profile: Any = None
        self.title = label("What I learned", "title")
        self.consent = QCheckBox("Learn from my dictations")
        self.consent.setChecked(True)
        self.explanation = label("", "subtitle")
        self.summary = label("", "idle")
        self.items_view = QTreeWidget()
        self.items_view.setHeaderLabels(list(COLUMNS))
        self.items_view.setRootIsDecorated(False)
        self.items_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.items_view.header().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.items_view.setMinimumHeight(160)  # the page scrolls; the list keeps a usable height
        self.play_button = QPushButton("Listen")
        self.delete_button = QPushButton("Delete")
        self.status = label("", "idle")
        self.weekly_chart = AccuracyOverTime()
        self.runs_label = label("", "subtitle")
        self.run_chart = AccuracyChart()
        self.run_chart.hide()
        self.curve_view = LearningCurveView()
        self.curve_view.load(shipped_version=_shipped_version())

        buttons = QHBoxLayout()
        buttons.addWidget(self.play_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        # The page scrolls: the charts below the list need not fit a small window.
        content = QWidget()
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(32, 24, 32, 24)
        layout.setSpacing(10)
        for widget in (self.title, self.consent, self.explanation, self.summary, self.items_view):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(label("Words right in your dictations, per week", "progress"))
        layout.addWidget(self.weekly_chart)
        layout.addWidget(label("Adaptation runs (checked on recordings each model did not learn from)", "progress"))
        layout.addWidget(self.runs_label)
        layout.addWidget(self.run_chart)
        layout.addWidget(label("How the speech model learns a voice (measured before release)", "progress"))
        layout.addWidget(self.curve_view)

        self.consent.toggled.connect(self._consent_toggled)
        self.play_button.clicked.connect(self.play_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.items_view.itemSelectionChanged.connect(self._selection_changed)
        self._selection_changed()

    def attach(self, learning: Learning) -> None:
        """Show `learning`'s profile material, and refresh when it changes."""
        self.learning = learning
        learning.session.opened.connect(self.set_profile)
        learning.hooks.changed.connect(self.refresh)
        learning.scheduler.run_recorded.connect(lambda _run: self.refresh())
        if learning.session.profile is not None:
            self.set_profile(learning.session.profile)

    def set_profile(self, profile: Any) -> None:
        self.profile = profile
        self.refresh()

    def refresh(self) -> None:
        """Read the open profile's material and runs again."""
        profile = self.profile
        cap = profile.learned_material.cap if profile is not None else 0
        self.explanation.setText(CONSENT_TEXT.format(cap=cap))
        settings = self.learning.session.settings if self.learning is not None else {}
        self.consent.blockSignals(True)
        self.consent.setChecked(learning_enabled(settings))
        self.consent.blockSignals(False)
        self.items_view.clear()
        if profile is None:
            return
        try:
            items, runs = profile.learned(), profile.learned_material.runs()
        except (ProfileError, OSError) as exc:
            set_state(self.status, f"The material cannot be read: {exc}", "bad")
            return
        for item in reversed(items):  # newest first
            self.items_view.addTopLevelItem(self._row(item))
        self.items_view.resizeColumnToContents(0)
        self._show_summary(items)
        self.weekly_chart.set_points(weekly_accuracy(items))
        self._show_runs(runs)

    def _row(self, item: LearnedItem) -> QTreeWidgetItem:
        try:
            when = datetime.fromisoformat(item.created).astimezone().strftime("%d %b %H:%M")
        except ValueError:
            when = item.created
        if item.source == "accepted":
            kind = "accepted"
        else:
            kind = "marked correct" if item.word_errors()[0] == 0 else "corrected"
        confidence = "" if item.confidence is None else f"{item.confidence * 100:.0f} %"
        row = QTreeWidgetItem([when, kind, item.text, confidence])
        row.setData(0, Qt.ItemDataRole.UserRole, item)
        if item.source == "corrected" and kind == "corrected":
            row.setToolTip(2, f"Recognised as: {item.hypothesis}")
        return row

    def _show_summary(self, items: list[LearnedItem]) -> None:
        accepted = sum(1 for item in items if item.source == "accepted")
        text = (
            f"{len(items)} items: {accepted} accepted dictations, {len(items) - accepted} corrections. "
            f"Dictations are kept when the model's confidence is {CONFIDENCE_THRESHOLD * 100:.0f} % or more."
        )
        if self.learning is not None:
            reason = self.learning.scheduler.why_not()
            text += f" Background adaptation: {reason or 'about to start'}."
        self.summary.setText(text)

    def _show_runs(self, runs: list[dict]) -> None:
        self.runs_label.setText("\n".join(run_line(run) for run in runs[-5:]) or "No adaptation run yet.")
        measured = [run for run in runs if run.get("before_wer") is not None and run.get("after_wer") is not None]
        if measured:
            last = measured[-1]
            self.run_chart.set_values(accuracy_percent(last["before_wer"]), accuracy_percent(last["after_wer"]))
        self.run_chart.setVisible(bool(measured))

    # -- actions ---------------------------------------------------------------------

    def selected_items(self) -> list[LearnedItem]:
        return [row.data(0, Qt.ItemDataRole.UserRole) for row in self.items_view.selectedItems()]

    def _selection_changed(self) -> None:
        count = len(self.items_view.selectedItems())
        self.play_button.setEnabled(count == 1)
        self.delete_button.setEnabled(count > 0)

    def play_selected(self) -> None:
        from dictation.app.audio import AudioFileError, load_audio
        from dictation.app.gui import playback

        items = self.selected_items()
        if len(items) != 1:
            return
        try:
            audio = load_audio(items[0].wav_path)
        except (AudioFileError, OSError, ValueError) as exc:
            set_state(self.status, f"The recording cannot be read: {exc}", "bad")
            return
        problem = playback.play(audio, 16000)
        set_state(self.status, problem or f"Playing \u201c{items[0].text}\u201d.", "bad" if problem else "idle")

    def delete_selected(self) -> None:
        """Delete the selected items (the user asked, with the Delete button)."""
        if self.profile is None:
            return
        deleted = 0
        for item in self.selected_items():
            try:
                self.profile.remove_learned(item.id)
                deleted += 1
            except (ProfileError, OSError) as exc:
                set_state(self.status, f"Could not delete \u201c{item.text}\u201d: {exc}", "bad")
                self.refresh()
                return
        self.refresh()
        set_state(self.status, f"Deleted {deleted} item{'s' if deleted != 1 else ''}.", "idle")

    def _consent_toggled(self, on: bool) -> None:
        if self.learning is not None:
            self.learning.hooks.set_enabled(on)
        set_state(
            self.status,
            "Learning from your dictations is on." if on else "Learning is off: nothing new is kept.",
            "idle",
        )
        self.refresh()
