"""`dictation profile check NAME [--repair]` as a real subprocess, and the adaptation
worker skipping unreadable recordings instead of failing (issue 25)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from dictation.adapt import worker
from dictation.app.adapt_job import AdaptationJob
from dictation.app.profiles import Profile, find_problems

REPO = Path(__file__).resolve().parent.parent
THIS_FILE = Path(__file__).resolve()


def dictation(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "dictation", *args], capture_output=True, text=True, timeout=300, env=env, cwd=REPO
    )


def tone(seconds: float = 0.4, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def tiny_onnx() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def install_complete_model(profile: Profile) -> Path:
    """A model folder with every file the runtime opens (tiny, but real formats)."""
    stage = profile.new_stage_dir() / "model"
    stage.mkdir()
    for name in ("encoder.onnx", "decoder.onnx"):
        (stage / name).write_bytes(tiny_onnx())
    for name in ("tokenizer.json", "config.json", "model.json"):
        (stage / name).write_text("{}")
    np.save(stage / "positions.npy", np.zeros((4, 4), np.float32))
    profile.install_model(stage, {"after_wer": 0.2})
    return profile.model_dir()


def test_check_reports_every_unreadable_file_and_repair_moves_takes_aside(dictation_home):
    profile = Profile.create("anna")
    takes = [profile.add_take(f"p{i}", f"phrase {i}", tone(freq=200 + 40 * i), {}) for i in range(4)]
    install_complete_model(profile)
    profile.append_history("kept")
    result = dictation("profile", "check", "anna")
    assert result.returncode == 0 and "every file is readable" in result.stdout, result.stdout + result.stderr

    torn_json = takes[0].wav_path.with_suffix(".json")
    torn_json.write_bytes(torn_json.read_bytes()[:25])
    takes[1].wav_path.write_bytes(b"RIFF" + bytes(range(100)))  # a header libsndfile refuses
    takes[2].wav_path.unlink()
    (profile.path / "settings.json").write_bytes(b'{"mic": "U')
    with open(profile.path / "history.jsonl", "ab") as handle:
        handle.write(b'{"time": "2026", "te\n')

    result = dictation("profile", "check", "anna")
    assert result.returncode == 1
    for path in (torn_json, takes[1].wav_path, takes[2].wav_path, profile.path / "settings.json"):
        assert str(path) in result.stdout
    assert "history.jsonl" in result.stdout and "--repair" in result.stdout
    assert torn_json.exists() and (profile.path / "settings.json").exists()  # checking only reads

    result = dictation("profile", "check", "anna", "--repair")
    assert result.returncode == 0, result.stdout + result.stderr
    aside = profile.path / "takes.unreadable"
    moved = {f"{t.id}{suffix}" for t in takes[:2] for suffix in (".json", ".wav")} | {f"{takes[2].id}.json"}
    assert {p.name for p in aside.iterdir()} == moved  # both files of a take, whichever exist
    assert len(list(profile.path.glob("settings.damaged-*.json"))) == 1
    reopened = Profile.open("anna")
    assert [t.id for t in reopened.takes()] == [takes[3].id] and reopened.unreadable_takes() == []
    assert [h["text"] for h in reopened.history()] == ["kept"]
    # Only the history's torn line is left (it is skipped on reading), so check still says so.
    result = dictation("profile", "check", "anna")
    assert result.returncode == 1 and "history.jsonl" in result.stdout and "takes" not in result.stdout


def test_check_finds_damaged_model_files_and_says_how_to_go_back(dictation_home):
    profile = Profile.create("anna")
    model = install_complete_model(profile)
    decoder = model / "decoder.onnx"
    decoder.write_bytes(decoder.read_bytes()[:-4])  # truncated
    (model / "config.json").write_bytes(b"")
    (model / "tokenizer.json").unlink()
    (model / "positions.npy").write_bytes((model / "positions.npy").read_bytes()[:100])
    problems = {p.path.name: p.reason for p in find_problems(Profile.open("anna"))}
    assert set(problems) == {"decoder.onnx", "config.json", "tokenizer.json", "positions.npy"}
    assert "truncated" in problems["decoder.onnx"] and "missing" in problems["tokenizer.json"]

    result = dictation("profile", "check", "anna", "--repair")
    assert result.returncode == 1
    assert str(decoder) in result.stdout and "previous-model" in result.stdout
    assert decoder.exists()  # models are never moved or deleted by repair


def test_check_of_a_profile_with_unreadable_profile_json_fails_clearly(dictation_home):
    profile = Profile.create("anna")
    (profile.path / "profile.json").write_text('{"format_')
    result = dictation("profile", "check", "anna")
    assert result.returncode == 1 and "profile.json" in result.stderr


def test_profile_list_in_a_read_only_data_folder(dictation_home):
    Profile.create("anna").add_take("p1", "one", tone(), {})
    profiles = dictation_home / "profiles"
    os.chmod(profiles, 0o555)
    os.chmod(dictation_home, 0o555)
    try:
        result = dictation("profile", "list")
        assert result.returncode == 0 and result.stdout.startswith("anna\t1 takes"), result.stdout + result.stderr
        assert oct(profiles.stat().st_mode & 0o777) == "0o555"  # listing changed nothing
    finally:
        os.chmod(dictation_home, 0o700)
        os.chmod(profiles, 0o700)


def test_profile_list_points_to_check_for_unreadable_takes(dictation_home):
    profile = Profile.create("anna")
    profile.add_take("p1", "one", tone(), {}).wav_path.unlink()
    result = dictation("profile", "list")
    assert result.returncode == 0
    assert (
        "anna\t0 takes" in result.stdout and "1 unreadable" in result.stdout and "profile check anna" in result.stdout
    )


# -- the adaptation worker ------------------------------------------------------------


def report_takes(takes, steps, device, progress, should_cancel):
    """Stands in for the adaptation step (DICTATION_TEST_ADAPT_TARGET): says what it got."""
    raise RuntimeError(f"received {len(takes)} recordings: {sorted(text for _, text in takes)}")


def test_worker_skips_unreadable_recordings_with_a_status(dictation_home, monkeypatch):
    profile = Profile.create("anna")
    takes = [profile.add_take(f"p{i}", f"phrase {i}", tone(freq=200 + 40 * i), {}) for i in range(5)]
    takes[0].wav_path.write_bytes(b"RIFF" + bytes(range(100)))  # passes the cheap check, does not decode
    json_path = takes[1].wav_path.with_suffix(".json")
    json_path.write_bytes(b'{"id": ')
    monkeypatch.setenv(worker.ADAPT_TARGET_ENV, f"{THIS_FILE}:report_takes")
    job = AdaptationJob("anna", device="cpu")
    job.start()
    events = job.wait(timeout=180)
    statuses = [e["message"] for e in events if e["type"] == "status"]
    skipping = [s for s in statuses if s.startswith("skipping 2 unreadable recording")]
    assert skipping and "profile check anna" in skipping[0], statuses
    assert events[-1]["type"] == "error"
    assert "received 3 recordings: ['phrase 2', 'phrase 3', 'phrase 4']" in events[-1]["message"]
