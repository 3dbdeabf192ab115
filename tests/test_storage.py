"""dictation.app.storage: where data lives; writes that never leave a half-written file."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dictation.app import storage
from dictation.app.storage import DiskFullError, StorageError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(directory: Path, name: str) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(f".{name}.")]


def test_data_root_follows_dictation_home_and_is_private(dictation_home: Path) -> None:
    root = storage.data_root()
    assert root == dictation_home
    assert root.is_dir() and _mode(root) == 0o700


def test_data_root_tightens_an_existing_open_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    monkeypatch.setenv("DICTATION_HOME", str(home))
    assert _mode(storage.data_root()) == 0o700


def test_roots_default_to_platformdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DICTATION_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert storage.data_root() == tmp_path / "data" / "dictation"
    assert storage.cache_root() == tmp_path / "cache" / "dictation"


def test_cache_root_overrides(dictation_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert storage.cache_root() == dictation_home / "cache"
    monkeypatch.setenv("DICTATION_CACHE", str(tmp_path / "elsewhere"))
    assert storage.cache_root() == tmp_path / "elsewhere"
    assert _mode(tmp_path / "elsewhere") == 0o700


def test_atomic_write_creates_private_file_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "take.bin"
    storage.atomic_write_bytes(target, b"first")
    assert target.read_bytes() == b"first"
    assert _mode(target) == 0o600
    storage.atomic_write_bytes(target, b"second version", mode=0o644)
    assert target.read_bytes() == b"second version"
    assert _mode(target) == 0o644
    assert _leftovers(target.parent, target.name) == []


def test_text_and_json_round_trip(tmp_path: Path) -> None:
    storage.atomic_write_text(tmp_path / "a.txt", "héllo\n")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    data = {"name": "Zoë", "wer": 0.125, "takes": [1, 2]}
    storage.atomic_write_json(tmp_path / "a.json", data)
    assert json.loads((tmp_path / "a.json").read_text(encoding="utf-8")) == data


def test_json_that_cannot_be_serialised_leaves_old_file(tmp_path: Path) -> None:
    target = tmp_path / "meta.json"
    storage.atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        storage.atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert _leftovers(tmp_path, target.name) == []


def test_failure_between_write_and_rename_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "profile.json"
    target.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        assert Path(src).read_bytes() == b"new"  # the data was fully written first
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(storage.os, "replace", broken_replace)
    with pytest.raises(StorageError) as info:
        storage.atomic_write_bytes(target, b"new")
    assert info.value.errno == errno.EIO
    assert "intact" in str(info.value)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path, target.name) == []


def test_interrupt_during_write_removes_temp_and_propagates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "settings.json"
    target.write_bytes(b"old")

    def interrupted_fsync(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        storage.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path, target.name) == []


def test_process_killed_before_rename_keeps_old_file(tmp_path: Path) -> None:
    """A real crash: the writing process gets SIGKILL right before the rename."""
    target = tmp_path / "take.wav"
    target.write_bytes(b"old contents")
    code = textwrap.dedent(
        f"""
        import os, signal
        from dictation.app import storage
        storage.os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        storage.atomic_write_bytes({str(target)!r}, b"new contents" * 1000)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == -9
    assert target.read_bytes() == b"old contents"
    # What a crash can leave is a hidden temp sibling, never a damaged target.
    for name in _leftovers(tmp_path, target.name):
        assert name.endswith(".tmp")


