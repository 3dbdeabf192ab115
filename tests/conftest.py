"""Fixtures shared by the whole suite.

- Every test gets its own empty DICTATION_HOME (so no test touches the user's data);
  `dictation_home` hands its path to tests that want it.
- `virtual_mic`: the PulseAudio null sink `vmic` that ./run-tests provides. What is
  played into it comes out of the default input (`vmic.monitor`). Skips when absent,
  unless DICTATION_REQUIRE_AUDIO=1 (CI), where its absence is a failure.
- Qt runs offscreen (set before any QApplication exists).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

VMIC_SINK = "vmic"
VMIC_SOURCE = "vmic.monitor"


@pytest.fixture(autouse=True)
def _private_dictation_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("dictation-home")
    monkeypatch.setenv("DICTATION_HOME", str(home))
    monkeypatch.delenv("DICTATION_CACHE", raising=False)
    return home


@pytest.fixture
def dictation_home(_private_dictation_home: Path) -> Path:
    """A fresh, empty directory set as DICTATION_HOME for this test."""
    return _private_dictation_home


@pytest.fixture(scope="session")
def dictation_cli() -> list[str]:
    """Command line of the installed `dictation` console script next to this interpreter."""
    script = Path(sys.executable).with_name("dictation")
    if not script.exists():
        pytest.fail(
            f"{script} is missing: the project is not installed in this venv "
            "(./run-tests installs it with pip install -e '.[dev]')"
        )
    return [str(script)]


class VirtualMic:
    """Plays audio into the `vmic` sink, which the app hears as its microphone."""

    sink = VMIC_SINK
    source = VMIC_SOURCE

    def __init__(self) -> None:
        self._players: list[subprocess.Popen[bytes]] = []

    def play(self, wav_path: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
        """Start playing `wav_path` into the virtual mic; returns at once."""
        proc = subprocess.Popen(
            ["paplay", f"--device={self.sink}", str(wav_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._players.append(proc)
        return proc

    @staticmethod
    def tts(text: str, path: str | os.PathLike[str], voice: str = "en-us") -> Path:
        """Speak `text` with espeak-ng into a 16 kHz mono WAV at `path`."""
        from dictation.app.audio import load_audio, write_wav

        path = Path(path)
        raw = path.with_suffix(".espeak.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, timeout=60)
        write_wav(path, load_audio(raw))  # 16 kHz, so PulseAudio plays it bit-exact into vmic
        raw.unlink()
        return path

    def stop_all(self) -> None:
        for proc in self._players:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._players.clear()


def _virtual_mic_problem() -> str | None:
    """Why the virtual microphone cannot be used here, or None when it can."""
    for tool in ("pactl", "paplay", "espeak-ng"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (see README: ./run-tests installs or names the packages)"
    try:
        sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "pactl timed out: PulseAudio is not answering"
    if sinks.returncode != 0:
        return f"no PulseAudio server reachable ({sinks.stderr.strip()}); run the tests with ./run-tests"
    if VMIC_SINK not in [line.split("\t")[1] for line in sinks.stdout.splitlines() if "\t" in line]:
        return "the PulseAudio server has no 'vmic' sink; run the tests with ./run-tests"
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        return f"PortAudio is not usable: {exc} (install libportaudio2)"
    return None


@pytest.fixture(scope="session")
def _virtual_mic_available() -> None:
    problem = _virtual_mic_problem()
    if problem is None:
        return
    if os.environ.get("DICTATION_REQUIRE_AUDIO") == "1":
        pytest.fail(f"virtual microphone required (DICTATION_REQUIRE_AUDIO=1) but {problem}")
    pytest.skip(f"virtual microphone unavailable: {problem}")


@pytest.fixture
def virtual_mic(_virtual_mic_available: None) -> VirtualMic:
    mic = VirtualMic()
    yield mic
    mic.stop_all()


@pytest.fixture(scope="session")
def shared_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the whole run (same path the GUI and enrollment suites use),
    so the base ONNX model is exported once per test session."""
    cache = tmp_path_factory.getbasetemp() / "gui-model-cache"
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def base_model(shared_model_cache: Path) -> Path:
    """Directory of the real bundled model exported to ONNX (built on first use)."""
    from dictation.app.base_model import base_model_dir

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DICTATION_CACHE", str(shared_model_cache))
        return base_model_dir()


