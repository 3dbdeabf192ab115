"""Main window: first run, then Enroll / Adapt / Dictate pages for the open profile.

The window lays the pages out and wires them to the parts that do the work: the profile
session, the microphones, the transcription service, the dictation and adaptation
controllers, the profile actions (settings dialog and profile management), and the
dictation into any application (`anywhere`: the system-wide key, text delivery) with its
presence outside the window (tray icon, overlay, sounds). With a tray, closing the
window leaves the app running there; Quit ends it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QMainWindow, QMessageBox, QStackedWidget

from dictation.app.enrollment import EnrollmentError, Prompt, load_prompts
from dictation.app.gui.adaptation_controller import AdaptationController
from dictation.app.gui.anywhere import AnywhereDictation
from dictation.app.gui.dictation_controller import DictationController
from dictation.app.gui.first_run import FirstRunPage
from dictation.app.gui.learning import Learning
from dictation.app.gui.microphones import Microphones
from dictation.app.gui.model_texts import about_html, model_in_use, outdated_model_notice
from dictation.app.gui.presence import Presence
from dictation.app.gui.profile_actions import ProfileActions
from dictation.app.gui.profile_pages import PAGE_ADAPT, PAGE_DICTATE, PAGE_ENROLL, ProfilePages
from dictation.app.gui.profile_session import ProfileSession
from dictation.app.gui.recorder import AudioSource, Recorder
from dictation.app.gui.services import Services
from dictation.app.gui.settings_dialog import (
    SettingsDialog,
    current_app_settings,
    save_app_settings,
    split_app_settings,
    with_defaults,
)
from dictation.app.gui.style import STYLE_SHEET
from dictation.app.gui.transcription_service import TranscriptionService
from dictation.app.gui.voice_checks import VoiceChecks
from dictation.app.profiles import CorruptProfileError, Profile, ProfileError, list_profiles

log = logging.getLogger(__name__)

__all__ = ["PAGE_ADAPT", "PAGE_DICTATE", "PAGE_ENROLL", "MainWindow"]
ROOT_FIRST_RUN, ROOT_PROFILE = 0, 1


class MainWindow(QMainWindow):
    """The app window. `services` and `audio_source` may be injected (tests)."""

    def __init__(
        self,
        services: Services | None = None,
        audio_source: AudioSource | None = None,
        prompts: list[Prompt] | None = None,
        with_tray: bool | None = None,
    ) -> None:
        super().__init__()
        self.services = services or Services()
        try:
            self.prompts = prompts if prompts is not None else load_prompts()
        except EnrollmentError as exc:
            self.prompts = []
            log.error("%s", exc)
        self.setWindowTitle("Dictation")
        self.resize(920, 620)
        self.setStyleSheet(STYLE_SHEET)

        self.session = ProfileSession(self)
        self.transcription = TranscriptionService(self.services, self)
        self.recorder = Recorder(parent=self)
        self.microphones = Microphones(self.services, self.recorder, audio_source, self)
        self.dictation_controller = DictationController(self.recorder, self.transcription, self.session, self)
        self.adaptation = AdaptationController(self.services, self.transcription, self.session, self)
        self.profile_actions = ProfileActions(self, self.session, self.microphones, self.adaptation)
        self.anywhere = AnywhereDictation(self.dictation_controller, self.recorder, self.transcription, self)
        self.learning = Learning(
            self.dictation_controller, self.session, self.adaptation, self.anywhere.delivered, self
        )
        self.presence = Presence(
            self.anywhere,
            self.dictation_controller,
            self.recorder,
            lambda: (list_profiles(), self.profile.name if self.profile else ""),
            self.show_window,
            self.open_profile,
            self.quit_app,
            self,
            with_tray,
        )
        self.tray = self.presence.tray
        self._quitting = False
        self._told_about_tray = False
        self._build()
        self._build_menus()
        self._connect()
        self.voice_checks = VoiceChecks.install(self)  # the voice embedding's notices (issue 28)
        self.profile_pages.key.install()
        self.microphones.refresh()
        self.startup()

    @property
    def profile(self) -> Profile | None:
        return self.session.profile

    # -- layout and wiring ---------------------------------------------------------------

    def _build(self) -> None:
        self.first_run = FirstRunPage()
        self.profile_pages = ProfilePages(self.recorder, self.transcription, self.dictation_controller)
        # The pages' widgets by their own names, for the wiring below and for tests.
        self.wizard = self.profile_pages.wizard
        self.adapt_view = self.profile_pages.adapt_view
        self.dictation_view = self.profile_pages.dictation_view
        self.vocabulary_page = self.profile_pages.vocabulary_page
        self.learned_page = self.profile_pages.learned_page
        self.pages = self.profile_pages.pages
        self.root = QStackedWidget()
        self.root.addWidget(self.first_run)
        self.root.addWidget(self.profile_pages)
        self.setCentralWidget(self.root)
        self.profile_label = QLabel("")
        self.statusBar().addPermanentWidget(self.profile_label)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.new_profile_action = QAction("New profile\u2026", self)
        self.transcribe_file_action = QAction("Transcribe file\u2026", self)
        self.transcribe_file_action.setShortcut(QKeySequence("Ctrl+O"))
        self.settings_action = QAction("Settings\u2026", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        for action in (self.new_profile_action, self.transcribe_file_action, self.settings_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction("About Dictation", self)
        help_menu.addAction(self.about_action)

        self.new_profile_action.triggered.connect(self.show_first_run)
        self.transcribe_file_action.triggered.connect(self._ask_transcribe_file)
        self.settings_action.triggered.connect(self.open_settings)
        quit_action.triggered.connect(self.quit_app)
        self.about_action.triggered.connect(self.show_about)

    def _connect(self) -> None:
        self.recorder.level_changed.connect(self.first_run.meter.set_level)
        self.recorder.level_changed.connect(self.dictation_view.meter.set_level)
        self.recorder.error.connect(lambda message: self.statusBar().showMessage(message, 10_000))
        self.microphones.names_changed.connect(
            lambda names: self.first_run.set_microphones(names, self.first_run.microphone())
        )
        self.microphones.availability_changed.connect(self._microphone_availability)
        self.microphones.availability_changed.connect(self.dictation_controller.set_microphone_state)
        self.first_run.create_requested.connect(self.create_profile)
        self.first_run.microphone_changed.connect(self.microphones.open)
        self.profile_pages.page_shown.connect(self._page_shown)
        self.wizard.takes_changed.connect(lambda _: self._refresh_summary())
        self.dictation_view.auto_copy_toggled.connect(lambda on: self.session.update_settings({"auto_copy": on}))
        self.dictation_controller.correction_saved.connect(self._refresh_summary)
        self.dictation_controller.file_transcribed.connect(self._file_done)
        self.dictation_controller.file_failed.connect(self._file_failed)
        self.vocabulary_page.changed.connect(self._use_vocabulary)

        self.adapt_view.attach(self.adaptation)
        self.learned_page.attach(self.learning)
        for over in (self.adaptation.finished, self.adaptation.failed, self.adaptation.cancelled):
            over.connect(lambda *_: self._refresh_summary())

        actions = self.profile_actions
        actions.settings_accepted.connect(self.apply_settings)
        actions.open_requested.connect(self.open_profile)
        actions.new_requested.connect(self.show_first_run)
        actions.model_changed.connect(self._model_changed)
        actions.open_profile_deleted.connect(self.startup)
        actions.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.session.settings_save_failed.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.session.opened.connect(lambda _: self.dictation_view.clear_notices())
        for notices in (self.session.notice, self.transcription.model_notice):
            notices.connect(self.dictation_view.add_notice)
            notices.connect(lambda text: self.statusBar().showMessage(text, 30_000))
        self.transcription.model_loaded.connect(lambda _: self._refresh_summary())
        self.anywhere.notice.connect(lambda text: self.statusBar().showMessage(text, 15_000))
        self.anywhere.key.state_changed.connect(self._key_state_changed)

    # -- profiles ------------------------------------------------------------------------

    def startup(self) -> None:
        """Open the last used profile, or show the first-run page."""
        try:
            name = self.session.profile_to_open()
        except OSError as exc:
            QMessageBox.critical(self, "Dictation", f"The data folder is not usable: {exc}")
            name = None
        if name is None:
            self.show_first_run()
        else:
            self.open_profile(name)

    def show_first_run(self) -> None:
        self.recorder.cancel()
        self.anywhere.configure({})  # no profile, no settings: the key is released
        self.first_run.name_edit.clear()
        self.first_run.set_microphones(self.microphones.names, self.session.settings.get("mic"))
        if self.recorder.source is None:  # the live level meter needs a running capture
            self.microphones.open(self.first_run.microphone())
        if self.microphones.error and self.microphones.names:
            self.first_run.show_microphone_error(self.microphones.error)
        self.root.setCurrentIndex(ROOT_FIRST_RUN)
        self.first_run.name_edit.setFocus()

    def create_profile(self, name: str, mic: str) -> None:
        try:
            profile = Profile.create(name)
            profile.save_settings(with_defaults({"mic": mic}))
        except (ProfileError, OSError) as exc:
            self.first_run.show_error(str(exc))
            return
        self.open_profile(profile.name, page=PAGE_ENROLL)

    def open_profile(self, name: str, page: int | None = None) -> bool:
        try:
            profile = self.session.open(name)
        except (CorruptProfileError, ProfileError, OSError) as exc:
            QMessageBox.warning(self, "Dictation", f"The profile \u201c{name}\u201d could not be opened: {exc}")
            self.show_first_run()
            return False
        if self.adaptation.running_for() not in (None, profile.name):
            self.adaptation.cancel()  # it belongs to the profile just closed
        self.microphones.open(self.session.settings.get("mic") or "")
        self.transcription.set_profile(profile)
        self.transcription.set_model_dir(profile.model_dir())
        self.transcription.preload()
        self.wizard.set_profile(profile, self.prompts)
        self.vocabulary_page.set_profile(profile)
        self._use_vocabulary(self.vocabulary_page.entries())
        self.dictation_view.set_history(profile.history())
        self.dictation_view.set_auto_copy(bool(self.session.settings["auto_copy"]))
        self.dictation_controller.forget_last()
        self.anywhere.configure(self.session.settings)
        notice = self._refresh_summary()
        self.root.setCurrentIndex(ROOT_PROFILE)
        if page is None:
            page = PAGE_DICTATE if (profile.takes() or profile.model_dir()) else PAGE_ENROLL
        self.show_page(page)
        if notice:
            self.statusBar().showMessage(notice, 30_000)
        return True

    def _refresh_summary(self) -> str:
        """Update the Adapt page's summary and the profile label; return the adapt-again
        notice ("" if none)."""
        profile = self.profile
        if profile is None:
            self.profile_label.setText("")
            return ""
        try:
            takes, corrections = len(profile.takes()), len(profile.corrections())
        except (ProfileError, OSError):
            takes, corrections = 0, 0
        notice, model_text = outdated_model_notice(profile), model_in_use(profile, self.transcription.loaded_kind())
        if not self.adaptation.is_running():
            self.adapt_view.set_summary(takes, corrections, model_text, notice)
        self.profile_label.setText(f"Profile: {profile.name}  \u00b7  {model_text}")
        return notice

    def _model_changed(self) -> None:
        """The open profile's adapted model was reset or replaced: use what it has now."""
        if self.profile is not None:
            self.transcription.set_model_dir(self.profile.model_dir())
        self._refresh_summary()

    def _use_vocabulary(self, entries: list) -> None:
        """Dictate with the open profile's words (an empty list: decoding as without)."""
        from dictation.app.vocabulary import DecodingVocabulary

        self.transcription.set_vocabulary(DecodingVocabulary(entries) if entries else None)

    def apply_settings(self, values: dict) -> None:
        values, app_values = split_app_settings(values)
        problem = save_app_settings(app_values)
        if problem:
            self.statusBar().showMessage(problem, 10_000)
        old_mic = self.session.settings.get("mic")
        self.session.update_settings(values)
        self.dictation_view.set_auto_copy(bool(self.session.settings["auto_copy"]))
        self.anywhere.configure(self.session.settings)
        if values.get("mic") != old_mic or self.recorder.source is None:
            self.microphones.open(values.get("mic") or "")

    def open_settings(self) -> SettingsDialog:
        """The settings dialog, with the system-wide key's state."""
        dialog = self.profile_actions.open_settings()
        dialog.set_key_status(self.anywhere.key.summary())
        return dialog

    def _key_state_changed(self, state: str) -> None:
        dialog = self.profile_actions.settings_dialog
        if dialog is not None and dialog.isVisible():
            dialog.set_key_status(self.anywhere.key.summary())
        if state == "failed":
            self.statusBar().showMessage(f"System-wide key: {self.anywhere.key.problem}", 15_000)

    # -- pages and microphones ----------------------------------------------------------

    def show_page(self, page: int) -> None:
        self.profile_pages.show_page(page)

    def _page_shown(self, page: int) -> None:
        if page == PAGE_ADAPT:
            self._refresh_summary()

    def _microphone_availability(self, available: bool, message: str) -> None:
        self.dictation_view.set_microphone_available(available, message)
        if not available and self.microphones.names:
            self.first_run.show_microphone_error(message)
        self.wizard.microphone_changed()

    # -- files and dialogs ---------------------------------------------------------------

    def _ask_transcribe_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Transcribe file", str(Path.home()), "Audio files (*.wav *.flac *.ogg *.mp3);;All files (*)"
        )
        if path:
            self.transcribe_file(Path(path))

    def transcribe_file(self, path: Path) -> None:
        """Transcribe an audio file (works without a microphone)."""
        self.statusBar().showMessage(f"Transcribing {path.name}\u2026")
        self.dictation_controller.transcribe_file(path)

    def _file_done(self, path: Path, text: str) -> None:
        self.statusBar().showMessage(f"Transcribed {path.name}", 8000)
        if self.root.currentIndex() == ROOT_PROFILE:
            self.show_page(PAGE_DICTATE)
            if text:
                self.dictation_view.append_transcript(text)
                self.dictation_controller.add_to_history(text)
            return
        box = QMessageBox(QMessageBox.Icon.Information, "Transcript", text or "(no speech found)", parent=self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()
        self.file_result_box = box

    def _file_failed(self, path: Path, message: str) -> None:
        self.statusBar().clearMessage()
        QMessageBox.warning(self, "Transcribe file", f"{path.name} could not be transcribed: {message}")

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About Dictation", about_html(self.profile), parent=self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()
        self.about_box = box

    # -- shutdown ------------------------------------------------------------------------

    def show_window(self) -> None:
        """Show the window (from the tray) in front."""
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def starts_hidden(self) -> bool:
        """True when the app should start in the tray, without the window."""
        return self.tray is not None and bool(current_app_settings()["start_hidden"])

    def quit_app(self) -> None:
        """End the app (with a tray, closing the window only hides it)."""
        self._quitting = True
        self.close()
        if not QApplication.quitOnLastWindowClosed():  # run_app's setting with a tray
            QApplication.quit()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.tray is not None and not self._quitting:
            event.ignore()  # dictation goes on from the tray and the system-wide key
            self.hide()
            if not self._told_about_tray:
                self._told_about_tray = True
                self.tray.notify("Dictation keeps running here. Quit it from this icon's menu.")
            return
        if self.adaptation.is_running():
            self.adaptation.cancel()  # the worker stops; the previous model stays installed
        self.anywhere.shutdown()
        self.presence.close()
        self.microphones.stop_watching()
        self.recorder.close()
        self.profile_pages.key.remove()
        self.transcription.wait(10_000)
        super().closeEvent(event)
