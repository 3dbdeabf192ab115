"""The audio errors; each message is meant for the user."""

from __future__ import annotations

import numpy as np

from dictation.app.audio.constants import SAMPLE_RATE


class AudioError(Exception):
    """Base class of the audio errors; the message is meant for the user."""


class NoInputDeviceError(AudioError):
    """No usable input device: none present, the sound server is unreachable,
    PortAudio is missing, or the named device does not exist."""


class AudioDeviceError(AudioError):
    """The device exists but could not be used (busy, ambiguous name, no data)."""


class UnsupportedSampleRateError(AudioError):
    """The device accepts neither 16 kHz nor its own default rate (or the rate asked for)."""


class DeviceLostError(AudioError):
    """The device went away mid-stream. `captured` holds the take so far (16 kHz mono)."""

    def __init__(self, message: str, captured: np.ndarray | None = None):
        super().__init__(message)
        self.captured = captured if captured is not None else np.zeros(0, dtype=np.float32)
        self.sample_rate = SAMPLE_RATE


class AudioFileError(AudioError):
    """An audio file could not be read (missing, not audio, corrupt)."""
