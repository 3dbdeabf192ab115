"""`dictation listen`, end to end and for real: the command runs as a subprocess under
Xvfb; another X client (the probe window, a separate Qt process) has the focus; the
test holds the key through XTEST while espeak-ng speech plays into the PulseAudio
virtual microphone; the words (WER-checked) arrive in the other application."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dictation.app.text import wer

PHRASE = "Please send the report to the team before Friday."
MAX_WER = 0.25
READY_TIMEOUT_S = 240  # first run: the base model is exported to ONNX (shared cache)


@pytest.fixture
def phrase_wav(virtual_mic, tmp_path: Path) -> Path:
    return virtual_mic.tts(PHRASE, tmp_path / "phrase.wav")


class Listener:
    """`dictation listen ...` as a subprocess, until it has printed `ready`."""

    def __init__(self, cli: list[str], args: list[str], cache: Path, log: Path) -> None:
        env = dict(os.environ, DICTATION_CACHE=str(cache), XDG_SESSION_TYPE="x11")
        self.log = log
        self.process = subprocess.Popen(
            [*cli, "listen", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
            text=True,
        )
        self.stdout_lines: list[str] = []

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                line = self.process.stdout.readline()
                if not line:
                    break
                self.stdout_lines.append(line)
                if line == "ready\n":
                    return
        self.process.kill()
        pytest.fail(
            f"dictation listen never printed ready; stdout {self.stdout_lines}; stderr:\n{self.log.read_text()}"
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def listen(dictation_cli, shared_model_cache, base_model, tmp_path: Path):
    started: list[Listener] = []

    def start(*args: str) -> Listener:
        listener = Listener(dictation_cli, list(args), shared_model_cache, tmp_path / f"listen{len(started)}.log")
        started.append(listener)
        listener.wait_ready()
        return listener

    yield start
    for listener in started:
        listener.stop(signal.SIGKILL)


def _keys(display, kind: str, names: list[str]) -> None:
    from Xlib import XK, X
    from Xlib.ext import xtest

    for name in names:
        keycode = display.keysym_to_keycode(XK.string_to_keysym(name))
        xtest.fake_input(display, X.KeyPress if kind == "press" else X.KeyRelease, keycode)
    display.sync()


def _speak_holding(display, virtual_mic, wav: Path, keys: list[str]) -> None:
    """Hold the key, play the speech into the virtual microphone, let go after it."""
    _keys(display, "press", keys)
    player = virtual_mic.play(wav)
    player.wait(timeout=60)
    time.sleep(0.4)  # the audio's tail through PulseAudio's buffers
    _keys(display, "release", list(reversed(keys)))


def _wait_for_dictation(probe, timeout: float = 60.0) -> str:
    """The probe's text once it holds the phrase well enough (or whatever came by the timeout)."""
    record = probe.wait_for(lambda r: bool(r["text"]) and wer([PHRASE], [r["text"]]) <= MAX_WER, timeout)
    return str(record["text"]) if record is not None else probe.text


def test_hold_to_talk_types_the_words_into_the_focused_application(
    listen, xdisplay, probe, virtual_mic, phrase_wav
) -> None:
    listener = listen("--key", "ctrl+alt+space", "--mode", "hold", "--output", "type")
    _speak_holding(xdisplay, virtual_mic, phrase_wav, ["Control_L", "Alt_L", "space"])
    text = _wait_for_dictation(probe)
    assert wer([PHRASE], [text]) <= MAX_WER, f"got {text!r}; log:\n{listener.log.read_text()}"
    assert listener.stop() == 0  # SIGTERM: a clean stop


def test_paste_mode_pastes_the_words_restores_the_clipboard_and_keeps_history(
    listen, xdisplay, probe, virtual_mic, phrase_wav
) -> None:
    from dictation.app.delivery.x11_clipboard import Item, X11Clipboard
    from dictation.app.profiles import Profile

    Profile.create("alice")  # the only profile: used without --profile
    clipboard = X11Clipboard()
    users = {
        "UTF8_STRING": Item("UTF8_STRING", 8, "the user's own text ✓".encode()),
        "text/html": Item("text/html", 8, b"<i>the user's own</i> text"),
    }
    clipboard.own(users)
    try:
        listener = listen("--key", "super+F8", "--output", "paste", "--paste-key", "ctrl+v")
        _speak_holding(xdisplay, virtual_mic, phrase_wav, ["Super_L", "F8"])
        text = _wait_for_dictation(probe)
        assert wer([PHRASE], [text]) <= MAX_WER, f"got {text!r}; log:\n{listener.log.read_text()}"
        deadline = time.monotonic() + 10
        while clipboard.read() != users and time.monotonic() < deadline:
            time.sleep(0.05)  # given back just after the paste
        assert clipboard.read() == users
        history = Profile.open("alice").history()
        assert [entry["text"] for entry in history] == [text]
        assert listener.stop(signal.SIGINT) == 0  # Ctrl-C: a clean stop too
    finally:
        clipboard.close()


