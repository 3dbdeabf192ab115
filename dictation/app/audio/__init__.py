"""Audio in and out: microphone capture, level meter, quality checks, WAV files.

Everything the rest of the app sees is 16 kHz mono float32 in [-1, 1] (`SAMPLE_RATE`).

- `constants`  SAMPLE_RATE, DBFS_FLOOR: the one definition the whole project imports
- `errors`     AudioError and its kinds (messages meant for the user)
- `resampling` resample (polyphase, plain numpy), to_mono
- `analysis`   Level (meter), Quality and analyze (loudness, clipping, silence)
- `wav`        write_wav (atomic, 0600), read_wav, load_audio
- `devices`    InputDevice, list_input_devices (PortAudio + PulseAudio sources), find_input_device
- `takes`      TakeBuffer: pre-roll ring, takes, lost device (no PortAudio)
- `capture`    MicrophoneStream, record

The public names are re-exported here (`audio.MicrophoneStream`, `audio.read_wav`, ...)
but load on first use, so `from dictation.app.audio.constants import SAMPLE_RATE` stays
as light as it looks (no soundfile, no PortAudio). No Qt and no torch in this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dictation.app.audio.constants import DBFS_FLOOR, SAMPLE_RATE

if TYPE_CHECKING:
    from dictation.app.audio.analysis import Level, Quality, analyze
    from dictation.app.audio.capture import MicrophoneStream, record
    from dictation.app.audio.devices import InputDevice, find_input_device, list_input_devices, rescan_devices
    from dictation.app.audio.errors import (
        AudioDeviceError,
        AudioError,
        AudioFileError,
        DeviceLostError,
        NoInputDeviceError,
        UnsupportedSampleRateError,
    )
    from dictation.app.audio.resampling import resample, to_mono
    from dictation.app.audio.wav import load_audio, read_wav, write_wav

__all__ = [
    "DBFS_FLOOR",
    "SAMPLE_RATE",
    "AudioDeviceError",
    "AudioError",
    "AudioFileError",
    "DeviceLostError",
    "InputDevice",
    "Level",
    "MicrophoneStream",
    "NoInputDeviceError",
    "Quality",
    "UnsupportedSampleRateError",
    "analyze",
    "find_input_device",
    "list_input_devices",
    "load_audio",
    "read_wav",
    "record",
    "resample",
    "rescan_devices",
    "to_mono",
    "write_wav",
]

# Which submodule defines each re-exported name (constants are imported above).
_SUBMODULE_OF = {
    "AudioDeviceError": "errors",
    "AudioError": "errors",
    "AudioFileError": "errors",
    "DeviceLostError": "errors",
    "NoInputDeviceError": "errors",
    "UnsupportedSampleRateError": "errors",
    "resample": "resampling",
    "to_mono": "resampling",
    "Level": "analysis",
    "Quality": "analysis",
    "analyze": "analysis",
    "load_audio": "wav",
    "read_wav": "wav",
    "write_wav": "wav",
    "InputDevice": "devices",
    "find_input_device": "devices",
    "list_input_devices": "devices",
    "rescan_devices": "devices",
    "MicrophoneStream": "capture",
    "record": "capture",
}


def __getattr__(name: str) -> Any:
    """Load a re-exported name from its submodule on first use (PEP 562)."""
    submodule = _SUBMODULE_OF.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{submodule}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
