"""Learning from use (issue 27): the material store, the model's confidence, the hooks on
real dictations through the real controller (pytest-qt, the real onnxruntime model), the
idle scheduler with its clock driven, the "What I learned" page, and `evaluate --takes`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import soundfile as sf
from conftest import tts_wav

WAIT_MS = 60_000


def tone(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


_speech_cache: dict[str, np.ndarray] = {}


def speech(text: str, tmp_dir: Path) -> np.ndarray:
    """`text` spoken by flite (16 kHz)."""
    if text not in _speech_cache:
        if shutil.which("flite") is None:
            pytest.skip("flite is not installed")
        out = tmp_dir / f"speech-{len(_speech_cache)}.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(out)], check=True)
        audio, rate = sf.read(out, dtype="float32")
        assert rate == 16000
        _speech_cache[text] = audio
    return _speech_cache[text]


# -- the store ----------------------------------------------------------------------------


@pytest.fixture()
def profile(dictation_home):
    from dictation.app.profiles import Profile

    return Profile.create("Lee")


def test_store_keeps_accepted_and_corrected_and_prunes_only_the_oldest_accepted(profile):
    from dictation.app.audio import load_audio

    material = profile.learned_material
    material.cap = 4
    first = profile.add_learned(tone(), "first words", "accepted", 0.93)
    correction = profile.add_learned(tone(), "call Kevin", "corrected", None, hypothesis="call Calvin")
    second = profile.add_learned(tone(), "second words", "accepted", 0.9)
    third = profile.add_learned(tone(), "third words", "accepted", 0.91)
    assert [i.id for i in profile.learned()] == [first.id, correction.id, second.id, third.id]
    # Kept like a take: WAV + JSON in learned/, the audio as given; corrections where they always were.
    assert first.wav_path.parent == profile.path / "learned" and (first.wav_path.stat().st_mode & 0o777) == 0o600
    assert np.allclose(load_audio(first.wav_path), tone(), atol=1e-3)
    assert [c.id for c in profile.corrections()] == [correction.id]
    assert profile.corrections()[0].hypothesis == "call Calvin"
    assert first.confidence == pytest.approx(0.93) and correction.confidence is None
    assert correction.word_errors() == (1, 2) and first.word_errors() == (0, 2)

    # Past the cap the oldest accepted dictation goes; the (older) correction stays.
    fourth = profile.add_learned(tone(), "fourth words", "accepted", 0.95)
    assert [i.id for i in profile.learned()] == [correction.id, second.id, third.id, fourth.id]
    # Corrections alone over the cap are never pruned: they wait for the user.
    material.cap = 0
    assert material.prune() == [second.id, third.id, fourth.id]
    assert [i.id for i in profile.learned()] == [correction.id] and material.over_cap() == 1

    # Deleting (the user asks) works for both kinds; an unknown id is refused.
    from dictation.app.profiles import ProfileError

    profile.remove_learned(correction.id)
    assert profile.learned() == [] and profile.corrections() == []
    with pytest.raises(ProfileError):
        profile.remove_learned("nothing-here")
    with pytest.raises(ProfileError):
        profile.add_learned(tone(), "text", "overheard")
    with pytest.raises(ProfileError):
        profile.add_learned(tone(), "text", "corrected")  # no hypothesis


def test_store_writes_are_atomic(profile, monkeypatch):
    """A write that fails half-way leaves no item and the others intact (the WAV alone,
    without its JSON, is not an item), and the run record as it was."""
    from dictation.app import storage

    kept = profile.add_learned(tone(), "kept words", "accepted", 0.9)
    profile.learned_material.record_run({"started": "2024-01-01T00:00:00+00:00", "status": "running"})
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if str(dst).endswith(".json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(storage.os, "replace", failing_replace)
    with pytest.raises(OSError):
        profile.add_learned(tone(), "lost words", "accepted", 0.9)
    with pytest.raises(OSError):
        profile.learned_material.record_run({"started": "2024-01-01T00:00:00+00:00", "status": "installed"})
    monkeypatch.setattr(storage.os, "replace", real_replace)
    assert [i.id for i in profile.learned()] == [kept.id]
    assert profile.learned_material.runs() == [{"started": "2024-01-01T00:00:00+00:00", "status": "running"}]
    assert not [p for p in (profile.path / "learned").iterdir() if p.name.endswith(".tmp")]


def test_run_records_are_updated_by_start_time_and_count_new_material(profile):
    material = profile.learned_material
    assert material.last_run_started() == "" and material.runs() == []
    profile.add_learned(tone(), "before the run", "accepted", 0.9)
    assert material.new_since(material.last_run_started()) == 1
    material.record_run({"started": "2999-01-01T00:00:00+00:00", "status": "running"})
    material.record_run({"started": "2999-01-01T00:00:00+00:00", "status": "installed", "after_wer": 0.1})
    assert material.runs() == [{"started": "2999-01-01T00:00:00+00:00", "status": "installed", "after_wer": 0.1}]
    assert material.new_since(material.last_run_started()) == 0
    (profile.path / "learning.json").write_text("{half")
    assert material.runs() == []  # only the chart's record: a damaged one is not a failure


def test_the_adaptation_worker_adapts_on_the_accepted_dictations_too(profile, monkeypatch):
    """The real worker (`worker._run`, in this process) gets the takes, the corrections and
    the accepted dictations; the adaptation step is the documented test hook and the
    check's figures are given (a clear gain), so the model is installed and says so."""
    import torch

    import dictation.adapt.held_out_check as held_out
    from dictation.adapt import worker
    from dictation.adapt.held_out_check import HeldOutCheck

    for i in range(3):
        profile.add_take(f"p{i}", f"enrolled phrase {i}", tone(), {})
    profile.add_learned(tone(), "a corrected dictation", "corrected", hypothesis="a collected dictation")
    profile.add_learned(tone(), "an accepted dictation", "accepted", 0.9)
    monkeypatch.setenv(worker.ADAPT_TARGET_ENV, f"{__name__}:recording_adapt")  # this module, as imported
    figures = HeldOutCheck({0.0: 0.5, 0.5: 0.45, 1.0: 0.4}, {0.0: 0.2, 1.0: 0.15}, n_takes=5, folds=2, seconds=1.0)
    monkeypatch.setattr(held_out, "held_out_check", lambda *args, **kwargs: figures)
    ADAPTED_ON.clear()
    events: list[dict] = []
    worker._run(profile.name, 2, "cpu", events.append, lambda: False, torch.get_num_threads(), lambda: True)
    assert events[-1]["type"] == "done" and events[-1]["installed"] is True
    assert sorted(ADAPTED_ON) == sorted(
        [f"enrolled phrase {i}" for i in range(3)] + ["a corrected dictation", "an accepted dictation"]
    )
    from dictation.app.profiles import Profile

    metadata = Profile.open(profile.name).metadata
    assert (metadata["train_takes"], metadata["corrections"], metadata["learned"]) == (3, 1, 1)


