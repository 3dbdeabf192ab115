"""Before any enrollment (issue 28): the zero-step voice-space start. The app gathers a new
profile's first dictations (`VoiceStart`), the real `PlacementJob` places the voice with a
voice space trained here (`test_voice_app`'s fixture, plus a 2-entry bank), exports the
start and installs it; it is never installed over an adapted model; the window's text.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QObject, Signal
from test_voice_app import ALEX, voice_model  # noqa: F401  (the trained voice space, reused)
from test_voice_app import clips as clips

WAIT_S = 300


@pytest.fixture(scope="module")
def bank_bundle(voice_model, dictation_cli):  # noqa: F811
    """The trained voice space with a bank of 2 entries (the head comes from the run dir),
    with their full deltas: a 1-step bank of 12 sentences need not pass the entry check,
    and these tests are about placing a voice."""
    bundle_dir, _, _ = voice_model
    root = bundle_dir.parent
    cmd = dictation_cli + [
        "train-voice", "--corpus", str(root / "corpus"), "--run-dir", str(root / "run"),
        "--out", str(root / "bundle-bank"), "--head-steps", "200", "--clusters", "2",
        "--per-cluster", "4", "--bank-steps", "1", "--no-entry-check", "--threads", "1", "--json",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["bank_entries"] == 2
    return root / "bundle-bank"


class Dictations(QObject):
    """Stands in for the dictation controller: what `VoiceStart` reads of it."""

    dictated = Signal(str, str)

    def __init__(self) -> None:
        super().__init__()
        self.last_audio: np.ndarray | None = None

    def say(self, audio: np.ndarray) -> None:
        self.last_audio = audio
        self.dictated.emit("text", "text")


class Transcription:
    """Stands in for the transcription service: runs jobs inline, records the model set."""

    def __init__(self) -> None:
        self.model_dirs: list = []

    def submit(self, job, done, failed) -> None:
        done(job())

    def forget(self, model_dir) -> None:
        pass

    def set_model_dir(self, model_dir) -> None:
        self.model_dirs.append(model_dir)

    def preload(self) -> None:
        pass


class Adaptation:
    def __init__(self, voice_dir) -> None:
        self.transcription = Transcription()
        self.services = type("Services", (), {"base_model_dir": staticmethod(lambda: voice_dir)})()

    def is_running(self) -> bool:
        return False


@pytest.fixture(scope="module")
def placed(bank_bundle, voice_model, clips, tmp_path_factory, qapp):  # noqa: F811
    """A new profile dictates twice (about 5 s of speech); the real job places its voice."""
    from dictation.adapt.placement import BUNDLE_ENV
    from dictation.app.gui.profile_session import ProfileSession
    from dictation.app.gui.voice_start import PLACED_SETTING, VoiceStart
    from dictation.app.profiles import Profile

    home = tmp_path_factory.mktemp("placement-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DICTATION_HOME", str(home))
        patch.setenv(BUNDLE_ENV, str(bank_bundle))
        Profile.create("newcomer")
        session = ProfileSession()
        profile = session.open("newcomer")
        dictations, adaptation = Dictations(), Adaptation(voice_model[1])
        lowered: list = []  # the real job's pid; idle priority itself could stall a test on a busy machine
        starter = VoiceStart(dictations, session, adaptation, lower_priority=lowered.append)
        results: list = []
        starter.finished.connect(results.append)
        starter.failed.connect(results.append)
        said = [clips(ALEX, 0), clips(ALEX, 1)]
        dictations.say(said[0])
        assert not starter.is_running()  # one dictation is not enough speech
        dictations.say(said[1])
        assert starter.is_running() and session.settings[PLACED_SETTING]
        assert lowered == [starter.runner.job.pid]
        t0 = time.monotonic()
        while not results and time.monotonic() - t0 < WAIT_S:
            QCoreApplication.processEvents()
            time.sleep(0.05)
        seconds = time.monotonic() - t0
        dictations.say(said[0])  # a later dictation queues nothing more
        assert not starter.is_running()
    assert results and isinstance(results[0], dict), results
    return profile, results[0], said, adaptation, home, seconds


def test_the_start_is_placed_from_the_first_dictations_exported_zero_step_and_installed(placed, bank_bundle):
    from dictation.adapt.learner import Learner
    from dictation.adapt.model.bundle import load_bundle
    from dictation.adapt.placement import place
    from dictation.adapt.voice_space.space import load_voice_space
    from dictation.app.gui.voice_start import speech_of

    profile, message, said, adaptation, _, seconds = placed
    assert message["installed"] and message["zero_step"], message
    print(f"placement job: {seconds:.1f} s from queueing to installed")
    model_dir = profile.model_dir()
    assert model_dir is not None and adaptation.transcription.model_dirs == [model_dir]  # dictated with at once
    meta = profile.metadata
    assert meta["zero_step"] and meta["kind"] == "voice_space_start" and meta["steps"] == 0
    assert meta["dictations"] == 2 and meta["speech_seconds"] >= 4.0
    assert meta["check"].startswith("none")
    exported = json.loads((model_dir / "model.json").read_text())
    assert exported["adapt_steps"] == 0 and exported["adapt_losses"] == []
    assert exported["adapt_voice_space"]["zero_step"] is True
    # The same speech placed here gives the same start, and it is the bank's for this voice.
    bundle = load_bundle(bank_bundle)
    init = Learner.from_bundle(bundle).init
    space = load_voice_space(bank_bundle)
    speech = [speech_of(a, 16000) for a in said]
    expected = space.bank.start(init, space.embed(bundle.model, speech))
    adapted = place(speech, bundle)
    assert {k: v for k, v in adapted.voice_space.items()} == exported["adapt_voice_space"]
    values = Learner(adapted.model, bundle.inner_lrs, bundle.adapt_names).values()
    moved = [n for n in init if not np.allclose(values[n].numpy(), init[n].numpy())]
    assert moved, "the start did not change the model"
    for n in init:
        np.testing.assert_allclose(values[n].numpy(), expected[n].numpy(), atol=1e-6)


def test_never_installed_over_an_adapted_model_nor_during_an_adaptation(placed, monkeypatch):
    from dictation.adapt.placement import install_placement
    from dictation.adapt.worker import _adaptation_lock
    from dictation.app.gui.model_texts import model_in_use
    from dictation.app.profiles import Profile

    profile, _, _, _, home, _ = placed
    monkeypatch.setenv("DICTATION_HOME", str(home))
    installed = profile.model_dir()
    other = Profile.create("enrolled")

    def staged(p):
        stage = p.new_stage_dir() / "model"
        shutil.copytree(installed, stage)
        return stage

    start = {"zero_step": True, "kind": "voice_space_start", "created": "2026-01-02T10:30:00+00:00"}
    with _adaptation_lock("enrolled"):  # an adaptation of the profile is running
        assert "adaptation" in install_placement(other, staged(other), start)
    assert other.model_dir() is None
    assert install_placement(other, staged(other), start) is None
    assert model_in_use(other) == "voice-space start (no enrollment yet)"
    # An enrollment adaptation replaces it as usual (the start is kept as model.prev)...
    enrolled = {"train_takes": 10, "learned": 3, "voice_space": {"nearest": 1}, "created": "2026-01-03T09:00:00"}
    other.install_model(staged(other), enrolled)
    assert (
        model_in_use(other)
        == "adapted to your voice (10 takes + 3 dictations, from the voice space) on 2026-01-03 09:00"
    )
    assert other.previous_metadata()["zero_step"]
    # ...and a start never replaces it.
    assert "already has an adapted model" in install_placement(other, staged(other), start)
    assert other.metadata["train_takes"] == 10 and other.previous_metadata()["zero_step"]


def test_the_window_says_which_model_is_in_use(placed, tmp_path, monkeypatch):
    from dictation.app.gui.model_texts import model_in_use
    from dictation.app.profiles import Profile

    monkeypatch.setenv("DICTATION_HOME", str(tmp_path))
    profile, _, _, _, _, _ = placed
    assert model_in_use(profile, "adapted") == "voice-space start (no enrollment yet)"
    assert model_in_use(profile, "base") == "base model (your adapted model could not be loaded)"
    fresh = Profile.create("fresh")
    assert model_in_use(fresh) == "base model (not adapted yet)"
    stage = fresh.new_stage_dir() / "model"
    shutil.copytree(profile.model_dir(), stage)
    fresh.install_model(stage, {"train_takes": 1, "created": "2026-01-03T09:00:00"})  # no voice space used
    assert model_in_use(fresh) == "adapted to your voice (1 take) on 2026-01-03 09:00"


def test_nothing_is_gathered_with_the_setting_off_or_once_the_profile_has_takes(dictation_home, tmp_path, qapp):
    from dictation.app.gui.profile_session import ProfileSession
    from dictation.app.gui.voice_start import VOICE_START_SETTING, VoiceStart
    from dictation.app.profiles import Profile

    (tmp_path / "voice.onnx").write_bytes(b"")  # a base export with a voice graph: only its presence is read
    jobs: list = []

    def make_job(name, clips):
        jobs.append((name, len(clips)))
        raise RuntimeError("no job in this test")

    session, dictations = ProfileSession(), Dictations()
    starter = VoiceStart(dictations, session, Adaptation(tmp_path), make_job=make_job)
    speech = (0.3 * np.sin(np.arange(3 * 16000) * 2 * np.pi * 220 / 16000)).astype(np.float32)  # 3 s
    for name in ("quiet", "enrolled", "new"):
        Profile.create(name)
    session.open("quiet")
    session.update_settings({VOICE_START_SETTING: False})
    assert "off" in starter.why_not()
    session.open("enrolled").add_take("p1", "hello there", speech, {})
    assert "takes" in starter.why_not()
    for name in ("quiet", "enrolled"):
        session.open(name)
        for _ in range(3):
            dictations.say(speech)
    assert jobs == []
    session.open("new")  # the same dictations queue it for a new profile (after the second)
    dictations.say(speech)
    assert jobs == []
    dictations.say(speech)
    assert jobs == [("new", 2)] and "queued already" in starter.why_not()
