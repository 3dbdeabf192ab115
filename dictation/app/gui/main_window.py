"""Main window: first run, then Enroll / Adapt / Dictate pages for the open profile."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from dictation import __version__
from dictation.app import storage
from dictation.app.commands import apply_commands
from dictation.app.enrollment import EnrollmentError, Prompt, TakeCheck, check_take, load_prompts
from dictation.app.gui.adapt_runner import AdaptRunner
from dictation.app.gui.adapt_view import AdaptView
from dictation.app.gui.dictation_view import DictationView
from dictation.app.gui.engine import Engine
from dictation.app.gui.first_run import NO_MIC_TEXT, FirstRunPage
from dictation.app.gui.recorder import AudioSource, Recorder
from dictation.app.gui.services import NoMicrophoneError, Services
from dictation.app.gui.settings_dialog import SettingsDialog, with_defaults
from dictation.app.gui.style import STYLE_SHEET
from dictation.app.gui.wizard import EnrollmentWizard
from dictation.app.logs import log_dir
from dictation.app.profiles import (
    CorruptProfileError,
    Profile,
    ProfileError,
    delete_profile,
    list_profiles,
)
from dictation.app.runtime import ModelMissingError, bundled_model_version

log = logging.getLogger(__name__)

PAGE_ENROLL, PAGE_ADAPT, PAGE_DICTATE = 0, 1, 2
# Live preview while the key is held: one partial transcription in flight at a time, of
# at most the last PARTIAL_MAX_SECONDS, so the final transcription waits for at most
# one short partial.
PARTIAL_INTERVAL_MS = 900
PARTIAL_MIN_SECONDS = 0.8
PARTIAL_MAX_SECONDS = 8.0
_GUI_STATE = "gui.json"  # app-level state (last used profile) in the data root


def _read_state() -> dict:
    import json

    path = storage.data_root() / _GUI_STATE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(state: dict) -> None:
    try:
        storage.atomic_write_json(storage.data_root() / _GUI_STATE, state)
    except OSError:
        log.warning("could not save the window state", exc_info=True)


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
        self._injected_source = audio_source
        self.profile: Profile | None = None
        self.settings: dict = with_defaults({})
        self.runner: AdaptRunner | None = None
        self.last_audio: np.ndarray | None = None
        self.last_hypothesis = ""
        self.microphones: list[str] = []
        self.mic_error = ""
        try:
            self.prompts = prompts if prompts is not None else load_prompts()
        except EnrollmentError as exc:
            self.prompts = []
            log.error("%s", exc)

        self.setWindowTitle("Dictation")
        self.resize(920, 620)
        self.setStyleSheet(STYLE_SHEET)
        self.engine = Engine(self.services, self)
        self.recorder = Recorder(parent=self)
        self._build()
        self._build_menus()
        self._connect()
        QApplication.instance().installEventFilter(self)
        self.refresh_microphones()
        self.startup()

    # -- layout --------------------------------------------------------------------------

    def _build(self) -> None:
        self.first_run = FirstRunPage()
        self.wizard = EnrollmentWizard(self.recorder, self._check_take)
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
        self.settings_action.triggered.connect(self.open_settings)
        quit_action.triggered.connect(self.close)
        self.about_action.triggered.connect(self.show_about)

    def _connect(self) -> None:
        self._partial_busy = False
        self._partial_timer = QTimer(self)
        self._partial_timer.setInterval(PARTIAL_INTERVAL_MS)
        self._partial_timer.timeout.connect(self._partial_tick)
        self.recorder.recording_changed.connect(lambda on: None if on else self._partial_timer.stop())
        self.recorder.level_changed.connect(self.first_run.meter.set_level)
        self.recorder.level_changed.connect(self.dictation_view.meter.set_level)
        self.recorder.recording_changed.connect(self.dictation_view.set_recording)
        self.recorder.take_ready.connect(self._take_ready)
        self.recorder.error.connect(self._recording_error)
        self.first_run.create_requested.connect(self.create_profile)
        self.first_run.microphone_changed.connect(self._open_microphone)
        self.nav.currentRowChanged.connect(self.show_page)
        self.wizard.adapt_requested.connect(lambda: self.show_page(PAGE_ADAPT))
        self.wizard.takes_changed.connect(lambda _: self._refresh_summary())
        self.adapt_view.start_requested.connect(self.start_adaptation)
        self.adapt_view.cancel_requested.connect(self.cancel_adaptation)
        self.adapt_view.record_more_requested.connect(self._record_more)
        self.dictation_view.talk_pressed.connect(self.push_to_talk_pressed)
        self.dictation_view.talk_released.connect(self.push_to_talk_released)
        self.dictation_view.copy_requested.connect(self.copy_text)
        self.dictation_view.correction_submitted.connect(self.save_correction)
        self.dictation_view.auto_copy_toggled.connect(self._auto_copy_toggled)

    # -- profiles ------------------------------------------------------------------------

    def startup(self) -> None:
        """Open the last used profile, or show the first-run page."""
        try:
            names = list_profiles()
        except OSError as exc:
            QMessageBox.critical(self, "Dictation", f"The data folder is not usable: {exc}")
            names = []
        if not names:
            self.show_first_run()
            return
        last = _read_state().get("last_profile")
        self.open_profile(last if last in names else names[0])

    def show_first_run(self) -> None:
        self.recorder.cancel()
        self.first_run.name_edit.clear()
        self.first_run.set_microphones(self.microphones, self.settings.get("mic"))
        if self.recorder.source is None:  # the live level meter needs a running capture
            self._open_microphone(self.first_run.microphone())
        if self.mic_error and self.microphones:
            self.first_run.show_microphone_error(self.mic_error)
        self.root.setCurrentIndex(0)
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
            profile = Profile.open(name)
            settings = with_defaults(profile.settings())
        except (CorruptProfileError, ProfileError, OSError) as exc:
            QMessageBox.warning(self, "Dictation", f"The profile \u201c{name}\u201d could not be opened: {exc}")
            self.show_first_run()
            return False
        if (
            self.runner is not None
            and self.runner.is_running()
            and (self.profile is None or self.profile.name != profile.name)
        ):
            self.runner.cancel()  # it belongs to the profile being closed
        self.profile = profile
        self.settings = settings
        _write_state({**_read_state(), "last_profile": profile.name})
        self._open_microphone(settings.get("mic") or "")
        self.engine.set_model_dir(profile.model_dir())
        self.engine.preload()
        self.wizard.set_profile(profile, self.prompts)
        self.dictation_view.set_history(profile.history())
        self.dictation_view.auto_copy.blockSignals(True)
        self.dictation_view.auto_copy.setChecked(bool(settings["auto_copy"]))
        self.dictation_view.auto_copy.blockSignals(False)
        self.last_audio = None
        notice = self._refresh_summary()
        self.root.setCurrentIndex(1)
        if page is None:
            page = PAGE_DICTATE if (profile.takes() or profile.model_dir()) else PAGE_ENROLL
        self.show_page(page)
        if notice:
            self.statusBar().showMessage(notice, 30_000)
        return True

    def _model_text(self) -> str:
        if self.profile is None or self.profile.model_dir() is None:
            return "base model (not adapted yet)"
        try:
            meta = self.profile.metadata
        except ProfileError:
            return "adapted model (its details are unreadable)"
        when = str(meta.get("created") or meta.get("date") or "")[:16].replace("T", " ")
        return f"adapted to your voice{' on ' + when if when else ''}"

    def outdated_model_notice(self) -> str:
        """A sentence asking to adapt again when the profile's adapted model was made from an
        older bundled speech model than this installation ships; "" otherwise."""
        if self.profile is None:
            return ""
        try:
            shipped = bundled_model_version()
            old = self.profile.outdated_model(shipped)
        except (ProfileError, ModelMissingError, OSError):
            return ""
        if old is None:
            return ""
        return (
            f"Your adapted model was made from speech model {old}; this version of Dictation "
            f"ships {shipped}. Adapt again to build on the new model: your "
            "recordings are kept, and the current model stays in use until the new one has "
            "passed its check."
        )

    def _refresh_summary(self) -> str:
        """Update the Adapt page's summary and the profile label; return the adapt-again
        notice ("" if none)."""
        if self.profile is None:
            self.profile_label.setText("")
            return ""
        try:
            takes, corrections = len(self.profile.takes()), len(self.profile.corrections())
        except (ProfileError, OSError):
            takes, corrections = 0, 0
        notice, model_text = self.outdated_model_notice(), self._model_text()
        if not (self.runner and self.runner.is_running()):
            self.adapt_view.set_summary(takes, corrections, model_text, notice)
        self.profile_label.setText(f"Profile: {self.profile.name}  \u00b7  {model_text}")
        return notice

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

    # -- microphone ----------------------------------------------------------------------

    def refresh_microphones(self) -> None:
        if self._injected_source is not None:
            self.microphones = [getattr(self._injected_source, "name", "Injected audio source")]
            return
        try:
            self.microphones = self.services.list_microphones()
            self.mic_error = ""
        except NoMicrophoneError as exc:
            self.microphones = []
            self.mic_error = f"The sound system is not available ({exc})."
        self.first_run.set_microphones(self.microphones)

    def _open_microphone(self, name: str) -> None:
        if self._injected_source is not None:
            source: AudioSource | None = self._injected_source
            self.mic_error = ""
        elif not self.microphones:
            source = None
            self.mic_error = NO_MIC_TEXT
        else:
            self.recorder.set_source(None)  # release the old device before opening another
            try:
                source = self.services.open_microphone(name or None)
                self.mic_error = ""
            except NoMicrophoneError as exc:
                source = None
                self.mic_error = (
                    f"The microphone \u201c{name or 'default'}\u201d could not be "
                    f"opened ({exc}). Choose another one in Settings. You can "
                    "still transcribe files (File \u2192 Transcribe file\u2026)."
                )
        self.recorder.set_source(source)
        available = source is not None
        self.dictation_view.set_microphone_available(available, self.mic_error)
        if not available and self.microphones:
            self.first_run.show_microphone_error(self.mic_error)
        self.wizard.microphone_changed()

    # -- push-to-talk --------------------------------------------------------------------

    def _ptt_target(self) -> Any:
        if self.root.currentIndex() != 1:
            return None
        page = self.pages.currentIndex()
        if page == PAGE_DICTATE and self.dictation_view.wants_push_to_talk():
            return self.dictation_view
        if page == PAGE_ENROLL and self.wizard.wants_push_to_talk():
            return self.wizard
        return None

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Space held anywhere in this window (outside text fields) is push-to-talk."""
        etype = event.type()
        if etype == QEvent.Type.WindowDeactivate and obj is self and self.recorder.is_recording():
            # The key release will go to another window: end the take now.
            self.push_to_talk_released()
        is_space = (
            etype in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease)
            and isinstance(obj, QWidget)
            and event.key() == Qt.Key.Key_Space
            and obj.window() is self
            and QApplication.activeModalWidget() is None
        )
        if is_space and (self._ptt_target() is not None or self.recorder.is_recording()):
            if not event.isAutoRepeat():  # holding the key repeats it: only the first counts
                if etype == QEvent.Type.KeyPress:
                    self.push_to_talk_pressed()
                else:
                    self.push_to_talk_released()
            return True
        return super().eventFilter(obj, event)

    def push_to_talk_pressed(self) -> None:
        target = self._ptt_target()
        if target is self.wizard:
            self.wizard.press()
        elif target is self.dictation_view:
            if not self.recorder.begin():
                self.dictation_view.show_status(self.mic_error or "No microphone.", "bad")
            elif (self.settings or {}).get("live_preview", True):
                self._partial_timer.start()

    def _partial_tick(self) -> None:
        """Transcribe the take so far (its last few seconds) and show it as a preview."""
        if self._partial_busy or not self.recorder.is_recording() or self.pages.currentIndex() != PAGE_DICTATE:
            return
        audio = self.recorder.snapshot()
        rate = self.recorder.sample_rate
        if audio is None or audio.size < PARTIAL_MIN_SECONDS * rate:
            return
        audio = audio[-int(PARTIAL_MAX_SECONDS * rate) :]
        self._partial_busy = True

        def done(transcript: Any) -> None:
            self._partial_busy = False
            if self.recorder.is_recording():  # the final text may already be on its way
                self.dictation_view.show_partial(str(transcript.text))

        def failed(message: str) -> None:
            self._partial_busy = False
            log.debug("partial transcription failed: %s", message)

        self.engine.transcribe(audio, rate, done, failed, beam=1)  # a preview: greedy, half the CPU

    def push_to_talk_released(self) -> None:
        if self.pages.currentIndex() == PAGE_ENROLL:
            self.wizard.release()
        else:
            self.recorder.end()

    def _recording_error(self, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)
        if self.pages.currentIndex() == PAGE_DICTATE:
            self.dictation_view.show_status(message, "bad")

    def _take_ready(self, audio: np.ndarray) -> None:
        if self.root.currentIndex() != 1:
            return
        if self.pages.currentIndex() == PAGE_ENROLL:
            self.wizard.handle_take(audio)
        elif self.pages.currentIndex() == PAGE_DICTATE:
            self.dictate(audio, self.recorder.sample_rate)

    def _check_take(self, audio, sample_rate, text, on_done, on_error) -> None:
        """Wizard checker: signal checks, then the base model's transcript (engine thread)."""
        engine = self.engine

        def run() -> TakeCheck:
            result = check_take(audio, text, sample_rate)  # cheap checks first, no model needed
            if not result.ok:
                return result
            return check_take(audio, text, sample_rate, transcriber=engine.base_transcriber())

        engine.submit(run, on_done, on_error)

    # -- dictation -----------------------------------------------------------------------

    def dictate(self, audio: np.ndarray, sample_rate: int) -> None:
        """Transcribe a push-to-talk take off the GUI thread, then show and keep it."""
        self.dictation_view.show_status("Transcribing\u2026")
        self.engine.transcribe(
            audio,
            sample_rate,
            lambda transcript: self._dictated(audio, transcript),
            lambda message: self.dictation_view.show_status(f"Transcription failed: {message}", "bad"),
            beam=self.settings.get("beam"),
        )

    def _dictated(self, audio: np.ndarray, transcript: Any) -> None:
        hypothesis = str(transcript.text).strip()
        text = apply_commands(hypothesis) if self.settings.get("commands") else hypothesis
        if not text.strip():
            self.dictation_view.show_status("Nothing was recognised. Hold the key while you speak.")
            return
        self.dictation_view.append_transcript(text)
        self.last_audio, self.last_hypothesis = audio, hypothesis
        self.dictation_view.set_last_dictation(hypothesis)
        if self.profile is not None:
            try:
                self.profile.append_history(text)
            except (ProfileError, OSError) as exc:
                self.dictation_view.show_status(f"Could not save to history: {exc}", "bad")
        self.dictation_view.add_history_item(text)
        if self.settings.get("auto_copy"):
            QGuiApplication.clipboard().setText(text)
            self.dictation_view.show_status("Copied to the clipboard.", "good")
        else:
            self.dictation_view.show_status("")

    def copy_text(self) -> None:
        """Copy the selection, or all of the text area when nothing is selected."""
        cursor = self.dictation_view.text.textCursor()
        text = cursor.selectedText().replace("\u2029", "\n") or self.dictation_view.text.toPlainText()
        QGuiApplication.clipboard().setText(text)
        self.dictation_view.show_status("Copied to the clipboard.", "good")

    def save_correction(self, corrected: str) -> None:
        if self.profile is None or self.last_audio is None:
            return
        try:
            self.profile.add_correction(self.last_audio, self.last_hypothesis, corrected)
        except (ProfileError, OSError) as exc:
            self.dictation_view.show_status(f"The correction could not be saved: {exc}", "bad")
            return
        self.dictation_view.correction_done()
        self.dictation_view.show_status("Correction saved. It will be used the next time you adapt.", "good")
        self._refresh_summary()

    def _auto_copy_toggled(self, checked: bool) -> None:
        self.settings["auto_copy"] = checked
        self._save_settings()

    def _save_settings(self) -> None:
        if self.profile is None:
            return
        try:
            self.profile.save_settings(self.settings)
        except (ProfileError, OSError) as exc:
            self.statusBar().showMessage(f"Settings could not be saved: {exc}", 8000)

    # -- files ---------------------------------------------------------------------------

    def _ask_transcribe_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Transcribe file", str(Path.home()), "Audio files (*.wav *.flac *.ogg *.mp3);;All files (*)"
        )
        if path:
            self.transcribe_file(Path(path))

    def transcribe_file(self, path: Path) -> None:
        """Transcribe an audio file (works without a microphone); reading happens off the
        GUI thread too, since a long file takes a while to decode and resample."""
        self.statusBar().showMessage(f"Transcribing {path.name}\u2026")
        self.engine.transcribe_file(
            path,
            lambda t: self._file_done(path, t),
            lambda message: self._file_failed(path, message),
            beam=self.settings.get("beam"),
        )

    def _file_done(self, path: Path, transcript: Any) -> None:
        text = str(transcript.text).strip()
        self.statusBar().showMessage(f"Transcribed {path.name}", 8000)
        if self.root.currentIndex() == 1:
            self.show_page(PAGE_DICTATE)
            if text:
                self.dictation_view.append_transcript(text)
                self.dictation_view.add_history_item(text)
                if self.profile is not None:
                    self.profile.append_history(text)
            return
        box = QMessageBox(QMessageBox.Icon.Information, "Transcript", text or "(no speech found)", parent=self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()
        self.file_result_box = box

    def _file_failed(self, path: Path, message: str) -> None:
        self.statusBar().clearMessage()
        QMessageBox.warning(self, "Transcribe file", f"{path.name} could not be transcribed: {message}")

    # -- adaptation ----------------------------------------------------------------------

    def start_adaptation(self) -> None:
        if self.profile is None or (self.runner is not None and self.runner.is_running()):
            return
        try:
            job = self.services.make_job(
                self.profile.name, self.services.adapt_steps, str(self.settings.get("device") or "auto")
            )
        except Exception as exc:
            self.adapt_view.show_failed(str(exc))
            return
        runner = AdaptRunner(job, self)
        runner.progress.connect(self.adapt_view.show_progress)
        runner.status.connect(self.adapt_view.step_label.setText)
        runner.finished.connect(self._adapted)
        runner.failed.connect(self._adapt_failed)
        runner.cancelled.connect(self._adapt_cancelled)
        self.runner = runner
        self.adapt_view.set_running(True)
        runner.start()

    def cancel_adaptation(self) -> None:
        if self.runner is not None:
            self.adapt_view.step_label.setText("Cancelling\u2026")
            self.runner.cancel()

    def _adapted(self, message: dict) -> None:
        if self.profile is not None and message.get("installed"):
            model_dir = self.profile.model_dir()
            if model_dir is not None:
                self.engine.forget(model_dir)  # same path, new files: drop the cached session
            self.engine.set_model_dir(model_dir)
            self.engine.preload()
        self.adapt_view.show_finished(message)
        self._refresh_summary()

    def _adapt_failed(self, message: str) -> None:
        self.adapt_view.show_failed(message)
        self._refresh_summary()

    def _adapt_cancelled(self) -> None:
        self.adapt_view.show_cancelled()
        self._refresh_summary()

    # -- settings and dialogs ------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        """Show the settings dialog (non-blocking; returns it so tests can drive it)."""
        self.refresh_microphones()
        try:
            names = list_profiles()
        except OSError:
            names = []
        dialog = SettingsDialog(self.settings, self.microphones, names, self.profile.name if self.profile else "", self)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.values()))
        dialog.switch_requested.connect(lambda name: (dialog.reject(), self.open_profile(name)))
        dialog.new_requested.connect(lambda: (dialog.reject(), self.show_first_run()))
        dialog.reset_requested.connect(self.reset_profile)
        dialog.previous_requested.connect(lambda: self.use_previous_model(dialog))
        dialog.previous_button.setEnabled(self._has_previous_model())
        dialog.delete_requested.connect(lambda name: self.delete_profile(name, dialog))
        dialog.export_requested.connect(self._ask_export)
        dialog.import_requested.connect(lambda: (dialog.reject(), self._ask_import()))
        dialog.open()
        self.settings_dialog = dialog
        return dialog

    def apply_settings(self, values: dict) -> None:
        old_mic = self.settings.get("mic")
        self.settings.update(values)
        self.dictation_view.auto_copy.setChecked(bool(self.settings["auto_copy"]))
        self._save_settings()
        if values.get("mic") != old_mic or self.recorder.source is None:
            self._open_microphone(values.get("mic") or "")

    def reset_profile(self) -> None:
        if self.profile is None:
            return
        answer = QMessageBox.question(
            self,
            "Reset to base model",
            "Remove the adapted model and go back to the base model? Your recordings are kept.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.profile.reset_to_base()
        self.engine.set_model_dir(None)
        self._refresh_summary()

    def _has_previous_model(self) -> bool:
        try:
            return self.profile is not None and self.profile.previous_metadata() is not None
        except ProfileError:
            return False

    def use_previous_model(self, dialog: SettingsDialog | None = None) -> None:
        """Go back to the model installed before the last adaptation (after confirmation)."""
        if not self._has_previous_model():
            return
        previous = self.profile.previous_metadata() or {}
        when = str(previous.get("installed") or previous.get("created") or "an earlier adaptation")
        answer = QMessageBox.question(
            self,
            "Use previous model",
            f"Go back to the adapted model from {when}? The current adapted model is removed; "
            "your recordings are kept.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            self.profile.restore_previous_model()
        except (ProfileError, OSError) as exc:
            QMessageBox.warning(self, "Use previous model", f"Could not switch models: {exc}")
            return
        self.engine.set_model_dir(self.profile.model_dir())
        self._refresh_summary()
        if dialog is not None:
            dialog.previous_button.setEnabled(self._has_previous_model())

    def delete_profile(self, name: str, dialog: QWidget | None = None) -> bool:
        answer = QMessageBox.question(
            self,
            "Delete profile",
            f"Delete the profile \u201c{name}\u201d and all its recordings from this computer? This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        if self.runner is not None and self.runner.is_running() and self.profile and self.profile.name == name:
            self.runner.cancel()
        try:
            delete_profile(name)
        except (ProfileError, OSError) as exc:
            QMessageBox.warning(self, "Delete profile", f"Could not delete {name}: {exc}")
            return False
        if dialog is not None:
            dialog.close()
        if self.profile is not None and self.profile.name == name:
            self.profile = None
            self.startup()
        return True

    def _ask_export(self) -> None:
        if self.profile is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export profile",
            str(Path.home() / f"{self.profile.name}.dictation-profile.zip"),
            "Profile archives (*.zip)",
        )
        if path:
            try:
                self.profile.export_archive(Path(path))
            except (ProfileError, OSError) as exc:
                QMessageBox.warning(self, "Export profile", f"Export failed: {exc}")
                return
            self.statusBar().showMessage(f"Profile exported to {path}", 8000)

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import profile", str(Path.home()), "Profile archives (*.zip)")
        if not path:
            return
        try:
            profile = Profile.import_archive(Path(path))
        except ProfileError as exc:
            if "exist" not in str(exc).lower():
                QMessageBox.warning(self, "Import profile", f"Import failed: {exc}")
                return
            name, ok = QInputDialog.getText(self, "Import profile", f"{exc}\nImport it under another name:")
            if not ok or not name.strip():
                return
            try:
                profile = Profile.import_archive(Path(path), name.strip())
            except (ProfileError, OSError) as exc2:
                QMessageBox.warning(self, "Import profile", f"Import failed: {exc2}")
                return
        except OSError as exc:
            QMessageBox.warning(self, "Import profile", f"Import failed: {exc}")
            return
        self.open_profile(profile.name)

    def about_text(self) -> str:
        model = "base model"
        if self.profile is not None and self.profile.model_dir() is not None:
            try:
                made_from = self.profile.adapted_from()
            except ProfileError:
                made_from = None
            model = f"adapted model (made from {made_from})" if made_from else "adapted model"
        try:
            base = bundled_model_version()
        except (ModelMissingError, OSError):
            base = "not installed"
        return (
            f"<h3>Dictation {__version__}</h3>"
            "<p>Desktop dictation that learns your voice on your own computer.</p>"
            f"<p>Speech model: {base} (Whisper tiny.en based); in use: {model}.</p>"
            f"<p>Your data (profiles, recordings, models) lives in:<br><code>"
            f"{storage.data_root()}</code></p>"
            f"<p>Logs: <code>{log_dir()}</code></p>"
            "<p>Nothing you say leaves this computer.</p>"
        )

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About Dictation", self.about_text(), parent=self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()
        self.about_box = box

    # -- shutdown ------------------------------------------------------------------------

    def closeEvent(self, event) -> None:
        if self.runner is not None and self.runner.is_running():
            self.runner.cancel()  # the worker stops; the previous model stays installed
        self.recorder.close()
        QApplication.instance().removeEventFilter(self)
        self.engine.wait(10_000)
        super().closeEvent(event)