ADAPTED_ON: list[str] = []


class _Exported:
    speed_copies = ()
    precision = "float32"

    def export(self, out_dir: Path) -> dict:
        out_dir.mkdir(parents=True)
        (out_dir / "encoder.onnx").write_text("new")
        (out_dir / "model.json").write_text(json.dumps({"adapted": True}))
        return {"model_version": "test"}


def recording_adapt(takes, steps, device, progress, should_cancel):
    """The worker's adaptation step (its test hook): notes the texts it was given."""
    ADAPTED_ON.extend(text for _, text in takes)
    progress(steps, steps, 1.0)
    return _Exported()


# -- confidence ---------------------------------------------------------------------------


def test_decoding_scores_the_chosen_tokens():
    """Greedy and beam 1 choose the same tokens here and give the same score: the chosen
    tokens' log-probabilities (end of text included), as a log-softmax computes them."""
    from dictation.app.decoding import EOT, DecodeScore, DecodingRules, beam_decode, greedy_decode

    vocab = EOT + 2
    rules = DecodingRules(suppress=np.zeros(vocab, bool), suppress_begin=np.zeros(vocab, bool))
    rng = np.random.default_rng(0)
    rows = [rng.normal(size=vocab).astype(np.float32) for _ in range(3)]
    for i, token in enumerate((11, 22, EOT)):
        rows[i][token] = 12.0

    def logits(n_done: int) -> np.ndarray:
        return rows[min(n_done, 2)]

    steps = [0]

    def step(tokens: list[int]) -> np.ndarray:
        out = logits(steps[0])
        steps[0] += 1
        return out

    greedy_score = DecodeScore()
    assert greedy_decode(step, rules, 1.0, scored=greedy_score) == [11, 22]
    expected = sum(float(r[t] - np.log(np.exp(r.astype(np.float64)).sum())) for r, t in zip(rows, (11, 22, EOT)))
    assert greedy_score.tokens == 3 and greedy_score.logprob == pytest.approx(expected, rel=1e-5)
    assert greedy_score.confidence == pytest.approx(np.exp(expected / 3), rel=1e-5)

    calls = [0]

    def beam_step(parents: list[int], tokens: list[list[int]]) -> np.ndarray:
        out = np.stack([logits(calls[0])] * len(parents))
        calls[0] += 1
        return out

    beam_score = DecodeScore()
    assert beam_decode(beam_step, rules, 1.0, beam=1, scored=beam_score) == [11, 22]
    assert beam_score.confidence == pytest.approx(greedy_score.confidence, rel=1e-5)
    assert DecodeScore().confidence is None


