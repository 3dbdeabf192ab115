"""Issue 25, "nothing the user says is lost": damaged files, interrupted writes, a profile
deleted under another process, a read-only data folder, pending dictations. Real files."""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from dictation.app import storage
from dictation.app.profiles import (
    PendingDictations,
    Profile,
    ProfileDeletedError,
    ProfileError,
    delete_profile,
    list_profiles,
)
from dictation.app.storage import DiskFullError, StorageError


def tone(seconds: float = 0.4, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_old(path: Path) -> None:
    os.utime(path, (time.time() - 3600, time.time() - 3600))


# -- damaged takes --------------------------------------------------------------------


def test_truncated_take_json_and_deleted_wav_leave_the_rest_usable(dictation_home):
    profile = Profile.create("anna")
    takes = [profile.add_take(f"p{i}", f"phrase {i}", tone(freq=200 + 50 * i), {}) for i in range(4)]
    json_path = takes[0].wav_path.with_suffix(".json")
    json_path.write_bytes(json_path.read_bytes()[:20])  # half-written
    takes[1].wav_path.unlink()  # deleted by hand
    takes[2].wav_path.write_bytes(b"")  # emptied (disk full at the wrong moment)

    reopened = Profile.open("anna")  # what every launch of the app does
    assert [t.id for t in reopened.takes()] == [takes[3].id]
    problems = reopened.unreadable_takes()
    assert [p.path for p in problems] == [json_path, takes[1].wav_path, takes[2].wav_path]
    assert "missing" in problems[1].reason and "empty" in problems[2].reason
    assert "3 recordings" in reopened.notice() and "profile check anna" in reopened.notice()
    assert json_path.exists() and takes[2].wav_path.exists()  # reported, never deleted


def test_unreadable_correction_is_reported_like_a_take(dictation_home):
    profile = Profile.create("anna")
    correction = profile.add_correction(tone(), "hyp", "fixed")
    correction.wav_path.unlink()
    assert profile.corrections() == []
    assert [p.path for p in profile.unreadable_takes()] == [correction.wav_path]


# -- settings and vocabulary ----------------------------------------------------------


def test_half_written_settings_are_set_aside_and_defaults_used(dictation_home, caplog):
    profile = Profile.create("anna")
    profile.save_settings({"mic": "USB", "auto_copy": True})
    profile.save_vocabulary(["Kubernetes"])
    settings_path = profile.path / "settings.json"
    settings_path.write_bytes(b'{"mic": "US')
    (profile.path / "vocabulary.json").write_bytes(b"[1, 2")

    reopened = Profile.open("anna")
    with caplog.at_level(logging.WARNING):
        assert reopened.settings() == {}
        assert reopened.vocabulary() == []
    aside = sorted(profile.path.glob("settings.damaged-*.json"))
    assert len(aside) == 1 and aside[0].read_bytes() == b'{"mic": "US'  # kept, not deleted
    assert len(list(profile.path.glob("vocabulary.damaged-*.json"))) == 1
    assert not settings_path.exists()
    assert any("settings.json was damaged" in r.getMessage() for r in caplog.records)
    notice = reopened.notice()
    assert "settings.json" in notice and aside[0].name in notice and "default settings" in notice
    assert {p.path.name for p in reopened.problems()} == {"settings.json", "vocabulary.json"}
    reopened.save_settings({"mic": "other"})  # the profile goes on working
    assert Profile.open("anna").settings() == {"mic": "other"}


def test_settings_that_are_not_an_object_are_set_aside_too(dictation_home):
    profile = Profile.create("anna")
    (profile.path / "settings.json").write_text("[1, 2, 3]")
    assert profile.settings() == {}
    assert len(list(profile.path.glob("settings.damaged-*.json"))) == 1


# -- history --------------------------------------------------------------------------


def test_short_writes_of_history_are_continued(dictation_home, monkeypatch):
    profile = Profile.create("anna")
    real_write = os.write
    calls = []

    def three_bytes_at_a_time(fd: int, data) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data[:3]))

    monkeypatch.setattr(storage.os, "write", three_bytes_at_a_time)
    profile.append_history("a whole sentence, not a torn one")
    monkeypatch.undo()
    assert len(calls) > 5
    assert [h["text"] for h in profile.history()] == ["a whole sentence, not a torn one"]


