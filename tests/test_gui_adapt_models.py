"""The Adapt page and the model in use (issue 25, #7): a model the check keeps aside is
said so with the numbers and the model in use stays; "Use previous model" and "Use base
model" switch the model dictation uses.

Real main window under pytest-qt (offscreen), real profiles, the real worker process;
the adaptation step and the check's figures come from the worker's documented test hooks
(DICTATION_TEST_ADAPT_TARGET, DICTATION_TEST_CHECK_TARGET), pointing at the functions at
the end of this file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

THIS_FILE = Path(__file__).resolve()
ADAPT_WAIT_MS = 180_000  # spawn + torch import in the worker, then the job


class SilentSource:
    """An injected capture that is never asked for a take here."""

    sample_rate = 16000
    name = "Test microphone"

    def start_take(self) -> None:
        raise AssertionError("no dictation in these tests")

    def stop_take(self):  # pragma: no cover - never called
        return None

    def level(self) -> float:
        return 0.0

    def close(self) -> None:
        pass


@pytest.fixture()
def window(qtbot, tmp_path, monkeypatch, shared_model_cache):
    from dictation.app.gui.main_window import MainWindow
    from dictation.app.profiles import Profile

    monkeypatch.setenv("DICTATION_CACHE", str(shared_model_cache))
    monkeypatch.setenv("DICTATION_HOME", str(tmp_path / "home"))
    Profile.create("Sam")
    window = MainWindow(audio_source=SilentSource())
    qtbot.addWidget(window)
    window.show()
    window.show_page(1)
    yield window
    window.close()
    window.transcription.wait(30_000)


def install_copy_of_base(profile, after_wer: float) -> None:
    from dictation.app.base_model import base_model_dir

    stage = profile.new_stage_dir() / "model"
    shutil.copytree(base_model_dir(), stage)
    profile.install_model(stage, {"after_wer": after_wer})


def answer(monkeypatch, yes: bool) -> None:
    from PySide6.QtWidgets import QMessageBox

    button = QMessageBox.StandardButton.Yes if yes else QMessageBox.StandardButton.No
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: button)


def test_a_model_the_check_kept_aside_is_not_used_and_the_page_says_why(window, qtbot, monkeypatch):
    from dictation.adapt import worker
    from dictation.app.enrollment import load_prompts
    from dictation.app.profiles import Profile

    profile = window.profile
    for prompt in load_prompts()[:4]:
        profile.add_take(prompt.id, prompt.text, _tone(), {"ok": True})
    monkeypatch.setenv(worker.ADAPT_TARGET_ENV, f"{THIS_FILE}:copy_base_adapt")
    monkeypatch.setenv(worker.CHECK_TARGET_ENV, f"{THIS_FILE}:one_word_worse_check")
    view = window.adapt_view
    window._refresh_summary()
    view.start_button.click()
    qtbot.waitUntil(lambda: not window.adaptation.is_running(), timeout=ADAPT_WAIT_MS)
    assert view.status.text() == (
        "Kept your current model (the base model): 4.6% \u2192 5.6% word errors on your own recordings, "
        "each tested by a model adapted without it; the new model is kept aside."
    )
    assert "Done" not in view.status.text() and view.chart.isVisible()
    reopened = Profile.open("Sam")
    assert reopened.model_dir() is None and window.transcription.model_dir() is None
    assert (reopened.path / "model.candidate" / "encoder.onnx").is_file()
    assert not view.base_button.isEnabled()  # the base model is what is in use


def test_use_previous_then_base_model_from_the_adapt_page(window, qtbot, monkeypatch):
    view = window.adapt_view
    assert not view.previous_button.isEnabled() and not view.base_button.isEnabled()
    install_copy_of_base(window.profile, 0.2)
    install_copy_of_base(window.profile, 0.1)
    window._model_changed()  # what the window does when the model changes on disk
    assert view.previous_button.isEnabled() and view.base_button.isEnabled()
    assert "Model in use: adapted to your voice" in view.intro.text()

    answer(monkeypatch, yes=False)
    view.previous_button.click()
    assert window.profile.metadata["after_wer"] == 0.1
    answer(monkeypatch, yes=True)
    view.previous_button.click()
    assert window.profile.metadata["after_wer"] == 0.2
    assert window.transcription.model_dir() == window.profile.model_dir() is not None
    qtbot.waitUntil(lambda: not view.previous_button.isEnabled(), timeout=60_000)  # none before that one
    assert view.base_button.isEnabled()

    view.base_button.click()
    assert window.profile.model_dir() is None and window.transcription.model_dir() is None
    qtbot.waitUntil(lambda: "Model in use: base model" in view.intro.text(), timeout=60_000)
    assert not view.base_button.isEnabled() and not view.previous_button.isEnabled()


def test_no_model_switch_while_adapting(window, qtbot, monkeypatch):
    from dictation.adapt import worker
    from dictation.app.enrollment import load_prompts

    install_copy_of_base(window.profile, 0.2)
    install_copy_of_base(window.profile, 0.1)
    for prompt in load_prompts()[:3]:
        window.profile.add_take(prompt.id, prompt.text, _tone(), {"ok": True})
    window._model_changed()
    monkeypatch.setenv(worker.ADAPT_TARGET_ENV, f"{THIS_FILE}:slow_adapt")
    view = window.adapt_view
    view.start_button.click()
    assert not view.previous_button.isEnabled() and not view.base_button.isEnabled()
    assert window.adaptation.use_base_model() == "not while adapting"
    assert window.profile.model_dir() is not None
    view.cancel_button.click()
    qtbot.waitUntil(lambda: not window.adaptation.is_running(), timeout=ADAPT_WAIT_MS)
    assert view.previous_button.isEnabled() and view.base_button.isEnabled()


def _tone():
    import numpy as np

    t = np.arange(8000) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


# -- run inside the real worker process (see the module docstring) ------------------------


class _CopiedBase:
    """An 'adapted' model whose export is the base ONNX model."""

    def export(self, out_dir: Path) -> dict:
        from dictation.app.base_model import base_model_dir

        shutil.copytree(base_model_dir(), out_dir)
        return {"copied": True}


def copy_base_adapt(takes, steps, device, progress, should_cancel):
    progress(1, 1, 1.0)
    return _CopiedBase()


def one_word_worse_check(*args, **kwargs):
    from dictation.adapt.held_out_check import HeldOutCheck

    return HeldOutCheck({0.0: 0.30, 0.5: 0.29, 1.0: 0.28}, {0.0: 0.046, 1.0: 0.056}, 4, 2, 0.1)


def slow_adapt(takes, steps, device, progress, should_cancel):
    import time

    for step in range(1, 10_000):
        if should_cancel():
            raise RuntimeError("cancelled")
        progress(step, 10_000, 1.0)
        time.sleep(0.05)
    raise AssertionError("never cancelled")
