"""The settings dialog and the profile management it offers: switch, new, reset to the
base model, go back to the previous model, delete, export and import.

Each action asks for confirmation where something is removed, does the work on the
profile, and reports through signals what the window has to show next.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from dictation.app.gui.adaptation_controller import AdaptationController
from dictation.app.gui.microphones import Microphones
from dictation.app.gui.profile_session import ProfileSession
from dictation.app.gui.settings_dialog import SettingsDialog
from dictation.app.profiles import Profile, ProfileError, delete_profile, list_profiles


class ProfileActions(QObject):
    """Signals: settings_accepted(dict values), open_requested(str name), new_requested(),
    model_changed() (the open profile's model was reset or replaced),
    open_profile_deleted() (the session is closed now), message(str) (for the status bar).
    """

    settings_accepted = Signal(dict)
    open_requested = Signal(str)
    new_requested = Signal()
    model_changed = Signal()
    open_profile_deleted = Signal()
    message = Signal(str)

    def __init__(
        self,
        window: QWidget,
        session: ProfileSession,
        microphones: Microphones,
        adaptation: AdaptationController,
    ) -> None:
        super().__init__(window)
        self.window = window  # the parent of every dialog
        self.session = session
        self.microphones = microphones
        self.adaptation = adaptation
        self.settings_dialog: SettingsDialog | None = None

    def open_settings(self) -> SettingsDialog:
        """Show the settings dialog (non-blocking; returns it so tests can drive it)."""
        names = self.microphones.refresh()
        try:
            profiles = list_profiles()
        except OSError:
            profiles = []
        profile = self.session.profile
        dialog = SettingsDialog(self.session.settings, names, profiles, profile.name if profile else "", self.window)

        def switch(name: str) -> None:
            dialog.reject()
            self.open_requested.emit(name)

        def new() -> None:
            dialog.reject()
            self.new_requested.emit()

        def import_archive() -> None:
            dialog.reject()
            self.ask_import()

        dialog.accepted.connect(lambda: self.settings_accepted.emit(dialog.values()))
        dialog.switch_requested.connect(switch)
        dialog.new_requested.connect(new)
        dialog.reset_requested.connect(self.reset_profile)
        dialog.previous_requested.connect(lambda: self.use_previous_model(dialog))
        dialog.previous_button.setEnabled(self.has_previous_model())
        dialog.delete_requested.connect(lambda name: self.delete_profile(name, dialog))
        dialog.export_requested.connect(self.ask_export)
        dialog.import_requested.connect(import_archive)
        dialog.open()
        self.settings_dialog = dialog
        return dialog

    # -- the model -----------------------------------------------------------------------

    def reset_profile(self) -> None:
        """Remove the adapted model (after confirmation); the recordings stay."""
        profile = self.session.profile
        if profile is None:
            return
        answer = QMessageBox.question(
            self.window,
            "Reset to base model",
            "Remove the adapted model and go back to the base model? Your recordings are kept.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        profile.reset_to_base()
        self.model_changed.emit()

    def has_previous_model(self) -> bool:
        profile = self.session.profile
        try:
            return profile is not None and profile.previous_metadata() is not None
        except ProfileError:
            return False

    def use_previous_model(self, dialog: SettingsDialog | None = None) -> None:
        """Go back to the model installed before the last adaptation (after confirmation)."""
        profile = self.session.profile
        if profile is None or not self.has_previous_model():
            return
        previous = profile.previous_metadata() or {}
        when = str(previous.get("installed") or previous.get("created") or "an earlier adaptation")
        answer = QMessageBox.question(
            self.window,
            "Use previous model",
            f"Go back to the adapted model from {when}? The current adapted model is removed; "
            "your recordings are kept.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            profile.restore_previous_model()
        except (ProfileError, OSError) as exc:
            QMessageBox.warning(self.window, "Use previous model", f"Could not switch models: {exc}")
            return
        self.model_changed.emit()
        if dialog is not None:
            dialog.previous_button.setEnabled(self.has_previous_model())

    # -- profiles ------------------------------------------------------------------------

    def delete_profile(self, name: str, dialog: QWidget | None = None) -> bool:
        """Delete a profile and its recordings (after confirmation); True if it was deleted."""
        answer = QMessageBox.question(
            self.window,
            "Delete profile",
            f"Delete the profile \u201c{name}\u201d and all its recordings from this computer? This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        if self.adaptation.running_for() == name:
            self.adaptation.cancel()
        try:
            delete_profile(name)
        except (ProfileError, OSError) as exc:
            QMessageBox.warning(self.window, "Delete profile", f"Could not delete {name}: {exc}")
            return False
        if dialog is not None:
            dialog.close()
        if self.session.is_open(name):
            self.session.close()
            self.open_profile_deleted.emit()
        return True

    def ask_export(self) -> None:
        profile = self.session.profile
        if profile is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self.window,
            "Export profile",
            str(Path.home() / f"{profile.name}.dictation-profile.zip"),
            "Profile archives (*.zip)",
        )
        if path:
            try:
                profile.export_archive(Path(path))
            except (ProfileError, OSError) as exc:
                QMessageBox.warning(self.window, "Export profile", f"Export failed: {exc}")
                return
            self.message.emit(f"Profile exported to {path}")

    def ask_import(self) -> None:
        """Import a profile archive (asking for another name if the name is taken), then open it."""
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Import profile", str(Path.home()), "Profile archives (*.zip)"
        )
        if not path:
            return
        try:
            profile = Profile.import_archive(Path(path))
        except ProfileError as exc:
            if "exist" not in str(exc).lower():
                QMessageBox.warning(self.window, "Import profile", f"Import failed: {exc}")
                return
            name, ok = QInputDialog.getText(self.window, "Import profile", f"{exc}\nImport it under another name:")
            if not ok or not name.strip():
                return
            try:
                profile = Profile.import_archive(Path(path), name.strip())
            except (ProfileError, OSError) as exc2:
                QMessageBox.warning(self.window, "Import profile", f"Import failed: {exc2}")
                return
        except OSError as exc:
            QMessageBox.warning(self.window, "Import profile", f"Import failed: {exc}")
            return
        self.open_requested.emit(profile.name)