def test_transcripts_carry_the_models_confidence(base_model, tmp_path):
    from dictation.app.runtime import Transcriber

    transcriber = Transcriber(base_model, threads=1)
    clear = transcriber.transcribe(speech("The meeting starts at nine thirty tomorrow.", tmp_path))
    assert "meeting" in clear.text.lower() and 0.5 < clear.confidence <= 1.0
    noise = np.random.default_rng(1).normal(scale=0.05, size=16000 * 2).astype(np.float32)
    mumble = transcriber.transcribe(noise)
    assert mumble.confidence is None or mumble.confidence < clear.confidence
    assert transcriber.transcribe(np.zeros(16000, np.float32)).confidence is None  # silence: nothing decoded


# -- through the real controller ----------------------------------------------------------


class ScriptedSource:
    """An injected capture: each take returns the next prepared clip."""

    sample_rate = 16000
    name = "Scripted test microphone"

    def __init__(self) -> None:
        self.clips: list[np.ndarray] = []
        self.current: np.ndarray | None = None

    def start_take(self) -> None:
        self.current = self.clips.pop(0)

    def stop_take(self) -> np.ndarray:
        clip, self.current = self.current, None
        return clip

    def level(self) -> float:
        return 0.5 if self.current is not None else 0.05

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def home(tmp_path, monkeypatch, shared_model_cache):
    monkeypatch.setenv("DICTATION_CACHE", str(shared_model_cache))
    monkeypatch.setenv("DICTATION_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def make_window(qtbot, home):
    from dictation.app.gui.main_window import MainWindow

    windows = []

    def make(services=None, **settings):
        from dictation.app.profiles import Profile

        Profile.create("Sam").save_settings({"auto_copy": True, **settings})
        source = ScriptedSource()
        window = MainWindow(audio_source=source, services=services)
        qtbot.addWidget(window)
        window.show()
        window.show_page(2)
        windows.append(window)
        clock = Clock()
        window.learning.hooks.clock = clock
        window.learning.scheduler.clock = clock
        window.learning.scheduler.last_activity = clock.now
        window.learning.timer.stop()  # the tests drive it
        return window, source, clock

    yield make
    for window in windows:
        window.close()
        window.transcription.wait(30_000)


def dictate(qtbot, window, source, clip: np.ndarray) -> str:
    controller, seen = window.dictation_controller, []
    controller.dictated.connect(lambda text, hypothesis: seen.append(text))
    source.clips.append(clip)
    assert controller.start()
    controller.stop()
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT_MS)
    return seen[0]