def test_history_write_failure_raises_and_the_next_entry_is_whole(dictation_home, monkeypatch):
    profile = Profile.create("anna")
    profile.append_history("before")
    real_write = os.write
    state = {"calls": 0}

    def full_after_first_chunk(fd: int, data) -> int:
        state["calls"] += 1
        if state["calls"] == 1:
            return real_write(fd, bytes(data[:7]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(storage.os, "write", full_after_first_chunk)
    with pytest.raises(DiskFullError):  # never reported as saved
        profile.append_history("lost to a full disk")
    monkeypatch.undo()
    profile.append_history("after")
    assert [h["text"] for h in profile.history()] == ["before", "after"]


# -- temp files of interrupted writes -------------------------------------------------


def test_stale_temp_files_are_cleaned_on_open_and_never_exported(dictation_home, tmp_path):
    profile = Profile.create("anna")
    take = profile.add_take("p1", "one", tone(), {})
    stale = profile.path / "takes" / f".{take.id}.json.k2j4h5x_.tmp"
    fresh = profile.path / "takes" / ".settings.json.abcdefgh.tmp"
    foreign = profile.path / "takes" / "notes.tmp"  # not our pattern: never touched
    for path in (stale, fresh, foreign):
        path.write_bytes(b"partial")
    make_old(stale)
    make_old(foreign)
    root_stale = profile.path / ".history.jsonl.zzzzzzzz.tmp"
    root_stale.write_bytes(b"x")
    make_old(root_stale)

    reopened = Profile.open("anna")
    assert not stale.exists() and not root_stale.exists()
    assert fresh.exists() and foreign.exists()  # a write in progress elsewhere is left alone
    archive = tmp_path / "anna.zip"
    assert reopened.export_archive(archive) == []
    names = zipfile.ZipFile(archive).namelist()
    assert not any(storage.is_temp_file_name(Path(n).name) or "/." in n for n in names)
    assert f"takes/{take.id}.wav" in names


def test_temp_name_pattern_is_only_ours():
    assert storage.is_temp_file_name(".take.wav.a1b2c3d_.tmp")
    for name in ("take.wav.tmp", ".take.wav.tmp", ".take.wav.TOOLONG12.tmp", "notes.tmp", ".x.abcdefgh.temp"):
        assert not storage.is_temp_file_name(name)


# -- a profile deleted by another process ---------------------------------------------


def test_writes_to_a_deleted_profile_fail_and_never_recreate_it(dictation_home):
    holder = Profile.create("anna")  # e.g. the GUI
    take = holder.add_take("p1", "one", tone(), {})
    delete_profile("anna")  # e.g. `dictation profile delete anna` in a terminal
    path = dictation_home / "profiles" / "anna"
    writes = [
        lambda: holder.add_take("p2", "two", tone(), {}),
        lambda: holder.add_correction(tone(), "hyp", "fixed"),
        lambda: holder.save_settings({"mic": "x"}),
        lambda: holder.save_vocabulary(["word"]),
        lambda: holder.append_history("dictated"),
        lambda: holder.save_pending(tone()),
        lambda: holder.new_stage_dir(),
        lambda: holder.remove_take(take.id),
    ]
    for write in writes:
        with pytest.raises(ProfileError) as info:
            write()
        assert isinstance(info.value, ProfileDeletedError) or "no take" in str(info.value)
        assert not path.exists()
    assert "was deleted" in str(pytest.raises(ProfileDeletedError, holder.append_history, "x").value)
    assert not holder.exists() and list_profiles() == []


def test_a_new_profile_of_the_same_name_is_not_written_by_the_old_holder(dictation_home):
    holder = Profile.create("anna")
    delete_profile("anna")
    Profile.create("anna")
    with pytest.raises(ProfileDeletedError):
        holder.save_settings({"mic": "old window"})
    assert Profile.open("anna").settings() == {}


def test_a_write_racing_the_delete_does_not_recreate_the_folder(dictation_home, monkeypatch):
    holder = Profile.create("anna")
    monkeypatch.setattr(holder.location, "ensure_exists", lambda: None)  # the check passed...
    delete_profile("anna")  # ...then the delete won the race
    with pytest.raises(ProfileDeletedError):
        holder.save_settings({"mic": "x"})
    assert not (dictation_home / "profiles" / "anna").exists()


# -- a data folder this user cannot write ---------------------------------------------


def test_listing_and_opening_only_read(dictation_home):
    Profile.create("anna").add_take("p1", "one", tone(), {})
    profiles = dictation_home / "profiles"
    os.chmod(profiles, 0o555)
    os.chmod(dictation_home, 0o755)
    try:
        assert list_profiles() == ["anna"]
        assert len(Profile.open("anna").takes()) == 1
        # Nothing was "tightened" (chmod) or created: a folder of someone else stays as it is.
        assert stat.S_IMODE(profiles.stat().st_mode) == 0o555
        assert stat.S_IMODE(dictation_home.stat().st_mode) == 0o755
    finally:
        os.chmod(profiles, 0o700)


def test_listing_works_where_chmod_and_mkdir_are_refused(dictation_home, monkeypatch):
    """Someone else's folder (mode 0755): this user may read it, not chmod or write it.
    Root (these tests' user here) may do both, so the refusals are simulated."""
    Profile.create("anna")

    def refused(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(Path, "chmod", refused)
    monkeypatch.setattr(Path, "mkdir", refused)
    monkeypatch.setattr(os, "chmod", refused)
    assert list_profiles() == ["anna"]
    assert Profile.open("anna").takes() == []


def test_listing_a_missing_data_folder_lists_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DICTATION_HOME", str(tmp_path / "not" / "there"))
    assert list_profiles() == []
    assert not (tmp_path / "not").exists()


# -- pending dictations ---------------------------------------------------------------


def test_pending_dictation_is_kept_until_discarded(dictation_home):
    profile = Profile.create("anna")
    audio = tone(1.0)
    first = profile.save_pending(audio)
    second = PendingDictations.for_profile(profile).save_pending(tone(0.5, 330))
    reopened = Profile.open("anna")  # e.g. after a crash
    items = reopened.pending()
    assert [item.id for item in items] == [first, second]
    assert stat.S_IMODE(items[0].wav_path.stat().st_mode) == 0o600
    samples, rate = soundfile.read(items[0].wav_path, dtype="float32")
    assert rate == 16000 and np.max(np.abs(samples - audio)) < 1e-3
    assert items[0].created.startswith(first[:4])
    reopened.discard_pending(first)
    reopened.discard_pending(first)  # delivered twice: fine
    assert [item.id for item in Profile.open("anna").pending()] == [second]
    with pytest.raises(ProfileError):
        reopened.discard_pending("../profile")
    with pytest.raises(ProfileError):
        reopened.save_pending(np.zeros(0, np.float32))
    assert [item.id for item in reopened.pending()] == [second]


def test_pending_without_a_profile_lives_under_the_data_root(dictation_home):
    store = PendingDictations.without_profile()
    assert store.pending() == []
    pending_id = store.save_pending(tone())
    assert (dictation_home / "pending" / f"{pending_id}.wav").is_file()
    assert stat.S_IMODE((dictation_home / "pending").stat().st_mode) == 0o700
    assert [item.id for item in PendingDictations.without_profile().pending()] == [pending_id]
    store.discard_pending(pending_id)
    assert store.pending() == []


def test_pending_audio_is_not_exported(dictation_home, tmp_path):
    profile = Profile.create("anna")
    profile.save_pending(tone())
    profile.export_archive(tmp_path / "a.zip")
    assert not any(n.startswith("pending") for n in zipfile.ZipFile(tmp_path / "a.zip").namelist())


def test_storage_error_is_an_os_error_for_existing_handlers():
    assert issubclass(DiskFullError, StorageError) and issubclass(StorageError, OSError)
