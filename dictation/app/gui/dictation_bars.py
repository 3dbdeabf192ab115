"""Two bars of the dictation page: notices (said once, until dismissed) and the
dictations whose recordings are kept untranscribed (with "Transcribe again")."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QMessageBox, QPushButton, QSizePolicy, QWidget

from dictation.app.gui.style import label


class NoticeBar(QWidget):
    """Notices (a profile's set-aside files, a model that could not be used), each shown
    once, until the user dismisses them. Hidden while there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = label("", "notice")
        # A long notice wraps instead of widening the window.
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.dismiss_button = QPushButton("Dismiss")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.dismiss_button)
        self.dismiss_button.clicked.connect(self.clear)
        self.hide()

    def add(self, notice: str) -> None:
        shown = [line for line in self.text.text().split("\n") if line]
        if notice and notice not in shown:
            self.text.setText("\n".join([*shown, notice]))
        self.setVisible(bool(self.text.text()))

    def clear(self) -> None:
        self.text.setText("")
        self.hide()


class PendingBar(QWidget):
    """How many dictations wait with their recording kept, untranscribed.

    Signals: retry_requested(), discard_requested() (after the user confirmed).
    """

    retry_requested = Signal()
    discard_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = label("", "bad")
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.retry_button = QPushButton("Transcribe again")
        self.discard_button = QPushButton("Discard")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.retry_button)
        layout.addWidget(self.discard_button)
        self.retry_button.clicked.connect(self.retry_requested)
        self.discard_button.clicked.connect(self._confirm_discard)
        self.hide()

    def set_count(self, count: int) -> None:
        if count:
            self.text.setText(
                f"{count} dictation{'s' if count > 1 else ''} not transcribed yet; "
                f"{'their recordings are' if count > 1 else 'its recording is'} kept."
            )
        self.setVisible(count > 0)

    def _confirm_discard(self) -> None:
        answer = QMessageBox.question(
            self,
            "Discard recordings",
            "Delete the recordings that were not transcribed? What was said in them is lost.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.discard_requested.emit()
