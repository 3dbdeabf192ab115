"""The settings page for dictating into any application: the system-wide key, its mode,
the silence auto-stop, how the text is delivered, the overlay and sounds, and starting
with the desktop (hidden in the tray).

The key settings are the profile's, under the names `dictation listen` reads too;
starting with the desktop and starting hidden belong to the app (`APP_KEYS`).
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from dictation.app.delivery import DEFAULT_OUTPUT, DEFAULT_PASTE_KEY, OUTPUT_MODES
from dictation.app.gui.style import label
from dictation.app.hotkeys import KeySpecError, parse_key
from dictation.app.listen import DEFAULT_KEY, DEFAULT_MODE, DEFAULT_SILENCE_S, MODES

ANYWHERE_DEFAULTS: dict = {
    "hotkey": False,
    "listen_key": DEFAULT_KEY,
    "listen_mode": DEFAULT_MODE,
    "listen_silence_s": DEFAULT_SILENCE_S,
    "listen_output": DEFAULT_OUTPUT,
    "paste_key": DEFAULT_PASTE_KEY,
    "overlay": True,
    "sounds": False,
}
APP_KEYS = ("autostart", "start_hidden")  # app-level, not the profile's
SILENCE_RANGE = (0.5, 30.0)
MODE_TEXTS = {
    "hold": "Hold the key while you speak",
    "toggle": "Press to start, press again to stop",
}
OUTPUT_TEXTS = {
    "type": "Type it where the cursor is",
    "paste": "Paste it (your clipboard is given back afterwards)",
    "clipboard": "Only copy it to the clipboard",
}


def checked_anywhere(settings: dict) -> dict:
    """The page's settings with bad values (a hand-edited file) replaced by defaults."""
    values = {key: settings.get(key, default) for key, default in ANYWHERE_DEFAULTS.items()}
    if values["listen_mode"] not in MODES:
        values["listen_mode"] = DEFAULT_MODE
    if values["listen_output"] not in OUTPUT_MODES:
        values["listen_output"] = DEFAULT_OUTPUT
    try:
        silence = float(values["listen_silence_s"])
    except (TypeError, ValueError):
        silence = DEFAULT_SILENCE_S
    values["listen_silence_s"] = min(max(silence, SILENCE_RANGE[0]), SILENCE_RANGE[1])
    for key in ("listen_key", "paste_key"):
        values[key] = str(values[key] or ANYWHERE_DEFAULTS[key])
    for key in ("hotkey", "overlay", "sounds"):
        values[key] = bool(values[key])
    return values


def _combo(texts: dict[str, str], current: str) -> QComboBox:
    combo = QComboBox()
    for key, text in texts.items():
        combo.addItem(text, key)
    combo.setCurrentIndex(max(combo.findData(current), 0))
    return combo