def test_accepted_and_corrected_dictations_become_material(make_window, qtbot, tmp_path, monkeypatch):
    from dictation.app.gui import learning

    monkeypatch.setattr(learning, "CONFIDENCE_THRESHOLD", 0.0)
    window, source, clock = make_window()
    controller, view = window.dictation_controller, window.dictation_view
    first = speech("The meeting starts at nine thirty tomorrow.", tmp_path)
    text = dictate(qtbot, window, source, first)
    assert window.profile.learned() == []  # not yet: the user may still correct it
    confidence = controller.last_confidence
    assert confidence is not None and 0 < confidence <= 1

    # Copied automatically and left alone until the next dictation: accepted.
    second = speech("Please bring the budget sheets.", tmp_path)
    dictate(qtbot, window, source, second)
    (item,) = window.profile.learned()
    assert (item.source, item.text, item.hypothesis) == ("accepted", text, text)
    assert item.confidence == pytest.approx(confidence, abs=1e-4)
    from dictation.app.audio import load_audio

    assert np.allclose(load_audio(item.wav_path), first, atol=1e-3)

    # The second one is corrected: it is material too, with the corrections, once.
    view.correction_edit.setText("Please bring the budget papers.")
    view.correct_button.click()
    clock.now += 3600
    window.learning.hooks.tick()
    kinds = [(i.source, i.text) for i in window.profile.learned()]
    assert kinds == [("accepted", text), ("corrected", "Please bring the budget papers.")]

    # The page lists both and deletes what the user selects.
    page = window.learned_page
    window.show_page(4)
    assert page.isVisible() and page.items_view.topLevelItemCount() == 2
    assert page.items_view.topLevelItem(0).text(1) == "corrected"  # newest first
    page.items_view.topLevelItem(1).setSelected(True)
    assert page.play_button.isEnabled()
    page.delete_button.click()
    assert [i.source for i in window.profile.learned()] == ["corrected"]
    assert page.items_view.topLevelItemCount() == 1 and "Deleted 1 item" in page.status.text()
    assert page.weekly_chart.points() and page.weekly_chart.points()[-1][1] < 100


def test_only_delivered_confident_dictations_are_kept(make_window, qtbot, tmp_path, monkeypatch):
    from dictation.app.delivery import DeliveryResult
    from dictation.app.gui import learning

    window, source, clock = make_window(auto_copy=False)
    hooks = window.learning.hooks
    clip = speech("Where did you put the spare keys?", tmp_path)

    # Shown but never copied or typed anywhere: not accepted, however long it stays.
    monkeypatch.setattr(learning, "CONFIDENCE_THRESHOLD", 0.0)
    text = dictate(qtbot, window, source, clip)
    clock.now += learning.ACCEPT_AFTER_S + 1
    hooks.tick()
    assert window.profile.learned() == []

    # The Copy button delivers it; a minute later it is accepted.
    text = dictate(qtbot, window, source, clip)
    window.dictation_view.copy_button.click()
    hooks.tick()
    assert window.profile.learned() == []  # not before the minute is up
    clock.now += learning.ACCEPT_AFTER_S + 1
    hooks.tick()
    assert [i.text for i in window.profile.learned()] == [text]

    # Typed into an application: delivered too; but the model was not sure enough.
    monkeypatch.setattr(learning, "CONFIDENCE_THRESHOLD", 1.01)
    text = dictate(qtbot, window, source, clip)
    window.anywhere.delivered.emit(DeliveryResult(" " + text, "typed"))
    assert hooks.candidate is not None and hooks.candidate.delivered == "typed"
    clock.now += learning.ACCEPT_AFTER_S + 1
    hooks.tick()
    assert len(window.profile.learned()) == 1


def test_consent_off_keeps_nothing(make_window, qtbot, tmp_path, monkeypatch):
    from dictation.app.gui import learning

    monkeypatch.setattr(learning, "CONFIDENCE_THRESHOLD", 0.0)
    window, source, clock = make_window()
    page = window.learned_page
    assert page.consent.isChecked() and "stays on this computer" in page.explanation.text()
    page.consent.setChecked(False)  # the user says no, on the page
    assert window.profile.settings()[learning.LEARN_SETTING] is False
    clip = speech("Where did you put the spare keys?", tmp_path)
    for _ in range(2):
        dictate(qtbot, window, source, clip)
    clock.now += 3600
    window.learning.hooks.tick()
    assert window.profile.learned() == [] and not (window.profile.path / "learned").exists()
    assert window.learning.scheduler.why_not() == "learning from use is off"


