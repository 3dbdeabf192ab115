"""Main window: first run, then Enroll / Adapt / Dictate pages for the open profile.

The window lays the pages out and wires them to the parts that do the work: the profile
session, the microphones, the transcription service, the dictation and adaptation
controllers and the profile actions (settings dialog and profile management).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from dictation.app.enrollment import EnrollmentError, Prompt, load_prompts
from dictation.app.gui.adapt_view import AdaptView
from dictation.app.gui.adaptation_controller import AdaptationController
from dictation.app.gui.dictation_controller import DictationController
from dictation.app.gui.dictation_view import DictationView
from dictation.app.gui.first_run import FirstRunPage
from dictation.app.gui.microphones import Microphones
from dictation.app.gui.model_texts import about_html, model_in_use, outdated_model_notice
from dictation.app.gui.profile_actions import ProfileActions
from dictation.app.gui.profile_session import ProfileSession
from dictation.app.gui.push_to_talk import PushToTalkKey
from dictation.app.gui.recorder import AudioSource, Recorder
from dictation.app.gui.services import Services
from dictation.app.gui.settings_dialog import with_defaults
from dictation.app.gui.style import STYLE_SHEET
from dictation.app.gui.transcription_service import TranscriptionService
from dictation.app.gui.wizard import EnrollmentWizard
from dictation.app.profiles import CorruptProfileError, Profile, ProfileError

log = logging.getLogger(__name__)

PAGE_ENROLL, PAGE_ADAPT, PAGE_DICTATE = 0, 1, 2
ROOT_FIRST_RUN, ROOT_PROFILE = 0, 1


class MainWindow(QMainWindow):
    """The app window. `services` and `audio_source` may be injected (tests)."""

    def __init__(
        self,
        services: Services | None = None,
        audio_source: AudioSource | None = None,
        prompts: list[Prompt] | None = None,
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
        self.push_to_talk_key = PushToTalkKey(
            self, wanted=lambda: self._ptt_target() is not None, recording=self.recorder.is_recording
        )
        self._build()
        self._build_menus()
        self._connect()
        self.push_to_talk_key.install()
        self.microphones.refresh()
        self.startup()

    @property
    def profile(self) -> Profile | None:
        return self.session.profile

    @property
    def settings(self) -> dict:
        return self.session.settings

    # -- layout and wiring ---------------------------------------------------------------

    def _build(self) -> None:
        self.first_run = FirstRunPage()
        self.wizard = EnrollmentWizard(self.recorder, self.transcription.check_take)
        self.adapt_view = AdaptView()
        self.dictation_view = DictationView()

        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.addItems(["Enroll", "Adapt", "Dictate"])
        self.nav.setFixedWidth(150)
        self.nav.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.wizard)
        self.pages.addWidget(self.adapt_view)
        self.pages.addWidget(self.dictation_view)
        main = QWidget()
        main_layout = QHBoxLayout(main)
        main_layout.setContentsMargins(0, 0, 0, 0)
        main_layout.setSpacing(0)
        main_layout.addWidget(self.nav)
        main_layout.addWidget(self.pages, 1)

        self.root = QStackedWidget()
        self.root.addWidget(self.first_run)
        self.root.addWidget(main)
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
        self.settings_action.triggered.connect(self.profile_actions.open_settings)
        quit_action.triggered.connect(self.close)
        self.about_action.triggered.connect(self.show_about)

    def _connect(self) -> None:
        self.recorder.level_changed.connect(self.first_run.meter.set_level)
        self.recorder.level_changed.connect(self.dictation_view.meter.set_level)
        self.recorder.take_ready.connect(self._take_ready)
        self.recorder.error.connect(lambda message: self.statusBar().showMessage(message, 10_000))
        self.microphones.names_changed.connect(
            lambda names: self.first_run.set_microphones(names, self.first_run.microphone())
        )
        self.microphones.availability_changed.connect(self._microphone_availability)
        self.microphones.availability_changed.connect(self.dictation_controller.set_microphone_state)
        self.first_run.create_requested.connect(self.create_profile)
        self.first_run.microphone_changed.connect(self.microphones.open)
        self.nav.currentRowChanged.connect(self.show_page)
        self.wizard.adapt_requested.connect(lambda: self.show_page(PAGE_ADAPT))
        self.wizard.takes_changed.connect(lambda _: self._refresh_summary())
        self.push_to_talk_key.pressed.connect(self.push_to_talk_pressed)
        self.push_to_talk_key.released.connect(self.push_to_talk_released)

        self.dictation_view.attach(self.dictation_controller)
        self.dictation_view.auto_copy_toggled.connect(lambda on: self.session.update_settings({"auto_copy": on}))
        self.dictation_controller.correction_saved.connect(self._refresh_summary)
        self.dictation_controller.file_transcribed.connect(self._file_done)
        self.dictation_controller.file_failed.connect(self._file_failed)

        self.adapt_view.attach(self.adaptation)
        self.adapt_view.record_more_requested.connect(self._record_more)
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
        self.first_run.name_edit.clear()
        self.first_run.set_microphones(self.microphones.names, self.settings.get("mic"))
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
        self.microphones.open(self.settings.get("mic") or "")
        self.transcription.set_model_dir(profile.model_dir())
        self.transcription.preload()
        self.wizard.set_profile(profile, self.prompts)
        self.dictation_view.set_history(profile.history())
        self._show_auto_copy()
        self.dictation_controller.forget_last()
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
        notice, model_text = outdated_model_notice(profile), model_in_use(profile)
        if not self.adaptation.is_running():
            self.adapt_view.set_summary(takes, corrections, model_text, notice)
        self.profile_label.setText(f"Profile: {profile.name}  \u00b7  {model_text}")
        return notice

    def _model_changed(self) -> None:
        """The open profile's adapted model was reset or replaced: use what it has now."""
        if self.profile is not None:
            self.transcription.set_model_dir(self.profile.model_dir())
        self._refresh_summary()

    def apply_settings(self, values: dict) -> None:
        old_mic = self.settings.get("mic")
        self.session.update_settings(values)
        self._show_auto_copy()
        if values.get("mic") != old_mic or self.recorder.source is None:
            self.microphones.open(values.get("mic") or "")

    def _show_auto_copy(self) -> None:
        self.dictation_view.auto_copy.blockSignals(True)  # the setting is there already
        self.dictation_view.auto_copy.setChecked(bool(self.settings["auto_copy"]))
        self.dictation_view.auto_copy.blockSignals(False)

    # -- pages ---------------------------------------------------------------------------

    def show_page(self, page: int) -> None:
        if self.recorder.is_recording():
            self.recorder.cancel()
        self.pages.setCurrentIndex(page)
        if self.nav.currentRow() != page:
            self.nav.blockSignals(True)
            self.nav.setCurrentRow(page)
            self.nav.blockSignals(False)
        if page == PAGE_ADAPT:
            self._refresh_summary()
        if page == PAGE_DICTATE:
            self.dictation_view.talk_button.setFocus()
        if page == PAGE_ENROLL:
            self.wizard.setFocus()

    def _record_more(self) -> None:
        self.wizard.start_session()
        self.show_page(PAGE_ENROLL)

    def _microphone_availability(self, available: bool, message: str) -> None:
        self.dictation_view.set_microphone_available(available, message)
        if not available and self.microphones.names:
            self.first_run.show_microphone_error(message)
        self.wizard.microphone_changed()

    # -- push-to-talk --------------------------------------------------------------------

    def _ptt_target(self) -> QWidget | None:
        """The page Space talks to now (None: Space is an ordinary key)."""
        if self.root.currentIndex() != ROOT_PROFILE:
            return None
        page = self.pages.currentIndex()
        if page == PAGE_DICTATE and self.dictation_view.wants_push_to_talk():
            return self.dictation_view
        if page == PAGE_ENROLL and self.wizard.wants_push_to_talk():
            return self.wizard
        return None

    def push_to_talk_pressed(self) -> None:
        target = self._ptt_target()
        if target is self.wizard:
            self.wizard.press()
        elif target is self.dictation_view:
            self.dictation_controller.start()

    def push_to_talk_released(self) -> None:
        if self.dictation_controller.is_listening():
            self.dictation_controller.stop()
        elif self.pages.currentIndex() == PAGE_ENROLL:
            self.wizard.release()

    def _take_ready(self, audio: np.ndarray) -> None:
        """Enrollment takes go to the wizard (dictation takes are the controller's)."""
        if (
            self.root.currentIndex() == ROOT_PROFILE
            and self.pages.currentIndex() == PAGE_ENROLL
            and not self.dictation_controller.is_listening()
        ):
            self.wizard.handle_take(audio)

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

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.adaptation.is_running():
            self.adaptation.cancel()  # the worker stops; the previous model stays installed
        self.recorder.close()
        self.push_to_talk_key.remove()
        self.transcription.wait(10_000)
        super().closeEvent(event)