def tts_wav(text: str, path: Path, engine: str = "espeak", voice: str | None = None) -> Path:
    """Speak `text` into a WAV with espeak-ng or flite (Debian packages CI installs)."""
    if engine == "espeak":
        cmd = ["espeak-ng", "-v", voice or "en-us", "-w", str(path), text]
    else:
        cmd = ["flite", "-voice", voice or "slt", "-t", text, "-o", str(path)]
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} is not installed")
    subprocess.run(cmd, check=True, capture_output=True)
    return path


# -- X11: the test display as a python-xlib client, and a text field in another process


@pytest.fixture(scope="session")
def _x_server_kept_up():
    """One connection held to the end of the run: an X server started without -noreset
    resets itself when its last client leaves, and a connection made during the reset fails."""
    import time

    from dictation.app.hotkeys.xutil import X11Unavailable, open_display

    for _ in range(20):  # the server may be resetting after an earlier test's last client
        try:
            keeper = open_display()
            break
        except (X11Unavailable, ConnectionError, OSError):
            time.sleep(0.1)
    else:
        yield
        return
    yield
    keeper.close()


@pytest.fixture
def xdisplay(_x_server_kept_up):
    """A python-xlib connection to the test X server (Xvfb from ./run-tests)."""
    from dictation.app.hotkeys.xutil import X11Unavailable, open_display

    try:
        display = open_display()
    except X11Unavailable as exc:
        pytest.skip(f"no X display: {exc}")
    _release_keys_held(display)
    yield display
    _release_keys_held(display)
    display.close()


def _release_keys_held(display) -> None:
    """Release, through XTEST, every key the server has down: a key an earlier test left
    held (the server keeps its state for the whole run) would add a modifier to every
    later key combination, and their grabs would never match."""
    from Xlib import X
    from Xlib.ext import xtest

    keymap = display.query_keymap()
    for byte_index, byte in enumerate(keymap):
        for bit in range(8):
            if byte & (1 << bit):
                xtest.fake_input(display, X.KeyRelease, byte_index * 8 + bit)
    display.sync()


@pytest.fixture
def probe(xdisplay, tmp_path: Path):
    """ "The other application": a Qt text field in its own process (delivery.probe)."""
    from dictation.app.delivery.probe import Probe

    window = Probe(tmp_path / "probe.jsonl")
    yield window
    window.close()


# -- the main window under pytest-qt


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base_model: Path) -> Path:
    """A private data root; the base model is built first (once per session, untimed).
    Test modules with other needs define their own `home`, which `make_window` then uses."""
    monkeypatch.setenv("DICTATION_CACHE", str(base_model.parent.parent))
    monkeypatch.setenv("DICTATION_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def make_window(qtbot, home):
    """make(**kwargs) -> a shown MainWindow in `home`; each is closed after the test once
    its transcription thread has finished."""
    from dictation.app.gui.main_window import MainWindow

    windows = []

    def make(**kwargs) -> MainWindow:
        window = MainWindow(**kwargs)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        window.transcription.wait(60_000)


# Phrases the tests' synthetic speakers read (corpora for training, evaluation and voices).
READ_SENTENCES = [
    "Open the window before the meeting starts.",
    "My sister lives in Paris with two cats.",
    "The train leaves at seven in the morning.",
    "Could you send me the invoice today?",
    "We planted tomatoes and beans in the garden.",
    "The printer on the third floor is broken.",
    "Please remind Tom about the dentist on Monday.",
    "It rained all night and the river rose.",
    "She bought a new laptop for her studies.",
    "Turn left at the bakery and walk straight on.",
    "The museum opens at ten on Sundays.",
    "I forgot my umbrella at the office.",
    "Our flight was delayed by forty minutes.",
    "He plays the guitar in a small band.",
    "The soup needs a little more salt.",
    "Let us review the budget next week.",
]