# -- the idle scheduler -------------------------------------------------------------------


class SleepingJob:
    """An adaptation job whose process is a real `sleep` (so its priority can be read),
    finished by the test with the worker's done event."""

    made: list[SleepingJob] = []

    def __init__(self, profile_name: str, steps, device: str) -> None:
        self.process: subprocess.Popen | None = None
        self.events: list[dict] = []
        SleepingJob.made.append(self)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        self.process = subprocess.Popen(["sleep", "60"])

    def cancel(self) -> None:
        self.finish({"type": "error", "message": "cancelled"})

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def poll(self) -> list[dict]:
        events, self.events = self.events, []
        return events

    def finish(self, event: dict) -> None:
        self.events.append(event)
        if self.process is not None:
            self.process.kill()
            self.process.wait()


def test_background_adaptation_starts_only_when_idle_with_enough_new_material(make_window, qtbot):
    from dictation.app.gui.services import Services

    SleepingJob.made.clear()
    window, source, clock = make_window(services=Services(make_job=SleepingJob))
    scheduler, profile = window.learning.scheduler, window.profile
    scheduler.min_new_items = 2
    scheduler.busy = lambda: False
    for i in range(3):
        profile.add_take(f"p{i}", "some words", tone(), {})
    profile.add_learned(tone(), "one accepted dictation", "accepted", 0.95)

    assert scheduler.why_not() == "waiting for 300 s without dictation" and not scheduler.check()
    clock.now += 301
    assert scheduler.why_not() == "1 of 2 new items gathered" and not scheduler.check()
    profile.add_learned(tone(), "two words", "corrected", hypothesis="too words")

    # Never during a take; the idle time counts again from its end.
    source.clips.append(tone())
    assert window.dictation_controller.start()
    assert scheduler.why_not() == "a dictation is being recorded" and not scheduler.check()
    window.dictation_controller.cancel()
    assert not scheduler.check()
    clock.now += 301
    scheduler.busy = lambda: True
    assert scheduler.why_not() == "the computer is busy" and not scheduler.check()
    scheduler.busy = lambda: False
    assert SleepingJob.made == []

    assert scheduler.check() and window.adaptation.is_running()
    (job,) = SleepingJob.made
    assert os.getpriority(os.PRIO_PROCESS, job.pid) == 19
    assert os.sched_getscheduler(job.pid) == os.SCHED_IDLE
    (run,) = profile.learned_material.runs()
    assert (run["kind"], run["status"], run["new_items"]) == ("background", "running", 2)
    assert scheduler.why_not() == "an adaptation is running" and not scheduler.check()

    job.finish({"type": "done", "installed": False, "before_wer": 0.2, "after_wer": 0.18, "reason": "kept"})
    qtbot.waitUntil(lambda: not window.adaptation.is_running(), timeout=10_000)
    (run,) = profile.learned_material.runs()
    assert (run["status"], run["before_wer"], run["after_wer"]) == ("kept", 0.2, 0.18) and "ended" in run
    # The material it used is no longer new: nothing starts until more gathers.
    clock.now += 3600
    assert scheduler.why_not() == "0 of 2 new items gathered" and not scheduler.check()
    page = window.learned_page
    assert "background" in page.runs_label.text() and page.run_chart.values()[1][1] == pytest.approx(82.0)

    # A run started on the Adapt page is recorded too, as manual.
    window.adapt_view.start_button.click()
    assert window.adaptation.is_running() and len(SleepingJob.made) == 2
    SleepingJob.made[1].cancel()
    qtbot.waitUntil(lambda: not window.adaptation.is_running(), timeout=10_000)
    assert [(r["kind"], r["status"]) for r in profile.learned_material.runs()] == [
        ("background", "kept"),
        ("manual", "cancelled"),
    ]


def test_weekly_accuracy_counts_the_words_not_corrected(profile):
    from datetime import date

    from dictation.app.gui.learned_page import weekly_accuracy

    profile.add_learned(tone(), "six words that were all right", "accepted", 0.9)
    profile.add_learned(tone(), "call Kevin now", "corrected", hypothesis="call Calvin now")
    ((_, percent),) = weekly_accuracy(profile.learned())
    assert percent == pytest.approx(100 * (1 - 1 / 9))
    assert weekly_accuracy(profile.learned(), today=date(2999, 1, 1)) == []  # only recent weeks


