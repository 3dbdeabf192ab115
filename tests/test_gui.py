"""The desktop app under pytest-qt (offscreen): real widgets, real profiles on disk, the real
onnxruntime transcriber and the real adaptation worker process.

Audio comes from `ScriptedSource`, an injected capture that hands out prepared clips
(flite speech) on each push-to-talk; the PulseAudio path is covered by
tests/test_gui_audio.py. Adaptation runs the real `AdaptationJob`; where a test needs it to
be slow, crash or finish quickly it uses the worker's documented test hook
(DICTATION_TEST_ADAPT_TARGET) pointing at the small functions at the end of this file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import soundfile as sf

THIS_FILE = Path(__file__).resolve()
REPO = THIS_FILE.parent.parent
WAIT_MS = 60_000  # model load + decode on a loaded 2-core machine
ADAPT_WAIT_MS = 180_000  # spawn + torch import in the worker, then the job


# -- helpers ------------------------------------------------------------------------------

_speech_cache: dict[str, np.ndarray] = {}


def speech(text: str) -> np.ndarray:
    """`text` spoken by flite's 16 kHz 'slt' voice (Debian package `flite`)."""
    if text in _speech_cache:
        return _speech_cache[text]
    if shutil.which("flite") is None:
        message = "flite (apt-get install flite) is needed to synthesize test speech"
        if os.environ.get("DICTATION_REQUIRE_AUDIO") == "1":
            pytest.fail(message)
        pytest.skip(message)
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    out = tmp / f"gui-speech-{os.getpid()}-{len(_speech_cache)}.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(out)], check=True)
    audio, rate = sf.read(out, dtype="float32")
    out.unlink()
    assert rate == 16000
    _speech_cache[text] = audio
    return audio


class ScriptedSource:
    """An injected audio capture: each take returns the next prepared clip."""

    sample_rate = 16000
    name = "Scripted test microphone"

    def __init__(self) -> None:
        self.clips: list[np.ndarray] = []
        self.current: np.ndarray | None = None
        self.closed = False

    def start_take(self) -> None:
        self.current = self.clips.pop(0)

    def stop_take(self) -> np.ndarray:
        clip, self.current = self.current, None
        return clip

    def level(self) -> float:
        return 0.5 if self.current is not None else 0.05

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="session")
def model_cache(shared_model_cache) -> Path:
    """The session-wide model cache of conftest.py: the base ONNX model is exported once."""
    return shared_model_cache


@pytest.fixture()
def home(tmp_path, monkeypatch, model_cache) -> Path:
    """A private data root; the exported base model stays in the session's cache."""
    monkeypatch.setenv("DICTATION_CACHE", str(model_cache))
    monkeypatch.setenv("DICTATION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DICTATION_TEST_ADAPT_TARGET", raising=False)
    return tmp_path / "home"


@pytest.fixture()
def source() -> ScriptedSource:
    return ScriptedSource()


def push_to_talk(qtbot, window, widget) -> None:
    """Hold Space on `widget` and release it (the window routes it to the recorder)."""
    from PySide6.QtCore import Qt

    qtbot.keyPress(widget, Qt.Key.Key_Space)
    qtbot.keyRelease(widget, Qt.Key.Key_Space)
    # A release counts once no press follows within a few tens of ms (an unflagged repeat).
    qtbot.waitUntil(lambda: not window.profile_pages.key.is_held(), timeout=2000)


def create_profile(qtbot, window, name: str = "Alex") -> None:
    window.first_run.name_edit.setText(name)
    window.first_run.create_button.click()
    assert window.profile is not None and window.profile.name == name


def wait_wizard_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.wizard._checking, timeout=WAIT_MS)


def add_speech_takes(profile, prompts, count: int) -> None:
    for prompt in prompts[:count]:
        profile.add_take(prompt.id, prompt.text, speech(prompt.text), {"test": True})


# -- no torch in the GUI ------------------------------------------------------------------


def test_gui_never_imports_torch(home):
    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "import dictation.app.gui.app\n"
        "from dictation.app.gui.main_window import MainWindow\n"
        "from dictation.app.gui.services import Services\n"
        "w = MainWindow(services=Services(list_microphones=lambda: []))\n"
        "w.show(); app.processEvents(); w.close()\n"
        # What the window imports later, on first use: the job runner and the runtime.
        "import dictation.app.gui.adapt_runner, dictation.app.adapt_job, dictation.app.runtime\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print('TORCH' if bad else 'CLEAN', bad[:3])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )
    assert result.returncode == 0, result.stderr
    assert "CLEAN" in result.stdout, result.stdout