def test_toggle_mode_stops_by_itself_after_silence(listen, xdisplay, probe, virtual_mic, phrase_wav) -> None:
    listener = listen("--key", "Pause", "--mode", "toggle", "--silence", "1.0")
    _keys(xdisplay, "press", ["Pause"])  # one tap starts ...
    _keys(xdisplay, "release", ["Pause"])
    virtual_mic.play(phrase_wav).wait(timeout=60)
    # ... and no second tap: the silence after the phrase ends the take.
    text = _wait_for_dictation(probe)
    assert wer([PHRASE], [text]) <= MAX_WER, f"got {text!r}; log:\n{listener.log.read_text()}"
    listener.stop()


def test_toggle_mode_stops_on_the_second_press_and_types_after_its_release(
    listen, xdisplay, probe, virtual_mic, phrase_wav
) -> None:
    listener = listen("--key", "F7", "--mode", "toggle", "--silence", "30")
    _keys(xdisplay, "press", ["F7"])
    _keys(xdisplay, "release", ["F7"])
    virtual_mic.play(phrase_wav).wait(timeout=60)
    time.sleep(0.4)
    _keys(xdisplay, "press", ["F7"])
    # Held while the take is transcribed: its grab would swallow typed keys (no
    # modifier here that typing waits for anyway), so the text must wait for the release.
    time.sleep(2.0)
    assert probe.text == ""
    _keys(xdisplay, "release", ["F7"])
    text = _wait_for_dictation(probe)
    assert wer([PHRASE], [text]) <= MAX_WER, f"got {text!r}; log:\n{listener.log.read_text()}"
    listener.stop()


def test_the_loop_reports_its_states_and_results_in_process(xdisplay, virtual_mic, phrase_wav, base_model) -> None:
    """The API a tray icon or overlay uses: ListenLoop with on_state and on_result,
    here in clipboard mode (the text only goes to the clipboard)."""
    import threading

    from dictation.app.delivery.x11_clipboard import X11Clipboard
    from dictation.app.listen import ListenConfig, ListenLoop

    states: list[str] = []
    results = []
    config = ListenConfig(key="ctrl+shift+F6", output="clipboard", backend="x11")
    loop = ListenLoop(config, base_model, on_result=results.append, on_state=states.append)
    loop.start()
    runner = threading.Thread(target=loop.run)
    runner.start()
    clipboard = X11Clipboard()
    try:
        _speak_holding(xdisplay, virtual_mic, phrase_wav, ["Control_L", "Shift_L", "F6"])
        deadline = time.monotonic() + 60
        while states[-1:] != ["idle"] and time.monotonic() < deadline:
            time.sleep(0.05)
        [result] = results
        assert result.how == "clipboard" and result.ok
        assert wer([PHRASE], [result.text]) <= MAX_WER, result.text
        assert clipboard.read_text() == result.text
        assert states == ["recording", "transcribing", "idle"]
    finally:
        loop.stop()
        runner.join(timeout=10)
        loop.close()
        clipboard.close()
    assert not runner.is_alive()


def test_settings_then_flags_decide_the_configuration() -> None:
    from dictation.app.listen import ListenConfig

    settings = {
        "commands": True,
        "beam": 1,
        "mic": "USB",
        "listen_key": "super+h",
        "listen_mode": "toggle",
        "listen_output": "paste",
        "paste_key": "ctrl+shift+v",
        "listen_silence_s": 3,
    }
    config = ListenConfig.from_settings(settings, key=None, mode="hold", device="Headset", silence_s=None)
    assert (config.key, config.mode, config.output, config.paste_key) == ("super+h", "hold", "paste", "ctrl+shift+v")
    assert (config.device, config.silence_s, config.commands, config.beam) == ("Headset", 3.0, True, 1)
    assert ListenConfig.from_settings({}) == ListenConfig()
    with pytest.raises(ValueError, match="mode must be one of hold, toggle"):
        ListenConfig.from_settings({"listen_mode": "sometimes"})


def test_silence_is_counted_from_the_last_voiced_block() -> None:
    from dictation.app.listen import SilenceWatch

    watch = SilenceWatch(voice_dbfs=-45.0)
    watch.reset(now=10.0)
    watch.level(-120.0, now=10.5)  # digital silence
    watch.level(-20.0, now=11.0)  # speech
    watch.level(-60.0, now=12.0)  # room noise
    assert watch.silent_for(now=13.0) == 2.0


def test_bad_key_is_a_usage_error_before_anything_loads(dictation_cli) -> None:
    result = subprocess.run([*dictation_cli, "listen", "--key", "ctrl+nosuchkey"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown key name 'nosuchkey'" in result.stderr
    assert "ready" not in result.stdout


def test_several_profiles_need_profile(dictation_cli) -> None:
    from dictation.app.profiles import Profile

    Profile.create("one")
    Profile.create("two")
    result = subprocess.run([*dictation_cli, "listen"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "several profiles (one, two): choose one with --profile" in result.stderr


def test_help_documents_the_contract(dictation_cli) -> None:
    result = subprocess.run([*dictation_cli, "listen", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for flag in ("--profile", "--key", "--mode", "--output", "--device", "--paste-key"):
        assert flag in result.stdout
    for word in ("hold", "toggle", "type", "paste", "clipboard", '"ready"', "SIGTERM"):
        assert word in result.stdout