# -- evaluate --takes ---------------------------------------------------------------------


def test_takes_are_parsed_as_a_sorted_list():
    import argparse

    from dictation.cli.lab import parse_takes

    assert parse_takes("40,10,20,80,20") == [10, 20, 40, 80] and parse_takes("10") == [10]
    for bad in ("", "ten", "1,10", "0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_takes(bad)


def test_gains_by_takes_compares_maml_with_finetuning():
    from dictation.lab.heldout import gains_by_takes, takes_table

    rows = [
        {"takes": 2, "steps": 3, "base_wer": 0.3, "adapted_wer": 0.2, "finetune_wer": 0.25, "stock_unpadded_wer": 0.4},
        {"takes": 2, "steps": 3, "base_wer": 0.1, "adapted_wer": 0.1, "finetune_wer": 0.15, "stock_unpadded_wer": 0.2},
        {"takes": 4, "steps": 5, "base_wer": 0.3, "adapted_wer": 0.1, "finetune_wer": 0.2, "stock_unpadded_wer": 0.4},
    ]
    two, four = gains_by_takes(rows)
    assert (two["takes"], two["speakers"], two["steps"], four["speakers"]) == (2, 2, [3], 1)
    assert two["maml_gain"] == pytest.approx(0.05) and two["finetune_gain"] == pytest.approx(0.1)
    assert two["maml_minus_finetune_wer"] == pytest.approx(-0.05)
    assert four["maml_gain"] == pytest.approx(0.2) and four["finetune_gain"] == pytest.approx(0.2)
    assert takes_table([two, four]).splitlines()[2].split()[:2] == ["4", "5"]


@pytest.mark.slow
def test_evaluate_heldout_takes_reports_each_number_of_takes(dictation_cli, tmp_path):
    """The smallest real run: one speaker, 2 and 3 takes, the same 2 test phrases."""
    from dictation.lab.corpus.splits import split_of

    speaker = next(n for n in (f"unit-speaker-{i}" for i in range(40)) if split_of(n) == "train")
    sentences = [
        "Open the window before the meeting starts.",
        "My sister lives in Paris with two cats.",
        "The train leaves at seven in the morning.",
        "Could you send me the invoice today?",
        "We planted tomatoes and beans in the garden.",
    ]
    (tmp_path / speaker).mkdir()
    lines = []
    for i, text in enumerate(sentences):
        tts_wav(text, tmp_path / speaker / f"{i:02d}.wav")
        record = {"audio": f"{speaker}/{i:02d}.wav", "text": text, "speaker": speaker, "source": "espeak"}
        lines.append(json.dumps({**record, "licence": "GPL-3.0 (espeak-ng)", "duration": 2.5}))
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        dictation_cli
        + ["evaluate", "--heldout", "--corpus", str(tmp_path), "--split", "train", "--takes", "3,2"]
        + ["--n-test", "2", "--steps", "1", "--no-check", "--beam", "1", "--threads", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    rows = [r for r in records if "speaker" in r]
    assert [(r["speaker"], r["takes"], r["n_enroll"], r["n_test"]) for r in rows] == [
        (speaker, 2, 2, 2),
        (speaker, 3, 3, 2),
    ]
    assert rows[0]["utterances"]["words"] == rows[1]["utterances"]["words"]  # the same test phrases
    for row in rows:  # the existing keys stay
        assert {"base_wer", "adapted_wer", "finetune_wer", "adapt_seconds", "steps"} <= set(row)
    summaries = [r["summary"] for r in records if "summary" in r]
    assert [s["takes"] for s in summaries] == [2, 3] and all(s["speakers"] == 1 for s in summaries)
    (gains,) = [r["takes_summary"] for r in records if "takes_summary" in r]
    assert [g["takes"] for g in gains] == [2, 3]
    for g, row in zip(gains, rows):
        assert g["maml_gain"] == pytest.approx(row["base_wer"] - row["adapted_wer"])
        assert g["finetune_gain"] == pytest.approx(row["stock_unpadded_wer"] - row["finetune_wer"])