class AnywhereSettings(QWidget):
    """The page. `key_status` says which key backend is in use or why none is;
    `tray_available` whether hiding in the tray is possible here."""

    def __init__(
        self,
        settings: dict,
        app_settings: dict,
        key_status: str = "",
        tray_available: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        values = checked_anywhere(settings)
        self.hotkey = QCheckBox("Dictate into any application with a system-wide key")
        self.hotkey.setChecked(values["hotkey"])
        self.key_edit = QLineEdit(values["listen_key"])
        self.key_edit.setPlaceholderText(DEFAULT_KEY)
        self.key_edit.setToolTip("Modifiers and one key joined by +, e.g. ctrl+alt+space, super+h, F9 or Pause.")
        self.key_error = label("", "bad")
        self.mode_combo = _combo(MODE_TEXTS, values["listen_mode"])
        self.silence_spin = QDoubleSpinBox()
        self.silence_spin.setRange(*SILENCE_RANGE)
        self.silence_spin.setSingleStep(0.5)
        self.silence_spin.setSuffix(" s of silence")
        self.silence_spin.setValue(values["listen_silence_s"])
        self.output_combo = _combo(OUTPUT_TEXTS, values["listen_output"])
        self.paste_key_edit = QLineEdit(values["paste_key"])
        self.paste_key_edit.setToolTip("The key your applications paste with: ctrl+v, or ctrl+shift+v in terminals.")
        self.overlay = QCheckBox("Show the level and the words near the bottom of the screen")
        self.overlay.setChecked(values["overlay"])
        self.sounds = QCheckBox("Play a short sound when dictation starts and stops")
        self.sounds.setChecked(values["sounds"])
        self.key_status = label(key_status or "Off.", "subtitle")

        self.autostart = QCheckBox("Start Dictation when I log in")
        self.autostart.setChecked(bool(app_settings.get("autostart")))
        self.start_hidden = QCheckBox("Start in the tray, without the window")
        self.start_hidden.setChecked(bool(app_settings.get("start_hidden")))
        self.start_hidden.setEnabled(tray_available)
        if not tray_available:
            self.start_hidden.setToolTip("This desktop shows no tray icons, so the window always opens.")

        key_box = QGroupBox("System-wide key")
        form = QFormLayout()
        form.addRow("Key:", self.key_edit)
        form.addRow("", self.key_error)
        form.addRow("Mode:", self.mode_combo)
        form.addRow("Stop by itself after:", self.silence_spin)
        form.addRow("The text:", self.output_combo)
        form.addRow("Paste key:", self.paste_key_edit)
        key_layout = QVBoxLayout(key_box)
        key_layout.addWidget(self.hotkey)
        key_layout.addLayout(form)
        key_layout.addWidget(self.overlay)
        key_layout.addWidget(self.sounds)
        key_layout.addWidget(self.key_status)
        key_layout.addWidget(
            label(
                "What cannot be typed or pasted goes to the clipboard, with a notice; every "
                "dictation is kept in the history.",
                "subtitle",
            )
        )
        start_box = QGroupBox("Starting")
        start_layout = QVBoxLayout(start_box)
        start_layout.addWidget(self.autostart)
        start_layout.addWidget(self.start_hidden)
        layout = QVBoxLayout(self)
        layout.addWidget(key_box)
        layout.addWidget(start_box)
        layout.addStretch(1)

        self.hotkey.toggled.connect(self._update_enabled)
        self.mode_combo.currentIndexChanged.connect(self._update_enabled)
        self.output_combo.currentIndexChanged.connect(self._update_enabled)
        self.key_edit.textChanged.connect(self.key_problem)
        self.paste_key_edit.textChanged.connect(self.key_problem)
        self._update_enabled()
        self.key_problem()

    def set_key_status(self, text: str) -> None:
        self.key_status.setText(text)

    def _update_enabled(self) -> None:
        on = self.hotkey.isChecked()
        for widget in (self.key_edit, self.mode_combo, self.output_combo, self.overlay, self.sounds):
            widget.setEnabled(on)
        self.silence_spin.setEnabled(on and self.mode_combo.currentData() == "toggle")
        self.paste_key_edit.setEnabled(on and self.output_combo.currentData() != "clipboard")

    def key_problem(self) -> str:
        """Why the key or the paste key cannot be used ("" when both can); also shown."""
        problem = ""
        for name, edit in (("Key", self.key_edit), ("Paste key", self.paste_key_edit)):
            try:
                parse_key(edit.text())
            except KeySpecError as exc:
                problem = f"{name}: {exc}"
                break
        self.key_error.setText(problem)
        self.key_error.setVisible(bool(problem))
        return problem

    def values(self) -> dict:
        return {
            "hotkey": self.hotkey.isChecked(),
            "listen_key": self.key_edit.text().strip(),
            "listen_mode": self.mode_combo.currentData(),
            "listen_silence_s": float(self.silence_spin.value()),
            "listen_output": self.output_combo.currentData(),
            "paste_key": self.paste_key_edit.text().strip(),
            "overlay": self.overlay.isChecked(),
            "sounds": self.sounds.isChecked(),
        }

    def app_values(self) -> dict:
        return {"autostart": self.autostart.isChecked(), "start_hidden": self.start_hidden.isChecked()}
