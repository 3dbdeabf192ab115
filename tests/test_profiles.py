"""Profiles on real files: round trip, corruption, model swap, history, archives."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from dictation.app import profiles
from dictation.app.profiles import (
    CorruptProfileError,
    Profile,
    ProfileError,
    ProfileExistsError,
    ProfileNotFoundError,
    delete_profile,
    list_profiles,
)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DICTATION_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def tone(seconds: float = 0.5, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes (dirs starting with '.' excluded)."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    }


def staged_model(profile: Profile, marker: str) -> Path:
    stage = profile.new_stage_dir() / "model"
    stage.mkdir()
    (stage / "encoder.onnx").write_text(marker)
    (stage / "model.json").write_text(json.dumps({"marker": marker}))
    return stage


def tiny_onnx(marker: str) -> bytes:
    """A real (one Identity node) ONNX model, told apart by its doc string."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], doc_string=marker)
    model.ir_version = 8
    return model.SerializeToString()


def staged_onnx_model(profile: Profile, marker: str) -> Path:
    """Like `staged_model`, with a model onnxruntime loads (archives are checked)."""
    stage = staged_model(profile, marker)
    (stage / "encoder.onnx").write_bytes(tiny_onnx(marker))
    return stage


def test_round_trip_takes_settings_vocabulary_history(home):
    profile = Profile.create("Anna Smith")
    first = profile.add_take("p001", "Hello there.", tone(0.5), {"ok": True, "peak_dbfs": -10.5})
    second = profile.add_take("p002", "General Kenobi!", tone(0.8, 330), {"ok": True})
    profile.save_settings({"mic": "USB", "auto_copy": True, "hotkey": "ctrl+alt+d"})
    profile.save_vocabulary(["Kubernetes", " kubernetes ", "Dvořák", "", "gRPC  call"])
    profile.append_history("first dictation")
    profile.append_history("zweite Zeile ünïcode")

    again = Profile.open("Anna Smith")
    takes = again.takes()
    assert [t.id for t in takes] == [first.id, second.id]
    assert [t.text for t in takes] == ["Hello there.", "General Kenobi!"]
    assert takes[0].prompt_id == "p001" and takes[0].quality == {"ok": True, "peak_dbfs": -10.5}
    audio, rate = soundfile.read(takes[1].wav_path, dtype="float32")
    assert rate == 16000 and len(audio) == 12800
    assert np.max(np.abs(audio - tone(0.8, 330))) < 1e-3  # PCM-16 rounding only
    assert stat.S_IMODE(takes[0].wav_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((takes[0].wav_path.with_suffix(".json")).stat().st_mode) == 0o600
    assert again.settings() == {"mic": "USB", "auto_copy": True, "hotkey": "ctrl+alt+d"}
    assert again.vocabulary() == ["Kubernetes", "Dvořák", "gRPC call"]
    assert [h["text"] for h in again.history()] == ["first dictation", "zweite Zeile ünïcode"]
    assert again.history(limit=1)[0]["text"] == "zweite Zeile ünïcode"
    assert list_profiles() == ["Anna Smith"]
    assert again.model_dir() is None and again.metadata == {}

    again.remove_take(first.id)
    assert [t.id for t in Profile.open("Anna Smith").takes()] == [second.id]
    assert not first.wav_path.exists()
    with pytest.raises(ProfileError):
        again.remove_take("../profile")


def test_bad_input_is_refused_with_typed_errors(home):
    for bad in ["", "../evil", "a/b", "a\\b", ".hidden", "trailing.", "x" * 65, "tab\tname", "nul\0"]:
        with pytest.raises(ProfileError):
            Profile.create(bad)
    Profile.create("anna")
    with pytest.raises(ProfileExistsError):
        Profile.create("ANNA")
    with pytest.raises(ProfileNotFoundError):
        Profile.open("bob")
    profile = Profile.open("anna")
    with pytest.raises(ProfileError):
        profile.add_take("p", "", tone(), {})
    with pytest.raises(ProfileError):
        profile.add_take("p", "text", np.zeros(0, np.float32), {})
    with pytest.raises(ProfileError):
        profile.add_take("p", "text", np.array([np.nan, 0.0], np.float32), {})
    with pytest.raises(ProfileError):
        profile.save_settings({"bad": object()})
    assert profile.takes() == []
    assert not (profile.path / "settings.json").exists()


def test_corrupt_profile_json_raises_and_is_left_untouched(home):
    profile = Profile.create("anna")
    path = profile.path / "profile.json"
    path.write_bytes(b'{"format_version": 1, "name": "an')  # half-written
    with pytest.raises(CorruptProfileError) as info:
        Profile.open("anna")
    assert str(path) in str(info.value)
    assert path.read_bytes() == b'{"format_version": 1, "name": "an'
    assert list_profiles() == ["anna"]  # still listed, so the user can see and fix it

    path.write_text(json.dumps({"format_version": 99, "name": "anna"}))
    with pytest.raises(CorruptProfileError, match="format_version 99"):
        Profile.open("anna")
    path.unlink()
    with pytest.raises(CorruptProfileError, match="missing"):
        Profile.open("anna")
    assert not path.exists()  # never silently recreated


def test_corrupt_or_incomplete_take_is_reported_by_file(home):
    # Issue 25: one damaged take is reported by file and left out; it no longer makes
    # takes() raise for the whole profile (the app exited at every launch).
    profile = Profile.create("anna")
    take = profile.add_take("p1", "one", tone(), {})
    good = profile.add_take("p2", "two", tone(), {})
    json_path = take.wav_path.with_suffix(".json")
    original = json_path.read_bytes()
    json_path.write_bytes(b"\x00garbage")
    assert [t.id for t in profile.takes()] == [good.id]
    (problem,) = profile.unreadable_takes()
    assert problem.path == json_path and str(json_path) in str(problem)
    assert json_path.read_bytes() == b"\x00garbage"
    json_path.write_bytes(original)
    take.wav_path.unlink()
    assert [t.id for t in Profile.open("anna").takes()] == [good.id]
    (problem,) = profile.unreadable_takes()
    assert problem.path == take.wav_path and "audio is missing" in problem.reason


def test_interrupted_add_take_leaves_no_take(home, monkeypatch):
    profile = Profile.create("anna")
    real = profiles.storage.atomic_write_json

    def crash_on_take_json(path, obj, *args, **kwargs):
        if Path(path).parent.name == "takes":
            raise OSError(28, "No space left on device")
        return real(path, obj, *args, **kwargs)

    monkeypatch.setattr(profiles.storage, "atomic_write_json", crash_on_take_json)
    with pytest.raises(OSError):
        profile.add_take("p1", "one", tone(), {})
    monkeypatch.undo()
    monkeypatch.setenv("DICTATION_HOME", str(home))
    assert Profile.open("anna").takes() == []  # the orphan WAV is ignored


def test_install_keeps_last_good_and_reset(home):
    profile = Profile.create("anna")
    profile.add_take("p1", "one", tone(), {})
    with pytest.raises(ProfileError, match="no .onnx"):
        empty = profile.new_stage_dir()
        profile.install_model(empty, {})
    profile.install_model(staged_model(profile, "v1"), {"after_wer": 0.2, "steps": 5})
    assert profile.model_dir() == profile.path / "model"
    assert (profile.model_dir() / "encoder.onnx").read_text() == "v1"
    assert profile.metadata["version"] == 1 and profile.metadata["steps"] == 5
    assert profile.previous_metadata() is None

    profile.install_model(staged_model(profile, "v2"), {"after_wer": 0.1})
    assert (profile.model_dir() / "encoder.onnx").read_text() == "v2"
    assert (profile.path / "model.prev" / "encoder.onnx").read_text() == "v1"
    assert profile.metadata["version"] == 2 and profile.previous_metadata()["version"] == 1
    assert [p for p in profile.path.iterdir() if p.name.startswith(".")] == [empty]

    profile.restore_previous_model()
    assert (profile.model_dir() / "encoder.onnx").read_text() == "v1"

    profile.reset_to_base()
    assert profile.model_dir() is None and profile.metadata == {}
    assert len(profile.takes()) == 1


def test_outdated_model_names_the_older_base_only(home):
    profile = Profile.create("anna")
    assert profile.adapted_from() is None and profile.outdated_model("0.5.0") is None  # base model
    profile.install_model(staged_model(profile, "v1"), {"after_wer": 0.2})  # before the key existed
    assert profile.adapted_from() is None and profile.outdated_model("0.5.0") is None
    profile.install_model(staged_model(profile, "v2"), {"base_model_version": "0.4.3"})
    assert profile.adapted_from() == "0.4.3"
    assert profile.outdated_model("0.5.0") == "0.4.3"
    assert profile.outdated_model("0.4.3") is None
    # Asking changes nothing: the adapted model stays installed.
    assert (profile.model_dir() / "encoder.onnx").read_text() == "v2"


def test_install_from_outside_the_profile_copies(home, tmp_path):
    profile = Profile.create("anna")
    outside = tmp_path / "export"
    outside.mkdir()
    (outside / "encoder.onnx").write_text("ext")
    profile.install_model(outside, {})
    assert (profile.model_dir() / "encoder.onnx").read_text() == "ext"
    assert (outside / "encoder.onnx").exists()  # the source is not consumed


def test_interrupted_install_leaves_old_model_usable(home, monkeypatch):
    profile = Profile.create("anna")
    profile.install_model(staged_model(profile, "v1"), {"after_wer": 0.2})
    stage = staged_model(profile, "v2")
    real_replace = os.replace

    def crash_on_final_rename(src, dst, *args, **kwargs):
        if Path(src) == stage:  # the second rename of the swap: the new model into place
            raise OSError(5, "simulated crash mid-swap")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(profiles.os, "replace", crash_on_final_rename)
    with pytest.raises(OSError, match="mid-swap"):
        profile.install_model(stage, {"after_wer": 0.1})
    monkeypatch.undo()
    monkeypatch.setenv("DICTATION_HOME", str(home))

    reopened = Profile.open("anna")
    assert (reopened.model_dir() / "encoder.onnx").read_text() == "v1"
    assert reopened.metadata["version"] == 1
    # The next install works, and v1 stays the last good model.
    reopened.install_model(staged_model(reopened, "v3"), {})
    assert (reopened.model_dir() / "encoder.onnx").read_text() == "v3"
    assert (reopened.path / "model.prev" / "encoder.onnx").read_text() == "v1"
    assert reopened.metadata["version"] == 2


def test_history_survives_a_corrupt_line(home):
    profile = Profile.create("anna")
    profile.append_history("one")
    with open(profile.path / "history.jsonl", "ab") as handle:
        handle.write(b'{"time": "2026-01-01", "te')  # torn write, no newline
    profile.append_history("two")
    with open(profile.path / "history.jsonl", "ab") as handle:
        handle.write(b"\xff\xfe not json\n[1, 2]\n")
    profile.append_history("three")
    assert [h["text"] for h in profile.history()] == ["one", "two", "three"]


def test_corrections_round_trip(home):
    profile = Profile.create("anna")
    profile.add_correction(tone(), "recognise speech", "wreck a nice beach")
    corrections = Profile.open("anna").corrections()
    assert len(corrections) == 1
    assert corrections[0].text == "wreck a nice beach"
    assert corrections[0].hypothesis == "recognise speech"
    assert corrections[0].wav_path.is_file()
    assert profile.takes() == []


def test_stale_staging_of_dead_worker_is_removed(home):
    profile = Profile.create("anna")
    dead = profile.path / ".stage-999999999-abcd"  # no such pid
    (dead / "model").mkdir(parents=True)
    mine = profile.new_stage_dir()
    assert not dead.exists() and mine.exists()  # our own (live pid) stays
    assert profile.clean_stale_staging() == []


def test_archive_round_trip_and_no_silent_overwrite(home, tmp_path):
    profile = Profile.create("anna")
    take = profile.add_take("p1", "one two", tone(), {"ok": True})
    profile.add_correction(tone(0.3), "hyp", "fixed")
    profile.save_settings({"device": "cpu"})
    profile.save_vocabulary(["Zyx"])
    profile.append_history("dictated")
    profile.install_model(staged_onnx_model(profile, "v1"), {"after_wer": 0.3})
    archive = tmp_path / "anna.zip"
    assert profile.export_archive(archive) == []  # nothing left out
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600

    with pytest.raises(ProfileExistsError):
        Profile.import_archive(archive)  # "anna" exists
    copy = Profile.import_archive(archive, name="anna copy")
    assert copy.info["name"] == "anna copy"
    assert [t.text for t in copy.takes()] == ["one two"]
    assert copy.takes()[0].wav_path.read_bytes() == take.wav_path.read_bytes()
    assert copy.corrections()[0].hypothesis == "hyp"
    assert copy.settings() == {"device": "cpu"} and copy.vocabulary() == ["Zyx"]
    assert [h["text"] for h in copy.history()] == ["dictated"]
    assert (copy.model_dir() / "encoder.onnx").read_bytes() == tiny_onnx("v1")
    before = tree(profile.path)
    delete_profile("anna")
    assert list_profiles() == ["anna copy"]
    restored = Profile.import_archive(archive)
    assert tree(restored.path) == before

    light = tmp_path / "light.zip"
    restored.export_archive(light, include_model=False)
    assert not any(n.startswith("model") for n in zipfile.ZipFile(light).namelist())


def test_learned_material_travels_in_the_archive_and_a_broken_item_is_repaired_aside(home, tmp_path):
    from dictation.app.profiles import check
    from dictation.app.profiles.learned import run_started

    profile = Profile.create("anna")
    accepted = profile.add_learned(tone(0.4), "accepted words", "accepted", confidence=0.93)
    profile.add_learned(tone(0.3), "fixed words", "corrected", hypothesis="fixt words")
    profile.learned_material.record_run({**run_started(), "status": "done", "before_wer": 0.2, "after_wer": 0.1})
    archive = tmp_path / "anna.zip"
    assert profile.export_archive(archive) == []
    names = zipfile.ZipFile(archive).namelist()
    assert f"learned/{accepted.id}.wav" in names and "learning.json" in names
    copy = Profile.import_archive(archive, name="anna copy")
    items = {i.source: i for i in copy.learned()}
    assert items["accepted"].text == "accepted words" and items["corrected"].hypothesis == "fixt words"
    assert items["accepted"].wav_path.read_bytes() == accepted.wav_path.read_bytes()
    assert [r["after_wer"] for r in copy.learned_material.runs()] == [0.1]

    # A learned item whose audio no longer decodes: found by the check, left out of an
    # export (the import would refuse it), and moved aside (not deleted) by repair.
    items["accepted"].wav_path.write_bytes(b"RIFF0000WAVEnot audio")
    problems = check.recording_problems(copy, decode_audio=True)
    assert [p.path.name for p in problems] == [f"{accepted.id}.wav"]
    again = tmp_path / "again.zip"
    left_out = copy.export_archive(again)
    assert f"learned/{accepted.id}.wav" not in zipfile.ZipFile(again).namelist() and left_out
    repaired, remaining = check.repair(copy)
    assert [p.kept_at.name for p in repaired] == ["learned.unreadable"] and remaining == []
    assert (copy.path / "learned.unreadable" / f"{accepted.id}.wav").exists()
    assert [i.source for i in copy.learned()] == ["corrected"]


def test_bad_archives_are_refused_and_import_nothing(home, tmp_path):
    good = Profile.create("anna")
    good.add_take("p1", "one", tone(), {})
    archive = tmp_path / "anna.zip"
    good.export_archive(archive)

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("profile.json", json.dumps({"format_version": 1, "name": "evil"}))
        z.writestr("takes/../../escape.txt", "x")
    with pytest.raises(ProfileError, match="unsafe path"):
        Profile.import_archive(evil)

    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.startswith("takes/") and item.filename.endswith(".json"):
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    with pytest.raises(CorruptProfileError, match="not a valid profile archive"):
        Profile.import_archive(broken, name="broken")

    newer = tmp_path / "newer.zip"
    with zipfile.ZipFile(newer, "w") as z:
        z.writestr("profile.json", json.dumps({"format_version": 7, "name": "newer"}))
    with pytest.raises(CorruptProfileError, match="format_version 7"):
        Profile.import_archive(newer)

    not_zip = tmp_path / "plain.zip"
    not_zip.write_text("hello")
    with pytest.raises(ProfileError, match="not a profile archive"):
        Profile.import_archive(not_zip)

    assert list_profiles() == ["anna"]
    assert [p.name for p in (home / "profiles").iterdir()] == ["anna"]  # no leftovers
    assert not (tmp_path / "escape.txt").exists()


def test_delete_profile_is_explicit_and_complete(home):
    Profile.create("anna").add_take("p1", "one", tone(), {})
    Profile.create("bob")
    with pytest.raises(ProfileNotFoundError):
        delete_profile("carol")
    delete_profile("anna")
    assert list_profiles() == ["bob"]
    assert sorted(p.name for p in (home / "profiles").iterdir()) == ["bob"]


def test_leftovers_of_crashed_operations_are_ignored_then_cleaned(home):
    root = home / "profiles"
    Profile.create("anna")
    (root / ".trash-0123").mkdir()  # a delete that crashed after its rename
    (root / ".trash-0123" / "takes").mkdir()
    old_build = root / ".import-4567"
    old_build.mkdir()
    os.utime(old_build, (0, 0))  # hours old: no import can still own it
    fresh_build = root / ".create-89ab"
    fresh_build.mkdir()
    assert list_profiles() == ["anna"]
    Profile.create("bob")
    assert sorted(p.name for p in root.iterdir()) == [".create-89ab", "anna", "bob"]
    with pytest.raises(ProfileError, match="does not exist"):
        Profile.open("anna").export_archive(home / "no" / "such" / "dir.zip")
