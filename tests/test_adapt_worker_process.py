"""The adaptation worker as a process of a real `dictation adapt` (issue 25: #11, #15):
it dies with the command that started it and never installs for one that is gone, and
the command's console shows progress and the result, not the libraries' warnings.

The parent-death tests point the real worker at small adapt functions at the bottom of
this file (the documented DICTATION_TEST_ADAPT_TARGET hook), so everything but the
adaptation step is the real one; the warnings test runs a real adaptation.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dictation.adapt import worker
from dictation.app.profiles import Profile

THIS_FILE = Path(__file__).resolve()
REPO = THIS_FILE.parent.parent
START_TIMEOUT = 120  # spawn + imports on a loaded 2-core machine
GONE_TIMEOUT = 20  # the worker is expected to go at once; this only bounds a failing test


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DICTATION_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def tone_profile(name: str) -> Profile:
    profile = Profile.create(name)
    t = np.arange(6400) / 16000
    for i in range(4):
        audio = (0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t)).astype(np.float32)
        profile.add_take(f"p{i}", f"phrase number {i}", audio, {"ok": True})
    for marker in ("v1", "v2"):  # a model in use and the last good one
        stage = profile.new_stage_dir() / "model"
        stage.mkdir()
        (stage / "encoder.onnx").write_text(marker)
        profile.install_model(stage, {"after_wer": 0.5})
    return profile


def snapshot(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.relative_to(path).parts[0].startswith(".stage-")
    }


def start_adapt(name: str, target: str | None = None, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if target:
        env[worker.ADAPT_TARGET_ENV] = f"{THIS_FILE}:{target}"
    return subprocess.Popen(
        [sys.executable, "-m", "dictation", "adapt", "--profile", name, "--device", "cpu", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def wait_for_progress(cli: subprocess.Popen) -> None:
    assert cli.stdout is not None
    while True:
        line = cli.stdout.readline()
        assert line, f"dictation adapt ended early: {cli.wait()} {cli.stderr.read() if cli.stderr else ''}"
        if line.startswith("step "):
            return


def worker_of(cli_pid: int) -> int:
    """The spawned worker among the command's children (the other is multiprocessing's
    resource tracker)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == cli_pid and b"spawn_main" in cmdline:
            return int(entry.name)
    raise AssertionError(f"no worker process under {cli_pid}")


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever adopted it)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def kill_and_wait_for_worker(cli: subprocess.Popen) -> int:
    pid = worker_of(cli.pid)
    assert running(pid)
    cli.send_signal(signal.SIGKILL)
    cli.wait(10)
    deadline = time.monotonic() + GONE_TIMEOUT
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if running(pid):
        os.kill(pid, signal.SIGKILL)  # leave no orphan behind a failing test
        raise AssertionError("the worker outlived the killed dictation adapt")
    return pid


pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


def test_worker_dies_with_a_killed_dictation_adapt(home):
    """Killed in a phase that checks nothing (here a long sleep; in real runs the export):
    the kernel's parent-death signal ends the worker."""
    profile = tone_profile("anna")
    before = snapshot(profile.path)
    cli = start_adapt("anna", "blocking_adapt", "--steps", "100000")
    try:
        wait_for_progress(cli)
        kill_and_wait_for_worker(cli)
    finally:
        cli.kill()
    assert snapshot(profile.path) == before
    assert (Profile.open("anna").model_dir() / "encoder.onnx").read_text() == "v2"


def test_worker_that_missed_the_signal_stops_without_installing(home):
    """Where the parent-death signal does not come (not Linux, or the parent died before
    the worker asked for it; here the worker ignores it), the worker's own check of its
    parent stops it at the next step, and it installs nothing."""
    profile = tone_profile("anna")
    before = snapshot(profile.path)
    cli = start_adapt("anna", "adapt_ignoring_sigterm", "--steps", "100000")
    try:
        wait_for_progress(cli)
        pid = kill_and_wait_for_worker(cli)
    finally:
        cli.kill()
    assert snapshot(profile.path) == before
    log = (home / "logs" / "dictation.log").read_text()
    assert any(
        f" {pid} " in line and "stopped: the app that started it is gone" in line for line in log.splitlines()
    ), log


@pytest.mark.slow
def test_dictation_adapt_shows_no_library_warnings(home, monkeypatch):
    """A real adaptation (export, quantization, check): the console has progress and the
    result; the libraries' warnings are in the log file only."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    _use_the_machines_model_cache(monkeypatch)
    folder = home.parent / "speech"
    folder.mkdir()
    phrases = [
        "the quick brown fox jumps over the lazy dog",
        "please send the report before noon",
        "my favourite colour is green",
        "we will meet at the station tomorrow",
    ]
    for i, text in enumerate(phrases):
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(folder / f"p{i}.wav"), text], check=True)
        (folder / f"p{i}.txt").write_text(text)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = [sys.executable, "-m", "dictation"]
    subprocess.run([*run, "profile", "create", "anna"], check=True, env=env, cwd=REPO, capture_output=True)
    subprocess.run([*run, "enroll", "--profile", "anna", "--from-dir", str(folder)], check=True, env=env, cwd=REPO)
    cli = start_adapt("anna", None, "--steps", "2")
    out, err = cli.communicate(timeout=900)
    assert not [line for line in err.splitlines() if re.search("warn", line, re.IGNORECASE)], err
    lines = out.splitlines()
    assert "step 2/2" in out
    if cli.returncode == 0:
        assert lines[-1].startswith("installed: "), out
    else:
        assert cli.returncode == 1 and lines[-1].startswith("kept your current model (the base model): "), out + err
        assert lines[-1].endswith(f"the new model is kept aside ({Profile.open('anna').path / 'model.candidate'})")


def _use_the_machines_model_cache(monkeypatch) -> None:
    """The base ONNX model is built once per machine, not once per test."""
    from dictation.app import storage

    home = os.environ.pop("DICTATION_HOME")
    try:
        cache = os.environ.get("DICTATION_CACHE") or str(storage.cache_root())
    finally:
        os.environ["DICTATION_HOME"] = home
    monkeypatch.setenv("DICTATION_CACHE", cache)


# -- adapt functions run inside the worker process (see the module docstring) ------------


def slow_adapt(takes, steps, device, progress, should_cancel):
    """Runs until told to stop, like the real inner loop checking between steps."""
    for step in range(1, steps + 1):
        if should_cancel():
            raise RuntimeError("stopped")
        time.sleep(0.02)
        progress(step, steps, 1.0 / step)
    raise AssertionError("never stopped")


def blocking_adapt(takes, steps, device, progress, should_cancel):
    """One step, then a long phase without any check (like an export)."""
    progress(1, steps, 1.0)
    time.sleep(600)
    raise AssertionError("not stopped")


def adapt_ignoring_sigterm(takes, steps, device, progress, should_cancel):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return slow_adapt(takes, steps, device, progress, should_cancel)