def test_disk_full_raises_disk_full_error_and_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "history.json"
    target.write_bytes(b"old")
    real_write = os.write

    def write_until_full(fd: int, data: bytes | memoryview) -> int:
        if len(data) > 4:  # write part of it, then the disk is full
            return real_write(fd, bytes(data[:4]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(storage.os, "write", write_until_full)
    with pytest.raises(DiskFullError) as info:
        storage.atomic_write_bytes(target, b"a much longer new version")
    assert isinstance(info.value, StorageError) and isinstance(info.value, OSError)
    assert info.value.errno == errno.ENOSPC
    assert "disk space" in str(info.value)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path, target.name) == []


def test_real_full_filesystem(tmp_path: Path) -> None:
    """On a real 64 KiB tmpfs (mounted in a private user+mount namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare not available")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace here: {probe.stderr.decode().strip()}")
    mnt = tmp_path / "small"
    mnt.mkdir()
    code = textwrap.dedent(
        f"""
        import errno, os, sys
        from dictation.app import storage
        target = os.path.join({str(mnt)!r}, "profile.bin")
        storage.atomic_write_bytes(target, b"old" * 1000)
        try:
            storage.atomic_write_bytes(target, os.urandom(256 * 1024))
        except storage.DiskFullError as exc:
            assert exc.errno == errno.ENOSPC, exc.errno
            assert open(target, "rb").read() == b"old" * 1000
            assert [n for n in os.listdir({str(mnt)!r}) if n != "profile.bin"] == []
            print("DiskFullError:", exc)
            sys.exit(0)
        sys.exit("no DiskFullError")
        """
    )
    script = f'mount -t tmpfs -o size=64k tmpfs "{mnt}" && exec "{sys.executable}" -c "$0"'
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script, code], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 and "mount" in proc.stderr and "DiskFullError" not in proc.stdout:
        pytest.skip(f"cannot mount tmpfs here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Not enough disk space" in proc.stdout


def test_ensure_private_dir_reports_failures_as_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError):
        storage.ensure_private_dir(blocker / "sub")


def test_make_parents_false_refuses_a_missing_folder(tmp_path: Path) -> None:
    """What keeps a late write from bringing a deleted profile folder back."""
    target = tmp_path / "gone" / "settings.json"
    with pytest.raises(StorageError) as info:
        storage.atomic_write_json(target, {"a": 1}, make_parents=False)
    assert info.value.errno == errno.ENOENT
    assert not (tmp_path / "gone").exists()
    storage.atomic_write_json(target, {"a": 1})  # the default still creates it
    assert json.loads(target.read_text()) == {"a": 1}


def test_write_all_continues_short_writes_and_stops_on_no_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log"
    real_write = os.write
    monkeypatch.setattr(storage.os, "write", lambda fd, data: real_write(fd, bytes(data[:2])))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        storage.write_all(fd, b"all of this line\n", path)
        monkeypatch.setattr(storage.os, "write", lambda fd, data: 0)
        with pytest.raises(StorageError, match="no progress"):
            storage.write_all(fd, b"never written", path)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"all of this line\n"


def test_remove_stale_temp_files_takes_only_old_files_of_our_pattern(tmp_path: Path) -> None:
    old = tmp_path / ".take.json.abc123_z.tmp"
    young = tmp_path / ".take.wav.zzzzzzzz.tmp"
    foreign = tmp_path / "draft.tmp"
    kept_dir = tmp_path / ".dir.abcdefgh.tmp"
    for path in (old, young, foreign):
        path.write_bytes(b"x")
    kept_dir.mkdir()
    for path in (old, foreign, kept_dir):
        os.utime(path, (1, 1))
    assert storage.remove_stale_temp_files(tmp_path) == [old]
    assert young.exists() and foreign.exists() and kept_dir.is_dir()
    assert storage.remove_stale_temp_files(tmp_path / "missing") == []


def test_killed_write_leaves_a_temp_file_of_the_pattern_that_is_cleaned(tmp_path: Path) -> None:
    """The name a real interrupted write leaves is the one the cleaner recognises."""
    target = tmp_path / "take.json"
    code = textwrap.dedent(
        f"""
        import os, signal
        from dictation.app import storage
        storage.os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        storage.atomic_write_bytes({str(target)!r}, b"new")
        """
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == -9
    (leftover,) = tmp_path.iterdir()
    assert storage.is_temp_file_name(leftover.name)
    os.utime(leftover, (1, 1))
    assert storage.remove_stale_temp_files(tmp_path) == [leftover]


def test_data_root_without_create_only_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICTATION_HOME", str(tmp_path / "new"))
    assert storage.data_root(create=False) == tmp_path / "new"
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "shared"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    monkeypatch.setenv("DICTATION_HOME", str(existing))
    storage.data_root(create=False)
    assert _mode(existing) == 0o755  # not "tightened": it may be someone else's
