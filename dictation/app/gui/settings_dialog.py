"""Settings: microphone, compute device, recognition (beam or greedy), copy/commands options,
dictating into any application (the system-wide key; `anywhere_settings`) and profile
management.

The dialog edits a settings dict; profile actions are emitted as signals for the main
window to carry out (it owns the profile and the confirmation dialogs' consequences).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSystemTrayIcon,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from dictation.app.commands import SPOKEN_COMMANDS
from dictation.app.decoding import DEFAULT_BEAM, check_beam
from dictation.app.gui.anywhere_settings import ANYWHERE_DEFAULTS, APP_KEYS, AnywhereSettings, checked_anywhere
from dictation.app.gui.style import label

DEVICES = (("auto", "Automatic (GPU if available)"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)"))
DECODING = (
    (DEFAULT_BEAM, f"Most accurate (weighs {DEFAULT_BEAM} readings of each take)"),
    (1, "Fastest (one reading; more word errors)"),
)
DEFAULT_SETTINGS: dict = {
    "mic": "",
    "device": "auto",
    "auto_copy": True,
    "commands": False,
    "live_preview": True,
    "beam": DEFAULT_BEAM,
    **ANYWHERE_DEFAULTS,
}


def with_defaults(settings: dict) -> dict:
    """Settings with every known key present."""
    merged = dict(DEFAULT_SETTINGS)
    merged.update({k: v for k, v in settings.items() if v is not None})
    merged.update(checked_anywhere(merged))
    try:
        merged["beam"] = check_beam(merged["beam"])
    except ValueError:  # a hand-edited or damaged settings file: the default, not a crash
        merged["beam"] = DEFAULT_BEAM
    return merged


class SettingsDialog(QDialog):
    """Signals (profile management): switch_requested(name), new_requested(),
    reset_requested(), previous_requested(), delete_requested(name), export_requested(),
    import_requested()."""

    switch_requested = Signal(str)
    new_requested = Signal()
    reset_requested = Signal()
    previous_requested = Signal()
    delete_requested = Signal(str)
    export_requested = Signal()
    import_requested = Signal()

    def __init__(
        self,
        settings: dict,
        microphones: list[str],
        profiles: list[str],
        current_profile: str,
        parent: QWidget | None = None,
        *,
        app_settings: dict | None = None,
        key_status: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(600)
        settings = with_defaults(settings)

        self.mic_combo = QComboBox()
        if microphones:
            self.mic_combo.addItems(microphones)
            if settings["mic"] in microphones:
                self.mic_combo.setCurrentText(settings["mic"])
        else:
            self.mic_combo.addItem("No microphone found")
            self.mic_combo.setEnabled(False)
        self.device_combo = QComboBox()
        for key, text in DEVICES:
            self.device_combo.addItem(text, key)
        index = self.device_combo.findData(settings["device"])
        self.device_combo.setCurrentIndex(max(index, 0))
        self.decoding_combo = QComboBox()
        for beam, text in DECODING:
            self.decoding_combo.addItem(text, beam)
        index = self.decoding_combo.findData(settings["beam"])
        if index < 0:  # another width, set outside this dialog: keep it selectable
            self.decoding_combo.addItem(f"{settings['beam']} readings of each take", settings["beam"])
            index = self.decoding_combo.count() - 1
        self.decoding_combo.setCurrentIndex(index)
        self.decoding_combo.setToolTip(
            "Beam search: several candidate transcripts are followed at once and the "
            "likeliest kept. Fewer word errors; the text takes a little longer."
        )
        self.auto_copy = QCheckBox("Copy each dictation to the clipboard")
        self.auto_copy.setChecked(bool(settings["auto_copy"]))
        self.commands = QCheckBox("Spoken commands")
        self.commands.setChecked(bool(settings["commands"]))
        self.commands.setToolTip("Say: " + ", ".join(f"\u201c{c}\u201d" for c in SPOKEN_COMMANDS))
        commands_note = label(
            "Say " + ", ".join(f"\u201c{c}\u201d" for c in SPOKEN_COMMANDS) + " to insert punctuation and line breaks.",
            "subtitle",
        )

        self.live_preview = QCheckBox("Show the words while you speak (uses more CPU)")
        self.live_preview.setChecked(bool(settings["live_preview"]))
        self.live_preview.setToolTip(
            "Transcribes the take so far about once a second while the key is held; "
            "the final text still comes from the whole take."
        )

        general = QGroupBox("General")
        general_layout = QVBoxLayout(general)
        form = QFormLayout()
        form.addRow("Microphone:", self.mic_combo)
        form.addRow("Compute device for adaptation:", self.device_combo)
        form.addRow("Recognition:", self.decoding_combo)
        general_layout.addLayout(form)
        for widget in (self.auto_copy, self.live_preview, self.commands, commands_note):
            general_layout.addWidget(widget)
        commands_note.setContentsMargins(24, 0, 0, 6)
        self.anywhere = AnywhereSettings(
            settings, app_settings if app_settings is not None else current_app_settings(), key_status, tray_available()
        )
        self.hotkey = self.anywhere.hotkey

        self.profile_combo = QComboBox()
        self.profile_combo.addItems(profiles)
        if current_profile in profiles:
            self.profile_combo.setCurrentText(current_profile)
        self.switch_button = QPushButton("Switch")
        self.new_button = QPushButton("New\u2026")
        self.reset_button = QPushButton("Reset to base model")
        self.previous_button = QPushButton("Use previous model")
        self.previous_button.setEnabled(False)  # the window enables it when there is one
        self.delete_button = QPushButton("Delete\u2026")
        self.export_button = QPushButton("Export\u2026")
        self.import_button = QPushButton("Import\u2026")
        profile_box = QGroupBox("Profiles")
        profile_layout = QVBoxLayout(profile_box)
        row1 = QHBoxLayout()
        row1.addWidget(self.profile_combo, 1)
        row1.addWidget(self.switch_button)
        row1.addWidget(self.new_button)
        row2 = QHBoxLayout()
        row2.addWidget(self.reset_button)
        row2.addWidget(self.previous_button)
        row2.addWidget(self.export_button)
        row2.addWidget(self.import_button)
        row2.addStretch(1)
        row2.addWidget(self.delete_button)
        profile_layout.addLayout(row1)
        profile_layout.addLayout(row2)
        profile_layout.addWidget(
            label(
                "Reset keeps your recordings and removes the adapted models. Use previous model goes "
                "back to the adapted model before the last adaptation. Delete removes the "
                "profile and all its recordings from this computer.",
                "subtitle",
            )
        )

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        main_page = QWidget()
        main_layout = QVBoxLayout(main_page)
        main_layout.addWidget(general)
        main_layout.addWidget(profile_box)
        main_layout.addStretch(1)
        self.tabs = QTabWidget()
        self.tabs.addTab(main_page, "General")
        self.tabs.addTab(self.anywhere, "Any application")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)

        self.switch_button.clicked.connect(lambda: self.switch_requested.emit(self.profile_combo.currentText()))
        self.new_button.clicked.connect(self.new_requested)
        self.reset_button.clicked.connect(self.reset_requested)
        self.previous_button.clicked.connect(self.previous_requested)
        self.delete_button.clicked.connect(lambda: self.delete_requested.emit(self.profile_combo.currentText()))
        self.export_button.clicked.connect(self.export_requested)
        self.import_button.clicked.connect(self.import_requested)
        self._microphones = microphones

    def values(self) -> dict:
        """The edited settings."""
        return {
            "mic": self.mic_combo.currentText() if self._microphones else "",
            "device": self.device_combo.currentData(),
            "auto_copy": self.auto_copy.isChecked(),
            "commands": self.commands.isChecked(),
            "live_preview": self.live_preview.isChecked(),
            "beam": int(self.decoding_combo.currentData()),
            **self.anywhere.values(),
            **self.anywhere.app_values(),
        }

    def accept(self) -> None:
        """Close with the settings, unless the system-wide key is on with a bad key."""
        if self.hotkey.isChecked() and self.anywhere.key_problem():
            self.tabs.setCurrentWidget(self.anywhere)
            self.anywhere.key_edit.setFocus()
            return
        super().accept()

    def set_key_status(self, text: str) -> None:
        """Which key backend is in use, or why none is (the window knows)."""
        self.anywhere.set_key_status(text)


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


def current_app_settings() -> dict:
    """The app-level settings (`APP_KEYS`): autostart is the entry's presence."""
    from dictation.app.desktop import autostart_enabled
    from dictation.app.gui.profile_session import read_gui_state  # imports this module

    return {"autostart": autostart_enabled(), "start_hidden": bool(read_gui_state().get("start_hidden"))}


def save_app_settings(values: dict) -> str:
    """Write the app-level settings that changed (the autostart entry, start hidden);
    returns what went wrong, for the user ("" when all went well)."""
    from dictation.app.desktop import autostart_enabled, set_autostart
    from dictation.app.gui.profile_session import read_gui_state, write_gui_state

    problem = ""
    if "autostart" in values and bool(values["autostart"]) != autostart_enabled():
        try:
            set_autostart(bool(values["autostart"]))
        except OSError as exc:
            problem = f"Could not change starting with the desktop: {exc}"
    state = read_gui_state()
    if "start_hidden" in values and bool(state.get("start_hidden")) != bool(values["start_hidden"]):
        write_gui_state({**state, "start_hidden": bool(values["start_hidden"])})
    return problem


def split_app_settings(values: dict) -> tuple[dict, dict]:
    """(the profile's settings, the app's settings) out of the dialog's values."""
    profile = {k: v for k, v in values.items() if k not in APP_KEYS}
    return profile, {k: values[k] for k in APP_KEYS if k in values}