def test_qt_signals_do_not_leak_references(qtbot):
    """PySide6 6.12.0 on Python 3.11 drops a reference to True/None on every signal
    delivered to Python: a long dictation session then dies with 'Fatal Python error:
    bool_dealloc'. pyproject must exclude such a version; this catches it."""
    from PySide6.QtCore import QObject, QTimer, Signal

    class Emitter(QObject):
        changed = Signal(bool)

    emitter, seen = Emitter(), []
    emitter.changed.connect(seen.append)
    before = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(200):
        emitter.changed.emit(i % 2 == 0)
    timer = QTimer()
    timer.timeout.connect(lambda: seen.append(None))
    timer.start(1)
    qtbot.waitUntil(lambda: len(seen) >= 250, timeout=5000)
    timer.stop()
    seen.clear()
    after = sys.getrefcount(True), sys.getrefcount(None)
    assert after[0] >= before[0] - 5 and after[1] >= before[1] - 5, (before, after)


def test_run_app_starts_the_window_and_returns_the_exit_status(home):
    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "def check():\n"
        "    shown = [w for w in app.topLevelWidgets() if w.isVisible()]\n"
        "    print('WINDOWS', [w.windowTitle() for w in shown])\n"
        "    app.exit(0)\n"
        "QTimer.singleShot(1500, check)\n"
        "from dictation.app.gui.app import run_app\n"
        "sys.exit(run_app(debug=False))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )
    assert result.returncode == 0, result.stderr
    assert "WINDOWS ['Dictation']" in result.stdout, result.stdout


# -- smoke, first run, no microphone ------------------------------------------------------


def test_main_window_opens_on_first_run_and_closes_cleanly(make_window, source, qtbot):
    from PySide6.QtWidgets import QApplication

    window = make_window(audio_source=source)
    assert window.root.currentIndex() == 0  # first run: no profiles yet
    assert window.first_run.mic_combo.currentText() == ScriptedSource.name
    qtbot.waitUntil(lambda: window.first_run.meter.level() > 0.0, timeout=2000)  # live meter
    window.close()
    assert source.closed
    # The push-to-talk event filter is gone: Space elsewhere is not swallowed any more.
    assert window.recorder.source is None
    QApplication.processEvents()


def test_empty_profile_name_is_refused(make_window, source, qtbot):
    from dictation.app.profiles import list_profiles

    window = make_window(audio_source=source)
    window.first_run.create_button.click()
    assert "enter a name" in window.first_run.error_label.text()
    window.first_run.name_edit.setText("bad/name")
    window.first_run.create_button.click()
    assert "not allowed" in window.first_run.error_label.text()
    assert list_profiles() == []


def test_no_microphone_gives_a_clear_message_and_files_still_transcribe(make_window, qtbot, tmp_path):
    from dictation.app.gui.services import Services

    window = make_window(services=Services(list_microphones=lambda: []))
    assert "No microphone was found" in window.first_run.mic_status.text()
    assert not window.first_run.mic_combo.isEnabled()
    create_profile(qtbot, window)
    window.show_page(2)
    view = window.dictation_view
    assert not view.talk_button.isEnabled()
    assert "No microphone" in view.status.text()
    assert not window.wizard.record_button.isEnabled()
    # File -> Transcribe file... works without a microphone.
    wav = tmp_path / "note.wav"
    sf.write(wav, speech("Please call me back tomorrow morning."), 16000)
    window.transcribe_file(wav)
    qtbot.waitUntil(lambda: "tomorrow" in view.text.toPlainText().lower(), timeout=WAIT_MS)
    assert window.profile.history()[-1]["text"] == view.text.toPlainText()


def test_unreadable_audio_file_is_reported(make_window, source, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    window = make_window(audio_source=source)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really")
    window.transcribe_file(bad)
    qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)
    assert "broken.wav could not be transcribed" in shown[0] and "Cannot read" in shown[0]
    assert window.isEnabled() and window.transcription.wait(1000)


# -- enrollment ---------------------------------------------------------------------------


