"""The engine parts the window uses, gathered in one object so tests can inject them.

Defaults are the real modules (audio capture, onnxruntime transcriber, adaptation job),
all imported lazily and none of them importing torch into this process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dictation.app.gui.adapt_runner import JobFactory, default_job_factory
from dictation.app.gui.recorder import AudioSource


class NoMicrophoneError(Exception):
    """No usable input device (or the chosen one could not be opened)."""


def _list_microphones() -> list[str]:
    from dictation.app import audio

    try:
        names = [device.name for device in audio.list_input_devices()]
    except Exception as exc:  # PortAudio missing or broken: treated as "no microphone"
        raise NoMicrophoneError(str(exc)) from exc
    return list(dict.fromkeys(names))


class MicrophoneSource:
    """`AudioSource` over `dictation.app.audio.MicrophoneStream` (always on, with pre-roll)."""

    sample_rate = 16000

    def __init__(self, name: str | None, pre_roll: float = 0.5) -> None:
        from dictation.app import audio

        self.stream = audio.MicrophoneStream(name or None, pre_roll=pre_roll)
        self.stream.start()
        self.name = self.stream.device.name if self.stream.device else (name or "default")

    def start_take(self) -> None:
        self.stream.start_take()

    def stop_take(self) -> np.ndarray:
        return self.stream.stop_take()

    def peek_take(self) -> np.ndarray:
        """The running take so far (for the live preview)."""
        return self.stream.peek_take()

    def peek_take_blocks(self, first: int = 0) -> tuple[list[np.ndarray], int]:
        """The running take's new blocks at the device's rate (for reading it as it grows)."""
        return self.stream.peek_take_blocks(first)

    def check(self) -> None:
        """DeviceLostError if the device went away or stalled (call between takes only)."""
        self.stream.check()

    def level(self) -> float:
        # A dB scale (-60..0 dBFS -> 0..1) shows quiet speech, unlike a linear one.
        return min(1.0, max(0.0, (self.stream.level.rms_dbfs + 60.0) / 60.0))

    def close(self) -> None:
        self.stream.close()


def _open_microphone(name: str | None) -> AudioSource:
    try:
        return MicrophoneSource(name)
    except Exception as exc:  # AudioError and PortAudio failures alike: say why, carry on
        raise NoMicrophoneError(str(exc)) from exc


def _make_transcriber(model_dir: Path) -> Any:
    from dictation.app.runtime import Transcriber

    return Transcriber(model_dir)


def _base_model_dir() -> Path:
    from dictation.app.base_model import base_model_dir

    return base_model_dir()


@dataclass
class Services:
    """Factories for everything outside the GUI. Every field may be replaced in tests."""

    list_microphones: Callable[[], list[str]] = _list_microphones
    open_microphone: Callable[[str | None], AudioSource] = _open_microphone
    make_transcriber: Callable[[Path], Any] = _make_transcriber
    base_model_dir: Callable[[], Path] = _base_model_dir
    make_job: JobFactory = default_job_factory
    adapt_steps: int | None = None  # None: the adaptation module's default
    extra: dict[str, Any] = field(default_factory=dict)
