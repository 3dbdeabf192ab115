"""Adaptation screen: start/cancel the job, show progress, then before/after accuracy."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QVBoxLayout, QWidget

from dictation.app.gui.accuracy_chart import AccuracyChart
from dictation.app.gui.style import label, set_state

if TYPE_CHECKING:
    from dictation.app.gui.adaptation_controller import AdaptationController


def format_eta(seconds: float) -> str:
    """ "about 2 min left" style text (empty when unknown)."""
    if seconds is None or seconds < 0 or math.isnan(seconds):
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    return f"about {round(seconds / 60)} min left"


def accuracy_percent(wer: float | None) -> float | None:
    """Word accuracy in percent from a WER fraction (WER above 1 counts as 0 %)."""
    if wer is None:
        return None
    return max(0.0, (1.0 - float(wer)) * 100.0)


class AdaptView(QWidget):
    """Signals: start_requested(), cancel_requested(), record_more_requested()."""

    start_requested = Signal()
    cancel_requested = Signal()
    record_more_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = label("Adapt to my voice", "title")
        self.intro = label("", "subtitle")
        self.start_button = QPushButton("Adapt to my voice")
        self.start_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel")
        self.more_button = QPushButton("Record more sentences")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.step_label = label("", "idle")
        self.status = label("", "idle")
        self.result_label = label("", "subtitle")
        self.notice = label("", "notice")
        self.notice.hide()
        self.chart = AccuracyChart()
        self.chart.hide()

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.more_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 24, 32, 24)
        layout.setSpacing(12)
        layout.addWidget(self.title)
        layout.addWidget(self.intro)
        layout.addWidget(self.notice)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.step_label)
        layout.addWidget(self.status)
        layout.addWidget(self.result_label)
        layout.addWidget(self.chart)
        layout.addStretch(1)

        self.start_button.clicked.connect(self.start_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.more_button.clicked.connect(self.record_more_requested)
        self.set_running(False)

    def attach(self, adaptation: AdaptationController) -> None:
        """Send Start and Cancel to `adaptation`; show what it reports."""

        def cancel() -> None:
            if adaptation.is_running():
                self.step_label.setText("Cancelling\u2026")
                adaptation.cancel()

        self.start_requested.connect(adaptation.start)
        self.cancel_requested.connect(cancel)
        adaptation.started.connect(lambda: self.set_running(True))
        adaptation.progress.connect(self.show_progress)
        adaptation.status.connect(self.step_label.setText)
        adaptation.finished.connect(self.show_finished)
        adaptation.failed.connect(self.show_failed)
        adaptation.cancelled.connect(self.show_cancelled)

    def set_summary(self, takes: int, corrections: int, model_text: str, notice: str = "") -> None:
        """What adaptation will use and which model is in use now; `notice` (if any) asks to
        adapt again, e.g. after an update shipped a newer speech model."""
        extra = f" and {corrections} corrections" if corrections else ""
        self.intro.setText(
            f"Your profile has {takes} recorded sentences{extra}. Adaptation fine-tunes the "
            "speech model to your voice on this computer, then checks the result: each half of "
            "your sentences is recognised by a model adapted on the other half. A model the "
            f"check shows broken is not installed.\n\n"
            f"Model in use: {model_text}."
        )
        self.notice.setText(notice)
        self.notice.setVisible(bool(notice))
        self.start_button.setText("Adapt again" if notice else "Adapt to my voice")
        self.start_button.setEnabled(takes > 0 and not self.cancel_button.isEnabled())

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.more_button.setEnabled(not running)
        if running:
            self.progress.setRange(0, 0)  # busy until the first progress message
            self.step_label.setText("Starting\u2026")
            set_state(self.status, "", "idle")
            self.result_label.clear()
            self.chart.hide()

    def show_progress(self, step: int, total: int, loss: float, eta_seconds: float) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
        parts = [f"Step {step} of {total}"]
        eta = format_eta(eta_seconds)
        if eta:
            parts.append(eta)
        if not math.isnan(loss):
            parts.append(f"loss {loss:.3f}")
        self.step_label.setText(" \u00b7 ".join(parts))

    def show_finished(self, message: dict) -> None:
        self.set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        before = accuracy_percent(message.get("before_wer"))
        after = accuracy_percent(message.get("after_wer"))
        if message.get("installed"):
            set_state(self.status, "\u2713 Done. Your adapted model is now in use.", "good")
        else:
            reason = str(message.get("reason") or "it was not better than the current model")
            set_state(self.status, f"Finished, but the model in use was kept: {reason}.", "idle")
        if before is not None and after is not None:
            self.result_label.setText(
                "Words recognised correctly in your sentences, each by a model adapted without it: "
                f"before {before:.1f} %, "
                f"after {after:.1f} %  (word error rate {message['before_wer'] * 100:.1f} % "
                f"\u2192 {message['after_wer'] * 100:.1f} %)."
            )
            self.chart.set_values(before, after)
            self.chart.show()
        self.step_label.clear()

    def show_failed(self, message: str) -> None:
        self.set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.step_label.clear()
        set_state(self.status, f"Adaptation failed: {message} Your previous model is still in use.", "bad")

    def show_cancelled(self) -> None:
        self.set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.step_label.clear()
        set_state(self.status, "Adaptation cancelled. Your previous model is still in use.", "idle")