def test_enrollment_rejects_bad_takes_saves_good_ones_and_survives_closing(make_window, source, qtbot):
    from dictation.app.profiles import Profile

    window = make_window(audio_source=source)
    create_profile(qtbot, window)
    wizard = window.wizard
    assert window.pages.currentIndex() == 0
    assert wizard.progress_label.text() == "Sentence 1 of 10"
    first = wizard.current_prompt()

    # A silent take: rejected with a plain reason, nothing saved, Next stays disabled.
    source.clips.append(np.zeros(16000 * 3, np.float32))
    push_to_talk(qtbot, window, wizard)
    wait_wizard_idle(qtbot, window)
    assert "Nothing was heard" in wizard.status.text()
    assert not wizard.next_button.isEnabled()
    assert window.profile.takes() == []

    # Reading a different sentence: the base model's transcript is far from the prompt.
    source.clips.append(speech("She poured a cup of strong coffee and read the morning news."))
    wizard.record_button.pressed.emit()
    wizard.record_button.released.emit()
    wait_wizard_idle(qtbot, window)
    assert "did not sound like the sentence" in wizard.status.text()
    assert window.profile.takes() == []
    assert wizard.keep_button.isVisible()  # the user may overrule the transcript check

    # The right sentence: accepted and saved at once.
    source.clips.append(speech(first.text))
    push_to_talk(qtbot, window, wizard)
    wait_wizard_idle(qtbot, window)
    assert "Good take" in wizard.status.text(), wizard.status.text()
    takes = window.profile.takes()
    assert [t.prompt_id for t in takes] == [first.id]
    assert takes[0].quality["cer"] <= 0.5
    assert wizard.play_button.isEnabled()
    wizard.play_button.click()  # plays, or says plainly why it cannot: never raises

    # Re-recording an accepted prompt replaces its take instead of adding a second one.
    source.clips.append(speech(first.text))
    push_to_talk(qtbot, window, wizard)
    wait_wizard_idle(qtbot, window)
    assert len(window.profile.takes()) == 1 and window.profile.takes()[0].id != takes[0].id

    wizard.next_button.click()
    assert wizard.progress_label.text() == "Sentence 2 of 10"
    wizard.skip_button.click()
    assert wizard.progress_label.text() == "Sentence 3 of 10"
    third = wizard.current_prompt()
    source.clips.append(speech(third.text))
    push_to_talk(qtbot, window, wizard)
    wait_wizard_idle(qtbot, window)
    assert "Good take" in wizard.status.text(), wizard.status.text()

    # Closing mid-wizard loses nothing that was accepted.
    window.close()
    reopened = Profile.open("Alex")
    assert sorted(t.prompt_id for t in reopened.takes()) == sorted([first.id, third.id])
    assert all(t.wav_path.is_file() for t in reopened.takes())

    # Reopening the app resumes with the prompts not yet recorded.
    again = make_window(audio_source=ScriptedSource())
    assert again.profile.name == "Alex"
    again.show_page(0)
    assert first.id not in {p.id for p in again.wizard.session}
    assert third.id not in {p.id for p in again.wizard.session}


def test_misread_take_can_be_kept_on_the_users_word(make_window, source, qtbot):
    window = make_window(audio_source=source)
    create_profile(qtbot, window)
    wizard = window.wizard
    source.clips.append(speech("She poured a cup of strong coffee and read the morning news."))
    push_to_talk(qtbot, window, wizard)
    wait_wizard_idle(qtbot, window)
    assert wizard.keep_button.isVisible() and not wizard.next_button.isEnabled()
    wizard.keep_button.click()
    takes = window.profile.takes()
    assert len(takes) == 1 and takes[0].quality["kept_by_user"] is True
    assert takes[0].prompt_id == wizard.current_prompt().id
    assert wizard.next_button.isEnabled() and not wizard.keep_button.isVisible()
    # Signal problems cannot be overruled: a silent take offers no "keep".
    wizard.next_button.click()
    source.clips.append(np.zeros(16000 * 3, np.float32))
    push_to_talk(qtbot, window, wizard)
    wait_wizard_idle(qtbot, window)
    assert not wizard.keep_button.isVisible()


