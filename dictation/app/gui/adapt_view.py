"""Adaptation screen: start/cancel the job, show progress, then before/after accuracy and
whether the new model was installed or kept aside; go back to the previous or the base model."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QMessageBox, QProgressBar, QPushButton, QVBoxLayout, QWidget

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


def kept_aside_text(message: dict) -> str:
    """What the page says when the check kept the model in use: the worker's reason, as
    a sentence ("Kept your current model (the base model): 4.6% → 5.6% word errors ...")."""
    reason = str(message.get("reason") or "kept your current model: the new one did not do better")
    reason = reason.replace(" -> ", " → ")
    return f"{reason[:1].upper()}{reason[1:]}."


class AdaptView(QWidget):
    """Signals: start_requested(), cancel_requested(), record_more_requested(),
    previous_model_requested(), base_model_requested() (after the user confirmed)."""

    start_requested = Signal()
    cancel_requested = Signal()
    record_more_requested = Signal()
    previous_model_requested = Signal()
    base_model_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = label("Adapt to my voice", "title")
        self.intro = label("", "subtitle")
        self.start_button = QPushButton("Adapt to my voice")
        self.start_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel")
        self.more_button = QPushButton("Record more sentences")
        self.previous_button = QPushButton("Use previous model")
        self.previous_button.setToolTip("Go back to the adapted model installed before the last one")
        self.base_button = QPushButton("Use base model")
        self.base_button.setToolTip("Remove the adapted models and dictate with the base model; recordings are kept")
        self._adaptation: AdaptationController | None = None
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
        models = QHBoxLayout()
        models.addWidget(self.previous_button)
        models.addWidget(self.base_button)
        models.addStretch(1)

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
        layout.addLayout(models)
        layout.addStretch(1)

        self.start_button.clicked.connect(self.start_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.more_button.clicked.connect(self.record_more_requested)
        self.previous_button.clicked.connect(self._ask_previous_model)
        self.base_button.clicked.connect(self._ask_base_model)
        self.set_running(False)

    def attach(self, adaptation: AdaptationController) -> None:
        """Send Start and Cancel to `adaptation`; show what it reports."""

        def cancel() -> None:
            if adaptation.is_running():
                self.step_label.setText("Cancelling\u2026")
                adaptation.cancel()

        def switched(problem: str | None) -> None:
            if problem:
                set_state(self.status, f"Could not switch models: {problem}", "bad")
            else:
                set_state(self.status, "", "idle")
                self.result_label.clear()
                self.chart.hide()
            self._update_model_buttons()

        self._adaptation = adaptation
        self.start_requested.connect(adaptation.start)
        self.cancel_requested.connect(cancel)
        self.previous_model_requested.connect(lambda: switched(adaptation.use_previous_model()))
        self.base_model_requested.connect(lambda: switched(adaptation.use_base_model()))
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
            "your sentences is recognised by a model adapted on the other half. The new model is "
            "used only if it does better there than the base model; otherwise your current model "
            "stays and the new one is kept aside.\n\n"
            f"Model in use: {model_text}."
        )
        self.notice.setText(notice)
        self.notice.setVisible(bool(notice))
        self.start_button.setText("Adapt again" if notice else "Adapt to my voice")
        self.start_button.setEnabled(takes > 0 and not self.cancel_button.isEnabled())
        self._update_model_buttons()

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.more_button.setEnabled(not running)
        self._update_model_buttons(running)
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
            shrink = message.get("shrink")
            half = "" if shrink in (None, 1.0) else f" (the update at {shrink:g} of its strength fitted you best)"
            set_state(self.status, f"\u2713 Done. Your adapted model is now in use{half}.", "good")
        else:
            set_state(self.status, kept_aside_text(message), "idle")
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

    def _update_model_buttons(self, running: bool | None = None) -> None:
        """Offer the previous model where the profile keeps one, the base model where an
        adapted one is in use; neither while adapting."""
        if running is None:
            running = self.cancel_button.isEnabled()
        adaptation = self._adaptation
        self.previous_button.setEnabled(not running and adaptation is not None and adaptation.has_previous_model())
        self.base_button.setEnabled(not running and adaptation is not None and adaptation.has_adapted_model())

    def _ask_previous_model(self) -> None:
        answer = QMessageBox.question(
            self,
            "Use previous model",
            "Go back to the adapted model installed before the last one? The current adapted "
            "model is removed; your recordings are kept.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.previous_model_requested.emit()

    def _ask_base_model(self) -> None:
        answer = QMessageBox.question(
            self,
            "Use base model",
            "Remove your adapted models and dictate with the base model? Your recordings are "
            "kept, and you can adapt again at any time.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.base_model_requested.emit()

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
