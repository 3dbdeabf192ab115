"""First run: name a profile and pick the microphone (with a live level meter)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from dictation.app.gui.level_meter import LevelMeter
from dictation.app.gui.style import label, set_state

NO_MIC_TEXT = (
    "No microphone was found. You can still create a profile and transcribe audio files "
    "(File \u2192 Transcribe file\u2026); connect a microphone and pick it in Settings to dictate."
)


class FirstRunPage(QWidget):
    """Emits create_requested(name, microphone or "") when the user clicks Create."""

    create_requested = Signal(str, str)
    microphone_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = label("Welcome to Dictation", "title")
        self.subtitle = label(
            "Dictation learns your voice on this computer. Create a profile, choose your "
            "microphone, then read a few sentences aloud so it can adapt to you.",
            "subtitle",
        )
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. Alex")
        self.name_edit.setMaxLength(64)
        self.mic_combo = QComboBox()
        self.mic_combo.setMinimumWidth(320)
        self.meter = LevelMeter()
        self.mic_status = label("", "idle")
        self.error_label = label("", "bad")
        self.create_button = QPushButton("Create profile")
        self.create_button.setObjectName("primary")
        self.create_button.setDefault(True)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Your name:", self.name_edit)
        form.addRow("Microphone:", self.mic_combo)
        form.addRow("Level:", self.meter)
        form.addRow("", self.mic_status)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.create_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(48, 40, 48, 40)
        layout.setSpacing(14)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addSpacing(8)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addStretch(1)
        layout.addLayout(buttons)

        self.create_button.clicked.connect(self._create)
        self.name_edit.returnPressed.connect(self._create)
        self.name_edit.textChanged.connect(lambda _: self.error_label.clear())
        self.mic_combo.currentIndexChanged.connect(self._mic_changed)

    def set_microphones(self, names: list[str], current: str | None = None) -> None:
        """Fill the microphone list; an empty list shows the no-microphone message."""
        self.mic_combo.blockSignals(True)
        self.mic_combo.clear()
        self.mic_combo.addItems(names)
        if current and current in names:
            self.mic_combo.setCurrentText(current)
        self.mic_combo.blockSignals(False)
        self.mic_combo.setEnabled(bool(names))
        if names:
            set_state(self.mic_status, "Speak: the bar should move.", "idle")
        else:
            set_state(self.mic_status, NO_MIC_TEXT, "bad")
        self.meter.setEnabled(bool(names))

    def show_microphone_error(self, message: str) -> None:
        set_state(self.mic_status, message, "bad")

    def microphone(self) -> str:
        return self.mic_combo.currentText() if self.mic_combo.count() else ""

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)

    def _mic_changed(self, _index: int) -> None:
        self.microphone_changed.emit(self.microphone())

    def _create(self) -> None:
        name = self.name_edit.text().strip()
        if not name:
            self.show_error("Please enter a name for your profile.")
            return
        self.create_requested.emit(name, self.microphone())