def test_wizard_session_end_offers_adaptation(make_window, source, qtbot):
    window = make_window(audio_source=source)
    create_profile(qtbot, window)
    wizard = window.wizard
    for _ in range(len(wizard.session)):
        wizard.skip_button.click()
    assert wizard.pages.currentIndex() == 1
    assert not wizard.adapt_button.isEnabled()  # no takes yet: nothing to adapt on


# -- dictation ----------------------------------------------------------------------------


def open_with_profile(make_window, source, name: str = "Sam", **settings):
    from dictation.app.profiles import Profile

    profile = Profile.create(name)
    profile.save_settings({"auto_copy": True, **settings})
    window = make_window(audio_source=source)
    assert window.profile.name == name
    window.show_page(2)
    return window


def test_dictation_push_to_talk_appends_copies_and_keeps_history(make_window, source, qtbot):
    from PySide6.QtGui import QGuiApplication

    from dictation.app.profiles import Profile

    window = open_with_profile(make_window, source)
    view = window.dictation_view
    source.clips.append(speech("The meeting starts at nine thirty tomorrow."))
    push_to_talk(qtbot, window, view.talk_button)
    qtbot.waitUntil(lambda: "meeting" in view.text.toPlainText().lower(), timeout=WAIT_MS)
    text = view.text.toPlainText()
    assert QGuiApplication.clipboard().text() == text
    assert view.history.count() == 1 and view.history.item(0).text() == text
    assert Profile.open("Sam").history()[-1]["text"] == text

    # A second dictation is appended after the first.
    source.clips.append(speech("Please bring the budget sheets."))
    view.talk_button.pressed.emit()
    view.talk_button.released.emit()
    qtbot.waitUntil(lambda: "budget" in view.text.toPlainText().lower(), timeout=WAIT_MS)
    assert view.text.toPlainText().startswith(text + " ")
    assert "budget" in QGuiApplication.clipboard().text().lower()
    assert "meeting" not in QGuiApplication.clipboard().text().lower()  # only the new words


def test_any_trigger_can_dictate_through_the_controller(make_window, source, qtbot):
    """A tray icon or a system-wide key calls start/stop (or toggle) on the dictation
    controller and listens to its signals; the take is the controller's on any page."""
    window = open_with_profile(make_window, source)
    controller = window.dictation_controller
    listening: list[bool] = []
    dictated: list[str] = []
    controller.listening_changed.connect(listening.append)
    controller.dictated.connect(lambda text, hypothesis: dictated.append(text))
    window.show_page(0)  # the Enroll page shows: its wizard must not get this take
    source.clips.append(speech("Please bring the budget sheets."))
    assert controller.start() and controller.is_listening() and window.recorder.is_recording()
    controller.toggle()  # a trigger without a key release stops the take
    assert listening == [True, False] and not window.recorder.is_recording()
    qtbot.waitUntil(lambda: bool(dictated), timeout=WAIT_MS)
    assert "budget" in dictated[0].lower()
    assert "budget" in window.dictation_view.text.toPlainText().lower()
    assert window.profile.history()[-1]["text"] == dictated[0]
    assert window.profile.takes() == [] and not window.wizard._checking

    # A cancelled take is dropped: listening ends, nothing is transcribed.
    source.clips.append(speech("Where did you put the spare keys?"))
    assert controller.start()
    controller.cancel()
    assert listening == [True, False, True, False] and not window.recorder.is_recording()

    # While an enrollment take records, a dictation trigger is refused and leaves it alone.
    source.clips.append(np.zeros(16000, np.float32))
    window.wizard.press()
    assert window.recorder.is_recording()
    assert not controller.start() and window.recorder.is_recording() and not controller.is_listening()
    window.wizard.release()
    wait_wizard_idle(qtbot, window)
    assert "Nothing was heard" in window.wizard.status.text()
    assert len(dictated) == 1


