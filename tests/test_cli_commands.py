"""`dictation transcribe|profile|enroll|adapt`, run as real subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dictation.app import storage
from dictation.app.audio import load_audio, write_wav
from dictation.app.profiles import Profile
from dictation.app.text import wer

REPO = Path(__file__).resolve().parent.parent
PHRASES = {
    "fox": "The quick brown fox jumps over the lazy dog.",
    "report": "Please send the report before noon.",
    "station": "We will meet at the station tomorrow morning.",
    "garden": "The children played in the garden all afternoon.",
}


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DICTATION_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def shared_cache(monkeypatch) -> Path:
    """The machine's model cache, so the base ONNX model is built once, not per test."""
    home = os.environ.pop("DICTATION_HOME", None)
    cache = os.environ.get("DICTATION_CACHE") or str(storage.cache_root())
    if home is not None:
        os.environ["DICTATION_HOME"] = home
    monkeypatch.setenv("DICTATION_CACHE", cache)
    return Path(cache)


def dictation(*args: str, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "dictation", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory) -> Path:
    """NAME.wav + NAME.txt pairs spoken by espeak-ng (at its native 22.05 kHz)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("speech")
    for name, text in PHRASES.items():
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(folder / f"{name}.wav"), text],
            check=True,
            timeout=60,
        )
        (folder / f"{name}.txt").write_text(f"  {text}\n", encoding="utf-8")
    return folder


def test_profile_commands(home, tmp_path):
    result = dictation("profile", "create", "anna")
    assert result.returncode == 0, result.stderr
    assert "created profile 'anna'" in result.stdout
    result = dictation("profile", "create", "Anna")
    assert result.returncode == 1 and "exists already" in result.stderr
    result = dictation("profile", "create", "../escape")
    assert result.returncode == 1 and "must start with a letter or digit" in result.stderr
    assert not (home / "escape").exists()

    result = dictation("profile", "list")
    assert result.returncode == 0 and result.stdout.splitlines() == ["anna\t0 takes\tbase model"]

    archive = tmp_path / "anna.zip"
    assert dictation("profile", "export", "anna", str(archive)).returncode == 0
    result = dictation("profile", "export", "anna", str(archive))
    assert result.returncode == 1 and "exists already" in result.stderr
    result = dictation("profile", "import", str(archive))
    assert result.returncode == 1 and "exists already" in result.stderr
    result = dictation("profile", "import", str(archive), "--name", "bob")
    assert result.returncode == 0 and "imported profile 'bob'" in result.stdout
    result = dictation("profile", "import", str(tmp_path / "missing.zip"))
    assert result.returncode == 1 and "archive not found" in result.stderr

    result = dictation("profile", "delete", "bob", stdin="n\n")
    assert result.returncode == 1 and "not deleted" in result.stdout
    assert (home / "profiles" / "bob").is_dir()
    result = dictation("profile", "delete", "bob")  # no answer (EOF) means no
    assert result.returncode == 1 and (home / "profiles" / "bob").is_dir()
    result = dictation("profile", "delete", "bob", stdin="y\n")
    assert result.returncode == 0 and not (home / "profiles" / "bob").exists()
    assert dictation("profile", "delete", "anna", "--yes").returncode == 0
    result = dictation("profile", "delete", "carol", "--yes")
    assert result.returncode == 1 and "no profile named 'carol'" in result.stderr
    assert dictation("profile", "list").stdout.startswith("no profiles")


def test_previous_model_command_goes_back_one_adaptation(home):
    from dictation.app.profiles import Profile

    assert dictation("profile", "create", "anna").returncode == 0
    result = dictation("profile", "previous-model", "anna", "--yes")
    assert result.returncode == 1 and "has no previous model" in result.stderr
    profile = Profile.open("anna")
    for marker, installed in (("first", "2026-11-01T10:00:00"), ("second", "2026-11-02T10:00:00")):
        stage = profile.new_stage_dir() / "model"
        stage.mkdir()
        (stage / "encoder.onnx").write_text(marker)
        profile.install_model(stage, {"after_wer": 0.1, "installed": installed})
    result = dictation("profile", "previous-model", "anna", stdin="n\n")
    assert result.returncode == 1 and "unchanged" in result.stdout
    assert (Profile.open("anna").model_dir() / "encoder.onnx").read_text() == "second"
    result = dictation("profile", "previous-model", "anna", stdin="y\n")
    assert result.returncode == 0 and "2026-11-01T10:00:00" in result.stdout
    reopened = Profile.open("anna")
    assert (reopened.model_dir() / "encoder.onnx").read_text() == "first"
    assert reopened.previous_metadata() is None  # one step back, not more
    result = dictation("profile", "previous-model", "anna", "--yes")
    assert result.returncode == 1 and "has no previous model" in result.stderr


def test_profile_list_asks_to_adapt_again_after_a_model_update(home):
    from dictation.app.base_model import bundled_model_version
    from dictation.app.profiles import Profile

    shipped = bundled_model_version()
    profile = Profile.create("anna")
    stage = profile.new_stage_dir() / "model"
    stage.mkdir()
    (stage / "encoder.onnx").write_text("adapted")
    profile.install_model(stage, {"after_wer": 0.1, "base_model_version": shipped})
    result = dictation("profile", "list")
    assert result.returncode == 0 and "anna" in result.stdout and "again" not in result.stdout
    stage = profile.new_stage_dir() / "model"
    stage.mkdir()
    (stage / "encoder.onnx").write_text("adapted")
    profile.install_model(stage, {"after_wer": 0.1, "base_model_version": "0.0.1"})
    result = dictation("profile", "list")
    assert result.returncode == 0
    assert f"made from speech model 0.0.1, {shipped} is installed" in result.stdout
    assert "dictation adapt --profile anna" in result.stdout


def test_corrupt_profile_is_reported_not_replaced(home, tmp_path):
    assert dictation("profile", "create", "anna").returncode == 0
    info = home / "profiles" / "anna" / "profile.json"
    info.write_text('{"format_version": 1, "na')
    result = dictation("profile", "list")
    assert result.returncode == 0 and "anna\tUNREADABLE" in result.stdout and str(info) in result.stdout
    result = dictation("enroll", "--profile", "anna", "--from-dir", str(tmp_path))
    assert result.returncode == 1 and str(info) in result.stderr and "corrupt" in result.stderr
    result = dictation("adapt", "--profile", "anna")
    assert result.returncode == 1 and str(info) in result.stderr
    assert info.read_text() == '{"format_version": 1, "na'


def test_enroll_from_dir_imports_good_takes_and_lists_rejects(home, tmp_path, speech_dir):
    folder = tmp_path / "enroll"
    shutil.copytree(speech_dir, folder)
    write_wav(folder / "silent.wav", np.zeros(32000, np.float32))
    (folder / "silent.txt").write_text("Nothing to hear here.")
    loud = np.clip(load_audio(folder / "fox.wav") * 50, -1, 1)
    write_wav(folder / "clipped.wav", loud)
    (folder / "clipped.txt").write_text(PHRASES["fox"])
    shutil.copy(folder / "report.wav", folder / "notext.wav")
    shutil.copy(folder / "report.wav", folder / "emptytext.wav")
    (folder / "emptytext.txt").write_text("   \n")
    (folder / "orphan.txt").write_text("no audio for this one")

    result = dictation("enroll", "--profile", "anna", "--from-dir", str(folder))
    assert result.returncode == 1 and "no profile named 'anna'" in result.stderr
    assert dictation("profile", "create", "anna").returncode == 0
    result = dictation("enroll", "--profile", "anna", "--from-dir", str(tmp_path / "nope"))
    assert result.returncode == 2 and "no such directory" in result.stderr

    result = dictation("enroll", "--profile", "anna", "--from-dir", str(folder))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "added 4 takes to profile 'anna'"
    rejected = {line.split(":")[0]: line for line in lines if line.startswith("rejected")}
    assert set(rejected) == {
        "rejected silent.wav",
        "rejected clipped.wav",
        "rejected notext.wav",
        "rejected emptytext.wav",
    }
    assert "silent" in rejected["rejected silent.wav"].split(":", 1)[1]
    assert "clipped" in rejected["rejected clipped.wav"].split(":", 1)[1]
    assert "no notext.txt" in rejected["rejected notext.wav"]
    assert "ignored orphan.txt: no matching .wav" in lines

    takes = Profile.open("anna").takes()
    assert sorted((t.prompt_id, t.text) for t in takes) == sorted(PHRASES.items())
    for take in takes:
        assert take.quality  # the checks' measurements are kept with the take
        source = load_audio(folder / f"{take.prompt_id}.wav")  # resampled from 22.05 kHz
        stored = load_audio(take.wav_path)
        assert len(stored) == len(source) > 16000
        assert np.max(np.abs(stored - source)) < 1e-3

    again = dictation("enroll", "--profile", "anna", "--from-dir", str(folder))
    assert again.returncode == 0
    assert again.stdout.splitlines()[0] == "added 0 takes to profile 'anna' (4 already there)"
    assert len(Profile.open("anna").takes()) == 4


def test_transcribe_json_and_plain(home, shared_cache, speech_dir, tmp_path):
    files = [str(speech_dir / "fox.wav"), str(speech_dir / "report.wav")]
    result = dictation("transcribe", "--json", *files)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == files
    assert all(r["model"] == "base" and 0 < r["seconds"] < r["audio_seconds"] for r in records)
    assert wer([PHRASES["fox"], PHRASES["report"]], [r["text"] for r in records]) <= 0.35
    from dictation.app.decoding import DEFAULT_BEAM

    assert all(r["beam"] == DEFAULT_BEAM for r in records)
    greedy = dictation("transcribe", "--json", "--beam", "1", files[0])
    assert greedy.returncode == 0 and json.loads(greedy.stdout)["beam"] == 1
    bad = dictation("transcribe", "--beam", "0", files[0])
    assert bad.returncode == 2 and "beam must be" in bad.stderr

    plain = dictation("transcribe", files[0])
    assert plain.returncode == 0 and plain.stdout.strip() == records[0]["text"].strip()

    result = dictation("transcribe", files[0], str(tmp_path / "missing.wav"))
    assert result.returncode == 2 and "no such file" in result.stderr and result.stdout == ""
    (tmp_path / "bad.wav").write_text("not audio")
    result = dictation("transcribe", str(tmp_path / "bad.wav"), files[0])
    assert result.returncode == 1 and "cannot read" in result.stderr
    assert result.stdout.strip() == records[0]["text"].strip()  # the good file still done
    result = dictation("transcribe", "--profile", "nobody", files[0])
    assert result.returncode == 1 and "no profile named 'nobody'" in result.stderr


def test_adapt_refuses_clearly(home):
    result = dictation("adapt", "--profile", "nobody")
    assert result.returncode == 1 and "no profile named 'nobody'" in result.stderr
    assert dictation("profile", "create", "anna").returncode == 0
    result = dictation("adapt", "--profile", "anna", "--device", "cpu")
    assert result.returncode == 1
    assert "has 0 takes; record at least 3" in result.stderr
    result = dictation("adapt", "--profile", "anna", "--steps", "0")
    assert result.returncode == 2 and "--steps must be at least 1" in result.stderr


@pytest.mark.slow
def test_adapt_end_to_end(home, shared_cache, speech_dir):
    assert dictation("profile", "create", "anna").returncode == 0
    assert dictation("enroll", "--profile", "anna", "--from-dir", str(speech_dir)).returncode == 0
    result = dictation("adapt", "--profile", "anna", "--device", "cpu", "--steps", "2", timeout=900)
    out = result.stdout.splitlines()
    assert "step 2/2" in "\n".join(out), result.stdout + result.stderr
    profile = Profile.open("anna")
    if result.returncode == 0:
        assert out[-1].startswith("installed: ")
        assert profile.metadata["steps"] == 2 and profile.metadata["device"] == "cpu"
        transcribed = dictation("transcribe", "--json", "--profile", "anna", str(speech_dir / "fox.wav"))
        assert json.loads(transcribed.stdout)["model"] == "adapted"
    else:  # the check kept the base model: said on stdout, the new model kept aside
        assert out[-1].startswith("kept your current model (the base model): "), result.stdout
        assert profile.model_dir() is None and profile.candidate_metadata() is not None


def test_ctrl_c_cancels_adaptation_cleanly(home, monkeypatch):
    """Ctrl-C in a terminal signals the whole process group: the CLI cancels, the worker obeys."""
    import signal
    import time

    profile = Profile.create("anna")
    for i in range(3):
        profile.add_take(f"p{i}", f"phrase {i}", np.full(8000, 0.1 * (i + 1), np.float32), {})
    monkeypatch.setenv("DICTATION_TEST_ADAPT_TARGET", f"{Path(__file__).with_name('test_adapt_job.py')}:slow_adapt")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dictation", "adapt", "--profile", "anna", "--steps", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        line = ""
        while not line.startswith("step ") and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "cancelling..." in err and "dictation: error: cancelled" in err
    assert "crashed" not in err
    assert Profile.open("anna").model_dir() is None and len(Profile.open("anna").takes()) == 3
