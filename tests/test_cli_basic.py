"""The installed `dictation` console script: --version, devices, record."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dictation import __version__
from dictation.app import audio

Run = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_cli(dictation_cli: list[str]) -> Run:
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(dictation_cli + list(args), capture_output=True, text=True, timeout=60, env=env)

    return run


def test_version(run_cli: Run) -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"dictation {__version__}"


def test_devices_lists_the_virtual_mic_as_default(run_cli: Run, virtual_mic) -> None:
    proc = run_cli("devices")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    vmic_lines = [line for line in lines if virtual_mic.source in line]
    assert len(vmic_lines) == 1 and vmic_lines[0].lstrip().startswith("*"), proc.stdout


def test_record_writes_16k_mono_wav_from_the_mic(run_cli: Run, virtual_mic, tmp_path: Path) -> None:
    # A 440 Hz tone playing into the virtual mic during the whole recording.
    tone_wav = audio.write_wav(tmp_path / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * np.arange(10 * 16000) / 16000))
    player = virtual_mic.play(tone_wav)
    out = tmp_path / "rec" / "out.wav"
    proc = run_cli("record", "--seconds", "1", "--device", "vmic", str(out))
    player.terminate()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = sf.info(str(out))
    assert (info.samplerate, info.channels) == (16000, 1)
    assert 1.0 <= info.duration <= 1.6  # 1 s plus at most the 0.5 s pre-roll
    assert os.stat(out).st_mode & 0o777 == 0o600
    recorded, _ = audio.read_wav(out)
    q = audio.analyze(recorded)
    assert not q.is_silent and q.rms_dbfs > -20, q
    assert [p.name for p in out.parent.iterdir()] == ["out.wav"]  # no temp file left


def test_record_rejects_unknown_device(run_cli: Run, virtual_mic, tmp_path: Path) -> None:
    out = tmp_path / "never.wav"
    proc = run_cli("record", "--seconds", "1", "--device", "no-such-mic", str(out))
    assert proc.returncode == 1
    assert "No input device matches 'no-such-mic'" in proc.stderr
    assert not out.exists()


def test_devices_without_sound_server_says_so(run_cli: Run, tmp_path: Path) -> None:
    if Path("/proc/asound/cards").exists() and "no soundcards" not in Path("/proc/asound/cards").read_text():
        pytest.skip("this machine has real sound cards that stay visible")
    env = dict(os.environ, PULSE_SERVER="unix:/nonexistent", XDG_RUNTIME_DIR=str(tmp_path))
    proc = run_cli("devices", env=env)
    assert proc.returncode == 1
    assert "No audio input device found" in proc.stderr
    proc = run_cli("record", "--seconds", "1", str(tmp_path / "x.wav"), env=env)
    assert proc.returncode == 1 and "sound server" in proc.stderr
    assert not (tmp_path / "x.wav").exists()


def test_every_command_parses_to_its_own_function() -> None:
    """A command's option must not clobber the subcommand's dest: main() starts the GUI for
    a parse without func, so each command's minimal parse must carry a func."""
    import argparse

    from dictation.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command_parser in sub.choices.items():
        for action in command_parser._actions:
            assert action.dest != "command", f"'{name}' has an option stored as 'command'"
    args = parser.parse_args(["learning-curve", "--from", "x", "--out", "y", "--command", "z"])
    assert args.command == "learning-curve" and args.measured_with == "z" and callable(args.func)