def test_recognition_setting_sets_the_beam_of_each_dictation(make_window, source, qtbot):
    from dictation.app.decoding import DEFAULT_BEAM
    from dictation.app.gui.settings_dialog import with_defaults
    from dictation.app.profiles import Profile

    window = open_with_profile(make_window, source, beam=1)
    view = window.dictation_view
    beams: list[int] = []
    real = window.dictation_controller._dictated
    window.dictation_controller._dictated = lambda audio, transcript, *kept: (
        beams.append(transcript.beam),
        real(audio, transcript, *kept),
    )
    source.clips.append(speech("Please bring the budget sheets."))
    push_to_talk(qtbot, window, view.talk_button)
    qtbot.waitUntil(lambda: len(beams) == 1, timeout=WAIT_MS)
    assert beams == [1]

    dialog = window.profile_actions.open_settings()
    assert dialog.decoding_combo.currentData() == 1
    dialog.decoding_combo.setCurrentIndex(dialog.decoding_combo.findData(DEFAULT_BEAM))
    dialog.accept()
    assert Profile.open("Sam").settings()["beam"] == DEFAULT_BEAM
    source.clips.append(speech("The meeting starts at nine thirty tomorrow."))
    push_to_talk(qtbot, window, view.talk_button)
    qtbot.waitUntil(lambda: len(beams) == 2, timeout=WAIT_MS)
    assert beams[1] == DEFAULT_BEAM > 1
    assert with_defaults({"beam": "many"})["beam"] == DEFAULT_BEAM  # a damaged value is not a crash
    assert with_defaults({})["beam"] == DEFAULT_BEAM


def test_space_types_in_the_text_area_instead_of_dictating(make_window, source, qtbot):
    window = open_with_profile(make_window, source)
    view = window.dictation_view
    window.activateWindow()
    view.text.setFocus()
    qtbot.waitUntil(view.text.hasFocus, timeout=2000)
    source.clips.append(np.zeros(1600, np.float32))
    qtbot.keyClicks(view.text, "hi ")  # QTest sends Space as a key press/release pair
    assert not window.recorder.is_recording()
    assert len(source.clips) == 1  # no take was started
    assert view.text.toPlainText() == "hi "


def test_auto_copy_off_leaves_the_clipboard_alone(make_window, source, qtbot):
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.clipboard().setText("untouched")
    window = open_with_profile(make_window, source, auto_copy=False)
    view = window.dictation_view
    assert not view.auto_copy.isChecked()
    source.clips.append(speech("Send an email to Doctor Patel."))
    push_to_talk(qtbot, window, view.talk_button)
    # Any transcript will do here: this test is about the clipboard, not recognition.
    qtbot.waitUntil(lambda: view.text.toPlainText().strip() != "", timeout=WAIT_MS)
    assert QGuiApplication.clipboard().text() == "untouched"
    view.copy_button.click()
    assert QGuiApplication.clipboard().text() == view.text.toPlainText()


def test_spoken_commands_setting(make_window, source, qtbot):
    window = open_with_profile(make_window, source, commands=True)
    view = window.dictation_view
    source.clips.append(speech("Hello Sam, new line, see you soon"))
    push_to_talk(qtbot, window, view.talk_button)
    qtbot.waitUntil(lambda: "soon" in view.text.toPlainText().lower(), timeout=WAIT_MS)
    assert "\n" in view.text.toPlainText()
    assert "new line" not in view.text.toPlainText().lower()


def test_unplugged_microphone_keeps_what_was_said(make_window, source, qtbot):
    from dictation.app.audio import DeviceLostError

    clip = speech("Where did you put the spare keys?")

    class Unplugged(ScriptedSource):
        def stop_take(self):
            raise DeviceLostError("Lost the microphone: device unplugged.", clip)

    window = open_with_profile(make_window, Unplugged())
    view = window.dictation_view
    window.recorder.source.clips.append(clip)
    push_to_talk(qtbot, window, view.talk_button)
    assert "Lost the microphone" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: "keys" in view.text.toPlainText().lower(), timeout=WAIT_MS)


def test_silent_dictation_adds_nothing(make_window, source, qtbot):
    window = open_with_profile(make_window, source)
    view = window.dictation_view
    source.clips.append(np.zeros(16000, np.float32))
    push_to_talk(qtbot, window, view.talk_button)
    qtbot.waitUntil(lambda: "Nothing was recognised" in view.status.text(), timeout=WAIT_MS)
    assert view.text.toPlainText() == "" and view.history.count() == 0


