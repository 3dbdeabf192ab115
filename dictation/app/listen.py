"""Dictation into any application, without the main window: key + microphone +
transcription + text where the cursor is.

`ListenLoop(ListenConfig(...)).run()`: hold the key and speak (hold mode), or press it
to start and again to stop (toggle mode, which also stops after `silence_s` of
silence). Each take is transcribed with the profile's model (or the base model), the
spoken commands are applied when the profile has them on (as in the main window),
and the text is delivered (typed, pasted or put on the clipboard) and kept in the
profile's history. What could not be delivered goes to the clipboard, with a notice.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.commands import apply_commands
from dictation.app.delivery import DEFAULT_OUTPUT, DEFAULT_PASTE_KEY, Delivery, DeliveryResult
from dictation.app.hotkeys import HotkeyBackend, choose_backend, parse_key

log = logging.getLogger(__name__)

MODES = ("hold", "toggle")
DEFAULT_KEY = "ctrl+alt+space"
DEFAULT_MODE = "hold"
DEFAULT_SILENCE_S = 2.0
VOICE_DBFS = -45.0  # a block louder than this counts as speech for the toggle auto-stop
MIN_TAKE_S = 0.25  # shorter takes (a tap of the key) are dropped, not transcribed
PRE_ROLL_S = 0.5
KEY_UP_WAIT_S = 5.0
JOIN_WITHIN_S = 60.0  # a dictation soon after another into the same window gets a space first
# Profile settings the listener reads (the GUI may write them); command-line flags win.
SETTING_KEYS = {
    "key": "listen_key",
    "mode": "listen_mode",
    "output": "listen_output",
    "paste_key": "paste_key",
    "silence_s": "listen_silence_s",
}


@dataclass
class ListenConfig:
    key: str = DEFAULT_KEY
    mode: str = DEFAULT_MODE
    output: str = DEFAULT_OUTPUT
    paste_key: str = DEFAULT_PASTE_KEY
    device: str | None = None
    silence_s: float = DEFAULT_SILENCE_S
    commands: bool = False
    beam: int | None = None
    backend: str | None = None  # key backend by name; None: the session's best

    @classmethod
    def from_settings(cls, settings: dict, **overrides: Any) -> ListenConfig:
        """Defaults, then the profile's settings, then the given (non-None) overrides."""
        config = cls(commands=bool(settings.get("commands", False)), beam=settings.get("beam"))
        config.device = settings.get("mic") or None
        for field_name, setting in SETTING_KEYS.items():
            if settings.get(setting) not in (None, ""):
                setattr(config, field_name, settings[setting])
        for field_name, value in overrides.items():
            if value is not None:
                setattr(config, field_name, value)
        if config.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {config.mode!r}")
        config.silence_s = float(config.silence_s)
        return config