def test_correction_is_saved_with_the_audio(make_window, source, qtbot):
    from dictation.app.audio import load_audio

    window = open_with_profile(make_window, source)
    view = window.dictation_view
    clip = speech("Call Kevin O'Brien back tonight.")
    source.clips.append(clip)
    push_to_talk(qtbot, window, view.talk_button)
    qtbot.waitUntil(lambda: view.correct_button.isEnabled(), timeout=WAIT_MS)
    hypothesis = view.correction_edit.text()
    view.correction_edit.setText("Call Kevin O'Brien back tonight.")
    view.correct_button.click()
    corrections = window.profile.corrections()
    assert len(corrections) == 1
    assert corrections[0].text == "Call Kevin O'Brien back tonight."
    assert corrections[0].hypothesis == hypothesis
    assert np.allclose(load_audio(corrections[0].wav_path), clip, atol=1e-3)
    assert "Correction saved" in view.status.text()


# -- settings, profiles, about ------------------------------------------------------------


def test_settings_are_saved_and_profiles_managed(make_window, source, qtbot, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from dictation.app.profiles import Profile, list_profiles

    window = open_with_profile(make_window, source)
    dialog = window.profile_actions.open_settings()
    # The system-wide key is offered, off until the user turns it on (tests/test_gui_anywhere.py).
    assert dialog.hotkey.isEnabled() and not dialog.hotkey.isChecked()
    assert dialog.anywhere.key_status.text() == "Off."
    dialog.auto_copy.setChecked(False)
    dialog.commands.setChecked(True)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    dialog.accept()
    saved = Profile.open("Sam").settings()
    assert saved["auto_copy"] is False and saved["commands"] is True and saved["device"] == "cpu"
    assert not window.dictation_view.auto_copy.isChecked()

    # Export, then delete (confirmed), then import the archive back.
    archive = tmp_path / "sam.zip"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(archive), ""))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(archive), ""))
    dialog = window.profile_actions.open_settings()
    dialog.export_button.click()
    assert archive.is_file()

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert not window.profile_actions.delete_profile("Sam")
    assert list_profiles() == ["Sam"]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert window.profile_actions.delete_profile("Sam", dialog)
    assert list_profiles() == []
    assert window.profile is None and window.root.currentIndex() == 0

    window.profile_actions.ask_import()
    assert list_profiles() == ["Sam"] and window.profile.name == "Sam"
    assert window.profile.settings()["commands"] is True


def test_switch_profile_opens_the_other_one_and_remembers_it(make_window, source, qtbot):
    from dictation.app.profiles import Profile

    window = open_with_profile(make_window, source, name="Bob")
    Profile.create("Ann")
    dialog = window.profile_actions.open_settings()
    dialog.profile_combo.setCurrentText("Ann")
    dialog.switch_button.click()
    assert window.profile.name == "Ann"
    window.close()
    again = make_window(audio_source=ScriptedSource())
    assert again.profile.name == "Ann"  # the last used profile opens


def test_reset_to_base_removes_the_adapted_model_after_confirmation(make_window, source, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from dictation.app.base_model import base_model_dir

    window = open_with_profile(make_window, source)
    stage = window.profile.new_stage_dir() / "model"
    shutil.copytree(base_model_dir(), stage)
    window.profile.install_model(stage, {"after_wer": 0.1})
    window.transcription.set_model_dir(window.profile.model_dir())
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    window.profile_actions.reset_profile()
    assert window.profile.model_dir() is not None
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.profile_actions.reset_profile()
    assert window.profile.model_dir() is None and window.transcription.model_dir() is None
    assert "not adapted" in window.profile_label.text()


def test_previous_model_button_goes_back_one_adaptation(make_window, source, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from dictation.app.base_model import base_model_dir

    window = open_with_profile(make_window, source)
    assert not window.profile_actions.open_settings().previous_button.isEnabled()  # nothing to go back to
    for wer in (0.2, 0.1):
        stage = window.profile.new_stage_dir() / "model"
        shutil.copytree(base_model_dir(), stage)
        window.profile.install_model(stage, {"after_wer": wer})
    window.transcription.set_model_dir(window.profile.model_dir())
    dialog = window.profile_actions.open_settings()
    assert dialog.previous_button.isEnabled()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    dialog.previous_button.click()
    assert window.profile.metadata["after_wer"] == 0.1
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dialog.previous_button.click()
    assert window.profile.metadata["after_wer"] == 0.2
    assert window.transcription.model_dir() == window.profile.model_dir()
    assert not dialog.previous_button.isEnabled()


def test_adapted_model_from_an_older_speech_model_asks_to_adapt_again(make_window, source):
    from dictation.app.base_model import base_model_dir, bundled_model_version
    from dictation.app.gui.model_texts import about_html, outdated_model_notice

    window = open_with_profile(make_window, source)
    view = window.adapt_view
    window.show_page(1)
    assert view.notice.isHidden() and view.start_button.text() == "Adapt to my voice"
    stage = window.profile.new_stage_dir() / "model"
    shutil.copytree(base_model_dir(), stage)
    window.profile.install_model(stage, {"after_wer": 0.1, "base_model_version": "0.0.1"})
    window.close()

    again = make_window(audio_source=ScriptedSource())
    notice = outdated_model_notice(again.profile)
    assert "0.0.1" in notice and bundled_model_version() in notice
    assert again.statusBar().currentMessage() == notice  # said once, when the profile opens
    again.show_page(1)
    assert not again.adapt_view.notice.isHidden() and again.adapt_view.notice.text() == notice
    assert again.adapt_view.start_button.text() == "Adapt again"
    assert "made from 0.0.1" in about_html(again.profile)
    # The user's adapted model stays in use until they adapt again.
    assert again.transcription.model_dir() == again.profile.model_dir() is not None

    stage = again.profile.new_stage_dir() / "model"
    shutil.copytree(base_model_dir(), stage)
    again.profile.install_model(stage, {"after_wer": 0.1, "base_model_version": bundled_model_version()})
    again._refresh_summary()
    assert outdated_model_notice(again.profile) == "" and again.adapt_view.notice.isHidden()
    assert again.adapt_view.start_button.text() == "Adapt to my voice"


def test_about_names_version_model_and_data_folder(make_window, source):
    from dictation import __version__
    from dictation.app import storage
    from dictation.app.gui.model_texts import about_html

    window = open_with_profile(make_window, source)
    text = about_html(window.profile)
    assert __version__ in text and str(storage.data_root()) in text
    assert "base model" in text


# -- adaptation ---------------------------------------------------------------------------


def use_target(monkeypatch, name: str) -> None:
    from dictation.adapt import worker

    monkeypatch.setenv(worker.ADAPT_TARGET_ENV, f"{THIS_FILE}:{name}")


def adapt_ready_window(make_window, source, takes: int = 4):
    from dictation.app.enrollment import load_prompts

    window = open_with_profile(make_window, source, name="Ada")
    add_speech_takes(window.profile, load_prompts(), takes)
    window.show_page(1)
    assert window.adapt_view.start_button.isEnabled()
    return window


def test_adaptation_progress_result_chart_and_new_model_in_use(make_window, source, qtbot, monkeypatch):
    from dictation.adapt import worker

    use_target(monkeypatch, "copy_base_adapt")
    monkeypatch.setenv(worker.CHECK_TARGET_ENV, f"{THIS_FILE}:clear_gain_check")  # the stand-in helped
    window = adapt_ready_window(make_window, source)
    view = window.adapt_view
    assert window.transcription.model_dir() is None  # base model
    view.start_button.click()
    assert view.cancel_button.isEnabled() and not view.start_button.isEnabled()
    qtbot.waitUntil(lambda: "Step" in view.step_label.text() or "Done" in view.status.text(), timeout=ADAPT_WAIT_MS)
    qtbot.waitUntil(lambda: not window.adaptation.is_running(), timeout=ADAPT_WAIT_MS)
    assert "Done" in view.status.text(), view.status.text()
    assert "before" in view.result_label.text() and "after" in view.result_label.text()
    assert view.chart.isVisible()
    (_, before), (_, after) = view.chart.values()
    assert 0 <= before <= 100 and 0 <= after <= 100
    # The new model is used at once.
    assert window.profile.model_dir() is not None
    assert window.transcription.model_dir() == window.profile.model_dir()
    assert "adapted" in window.profile_label.text()
    dictation = window.dictation_view
    window.show_page(2)
    source.clips.append(speech("Where did you put the spare keys?"))
    push_to_talk(qtbot, window, dictation.talk_button)
    qtbot.waitUntil(lambda: "keys" in dictation.text.toPlainText().lower(), timeout=WAIT_MS)


def test_cancel_adaptation_keeps_the_model(make_window, source, qtbot, monkeypatch):
    use_target(monkeypatch, "slow_adapt")
    window = adapt_ready_window(make_window, source)
    view = window.adapt_view
    view.start_button.click()
    qtbot.waitUntil(lambda: "Step" in view.step_label.text(), timeout=ADAPT_WAIT_MS)
    # The GUI stays responsive while the worker runs: events are processed, widgets react.
    window.show_page(2)
    window.show_page(1)
    view.cancel_button.click()
    qtbot.waitUntil(lambda: "cancelled" in view.status.text(), timeout=ADAPT_WAIT_MS)
    assert window.profile.model_dir() is None and window.transcription.model_dir() is None
    assert view.start_button.isEnabled() and not view.cancel_button.isEnabled()


def test_worker_crash_is_reported_and_the_old_model_kept(make_window, source, qtbot, monkeypatch):
    from dictation.app.base_model import base_model_dir

    window = adapt_ready_window(make_window, source)
    # An adapted model is installed already (a copy of the base export).
    stage = window.profile.new_stage_dir() / "model"
    shutil.copytree(base_model_dir(), stage)
    window.profile.install_model(stage, {"after_wer": 0.1, "model_version": "test-1"})
    installed = window.profile.model_dir()
    window.transcription.set_model_dir(installed)
    use_target(monkeypatch, "crash_adapt")
    view = window.adapt_view
    view.start_button.click()
    qtbot.waitUntil(lambda: "failed" in view.status.text(), timeout=ADAPT_WAIT_MS)
    assert "previous model is still in use" in view.status.text()
    assert window.profile.model_dir() == installed
    assert window.transcription.model_dir() == installed
    assert view.start_button.isEnabled()


def test_no_gpu_is_explained_plainly(make_window, source, qtbot):
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has a GPU")
    window = adapt_ready_window(make_window, source)
    window.apply_settings({"device": "cuda"})
    view = window.adapt_view
    view.start_button.click()
    qtbot.waitUntil(lambda: "failed" in view.status.text(), timeout=ADAPT_WAIT_MS)
    assert "No usable graphics card (GPU) was found" in view.status.text()
    assert "previous model is still in use" in view.status.text()


def test_error_explanations():
    from dictation.app.gui.adapt_runner import explain_error

    assert "ran out of memory" in explain_error("CUDA out of memory. Tried to allocate 2 GiB")
    assert "ran out of memory" in explain_error("MemoryError")
    assert explain_error("something else broke") == "something else broke"


def test_adaptation_with_too_few_takes_explains_why(make_window, source, qtbot):
    window = adapt_ready_window(make_window, source, takes=1)
    view = window.adapt_view
    view.start_button.click()
    qtbot.waitUntil(lambda: "failed" in view.status.text(), timeout=ADAPT_WAIT_MS)
    assert "record at least" in view.status.text()


# -- adapt functions run inside the real worker process (see the module docstring) --------


class AdaptationCancelled(Exception):
    """Same name as the real adaptation's exception; the worker recognises it by name."""


def slow_adapt(takes, steps, device, progress, should_cancel):
    """Runs until cancelled, reporting progress."""
    for step in range(1, 10_000):
        if should_cancel():
            raise AdaptationCancelled()
        progress(step, 10_000, 1.0)
        time.sleep(0.05)
    raise AssertionError("never cancelled")


def crash_adapt(takes, steps, device, progress, should_cancel):
    progress(1, 5, 2.0)
    time.sleep(0.3)
    os._exit(3)  # a hard crash: no exception, no message


class _CopiedBase:
    """An 'adapted' model whose export is the base ONNX model (what the runtime loads)."""

    def export(self, out_dir: Path) -> dict:
        from dictation.app.base_model import base_model_dir

        shutil.copytree(base_model_dir(), out_dir)
        return {"copied": True}


def clear_gain_check(*args, **kwargs):
    """The check's figures for a stand-in adaptation that helped (so it is installed)."""
    from dictation.adapt.held_out_check import HeldOutCheck

    return HeldOutCheck({0.0: 0.5, 0.5: 0.45, 1.0: 0.4}, {0.0: 0.2, 1.0: 0.1}, 4, 2, 0.1)


def copy_base_adapt(takes, steps, device, progress, should_cancel):
    total = 3
    for step in range(1, total + 1):
        progress(step, total, 1.0 / step)
        time.sleep(0.2)
    return _CopiedBase()