class SilenceWatch:
    """How long the microphone has been quiet, from its level callbacks (any thread)."""

    def __init__(self, voice_dbfs: float = VOICE_DBFS) -> None:
        self.voice_dbfs = voice_dbfs
        self._last_voice = time.monotonic()

    def reset(self, now: float | None = None) -> None:
        self._last_voice = time.monotonic() if now is None else now

    def level(self, rms_dbfs: float, now: float | None = None) -> None:
        if rms_dbfs > self.voice_dbfs:
            self._last_voice = time.monotonic() if now is None else now

    def silent_for(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self._last_voice


class ListenLoop:
    """Owns the key backend, the microphone, the transcriber and the delivery."""

    def __init__(
        self,
        config: ListenConfig,
        model_dir: Path,
        profile: Any = None,
        on_result: Callable[[DeliveryResult], None] | None = None,
        on_state: Callable[[str], None] | None = None,
        transcriber: Any = None,
    ) -> None:
        self.config = config
        self.model_dir = model_dir
        self.profile = profile
        self.on_result = on_result
        self.on_state = on_state  # "recording", "transcribing", "idle" (for a tray icon or overlay)
        self.combo = parse_key(config.key)  # KeySpecError before anything is opened
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()  # put() is safe in signal handlers
        self._silence = SilenceWatch()
        self._stopping = threading.Event()
        # While the key is held its grab takes every key event, typed ones included.
        self._key_up = threading.Event()
        self._key_up.set()
        self.hotkey: HotkeyBackend | None = None
        self.mic: Any = None
        self.transcriber: Any = transcriber  # a loaded one (model_choice.load_model), else loaded at start()
        self.delivery: Delivery | None = None
        self._last: tuple[float, int | None, str] | None = None  # time, window, text of the last delivery

    # -- set-up

    def start(self) -> None:
        """Load the model, open the microphone and the output, grab the key."""
        from dictation.app import audio
        from dictation.app.runtime import Transcriber

        if self.transcriber is None:
            kwargs = {} if self.config.beam is None else {"beam": int(self.config.beam)}
            self.transcriber = Transcriber(self.model_dir, **kwargs)
        self.delivery = Delivery(self.config.output, self.config.paste_key)
        self.mic = audio.MicrophoneStream(
            self.config.device, pre_roll=PRE_ROLL_S, on_level=lambda level: self._silence.level(level.rms_dbfs)
        )
        self.mic.start()
        self.hotkey = choose_backend(self.combo, self.config.backend)
        if self.config.mode == "hold" and not self.hotkey.reports_release:
            raise ValueError(f"the {self.hotkey.name} key backend does not report key releases: use --mode toggle")
        self.hotkey.start(self._pressed, self._released)
        log.info(
            "listening: key %s (%s, %s mode), output %s, microphone %s, model %s",
            self.combo,
            self.hotkey.name,
            self.config.mode,
            self.config.output,
            self.mic.device.label if self.mic.device else "?",
            self.model_dir,
        )

    def _pressed(self) -> None:  # on the key backend's thread
        self._key_up.clear()
        self._events.put("press")

    def _released(self) -> None:
        self._key_up.set()
        self._events.put("release")

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler)."""
        self._stopping.set()
        self._events.put("stop")

    def close(self) -> None:
        closers = [
            self.hotkey.stop if self.hotkey is not None else None,
            self.mic.close if self.mic is not None else None,
            self.delivery.close if self.delivery is not None else None,
        ]
        for close in closers:
            if close is None:
                continue
            try:
                close()
            except Exception:  # closing one part must not keep the others open
                log.exception("closing the listener")

    # -- the loop

    def run(self) -> None:
        recording = False
        while not self._stopping.is_set():
            polling = recording and self.config.mode == "toggle"
            try:
                event = self._events.get(timeout=0.05 if polling else None)
            except queue.Empty:
                event = None
            if event == "stop":
                break
            if event == "press" and not recording:
                recording = self._begin()
            elif recording and (
                (event == "release" and self.config.mode == "hold")
                or (event == "press" and self.config.mode == "toggle")
            ):
                recording = False
                self._finish()
            elif polling and self._silence.silent_for() >= self.config.silence_s:
                log.info("stopping after %.1f s of silence", self.config.silence_s)
                recording = False
                self._finish()
        if recording:
            self.mic.cancel_take()

    def _begin(self) -> bool:
        try:
            self.mic.start_take()
        except Exception as exc:  # a lost microphone: say so, keep listening
            log.error("cannot record: %s", exc)
            return False
        self._silence.reset()
        self._state("recording")
        return True

    def _state(self, state: str) -> None:
        log.debug("state: %s", state)
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception:  # a broken indicator must not stop dictation
                log.exception("state callback failed")

    def _finish(self) -> None:
        self._state("transcribing")
        try:
            self._transcribe_and_deliver()
        finally:
            self._state("idle")

    def _transcribe_and_deliver(self) -> None:
        try:
            audio = self.mic.stop_take()
        except Exception as exc:
            captured = getattr(exc, "captured", None)
            log.error("%s", exc)
            if captured is None:
                return
            audio = captured
        if audio.size - self.mic.take_pre_roll_samples < MIN_TAKE_S * SAMPLE_RATE:
            log.info("take too short (%.2f s): ignored", audio.size / SAMPLE_RATE)
            return
        started = time.monotonic()
        hypothesis = self.transcriber.transcribe(audio).text.strip()
        text = apply_commands(hypothesis) if self.config.commands else hypothesis
        transcribed = time.monotonic()
        if not text.strip():
            log.info("nothing was recognised in %.1f s of audio", audio.size / SAMPLE_RATE)
            return
        result = self.deliver(text)
        log.info(
            "take of %.1f s: transcribed in %.0f ms, %s in %.0f ms",
            audio.size / SAMPLE_RATE,
            (transcribed - started) * 1000,
            result.how,
            (time.monotonic() - transcribed) * 1000,
        )

    def deliver(self, text: str) -> DeliveryResult:
        """Deliver one dictated text and keep it in the history."""
        assert self.delivery is not None
        if not self._key_up.wait(timeout=KEY_UP_WAIT_S):  # toggle mode: stopped by a press
            log.warning("the key is still held after %.0f s; delivering anyway", KEY_UP_WAIT_S)
        window = getattr(self.delivery.backend, "focused_window", lambda: None)()
        prefix = ""
        if self._last is not None:
            at, last_window, last_text = self._last
            if time.monotonic() - at < JOIN_WITHIN_S and last_window == window and not last_text[-1:].isspace():
                prefix = " "  # sentence after sentence into the same field
        result = self.delivery.deliver(prefix + text)
        self._last = (time.monotonic(), window, text) if result.ok else None
        if result.notice:
            log.warning("%s", result.notice)
        if self.profile is not None:
            try:
                self.profile.append_history(text)
            except OSError as exc:
                log.error("could not save to the history: %s", exc)
        if self.on_result is not None:
            self.on_result(result)
        return result


def print_ready() -> None:
    """The line external checks wait for: key grabbed, model loaded, microphone open."""
    print("ready", flush=True)
    sys.stdout.flush()
