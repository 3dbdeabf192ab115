"""Input devices: PortAudio's, and the PulseAudio sources behind its `pulse` device.

PortAudio (through sounddevice) is imported lazily, so the rest of the package works
without a sound stack. On Linux, PortAudio 19.6 reaches PulseAudio/PipeWire through
ALSA's `pulse` device only; the PulseAudio sources behind it are listed with `pactl`
and chosen with PULSE_SOURCE, so users can pick a real microphone by name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dictation.app.audio.errors import AudioDeviceError, NoInputDeviceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputDevice:
    """An input the user can pick.

    backend "portaudio": a PortAudio device (`index`). backend "pulse": a PulseAudio
    source (`name`), reached through PortAudio's ALSA `pulse` device (`index`).
    """

    name: str
    description: str
    backend: str
    index: int
    channels: int
    default_samplerate: float
    is_default: bool

    @property
    def label(self) -> str:
        return self.name if self.description in ("", self.name) else f"{self.name} ({self.description})"


class _PortAudioState:
    """Process-wide PortAudio state shared by device listing and capture."""

    def __init__(self) -> None:
        # Guards PortAudio (re)initialisation, opening streams and PULSE_SOURCE.
        self.lock = threading.RLock()
        # Re-initialising PortAudio would break open streams, so they are counted.
        self.open_streams = 0


PORTAUDIO = _PortAudioState()


def import_sounddevice() -> Any:
    """Import sounddevice, turning a missing PortAudio into a clear error."""
    try:
        import sounddevice
    except OSError as exc:  # raised by sounddevice when libportaudio is absent
        raise NoInputDeviceError(
            "PortAudio is not installed, so no microphone can be used "
            "(Debian/Ubuntu: sudo apt-get install libportaudio2)"
        ) from exc
    return sounddevice


def rescan_devices() -> None:
    """Ask PortAudio to enumerate devices again (after plugging a mic in).

    PortAudio lists devices once at start-up; re-initialising is only safe while no
    stream is open, so this does nothing when one is.
    """
    sd = import_sounddevice()
    with PORTAUDIO.lock:
        if PORTAUDIO.open_streams:
            log.info("not rescanning audio devices: a stream is open")
            return
        sd._terminate()  # sounddevice has no public API for this
        sd._initialize()


def list_input_devices(rescan: bool = False) -> list[InputDevice]:
    """All inputs: PortAudio's, then the PulseAudio sources behind its `pulse` device."""
    sd = import_sounddevice()
    if rescan:
        rescan_devices()
    with PORTAUDIO.lock:
        raw = list(sd.query_devices())
        default_index = sd.default.device[0]
        if default_index is None or default_index < 0:
            try:
                default_index = int(sd.query_hostapis(0)["default_input_device"])
            except Exception:  # no host API at all
                default_index = -1
    devices = [
        InputDevice(
            name=str(d["name"]),
            description=str(sd.query_hostapis(d["hostapi"])["name"]),
            backend="portaudio",
            index=int(d["index"]),
            channels=int(d["max_input_channels"]),
            default_samplerate=float(d["default_samplerate"]),
            is_default=int(d["index"]) == default_index,
        )
        for d in raw
        if d["max_input_channels"] > 0
    ]
    pulse = next((d for d in devices if d.name == "pulse"), None)
    if pulse is not None:
        devices += _pulse_sources(pulse)
    return devices


def _pulse_sources(pulse: InputDevice) -> list[InputDevice]:
    """PulseAudio (or PipeWire-pulse) sources, via `pactl`; [] when that is unavailable."""
    if shutil.which("pactl") is None:
        return []
    try:
        out = subprocess.run(
            ["pactl", "--format=json", "list", "sources"],
            capture_output=True,
            text=True,
            timeout=3,
            check=True,
        ).stdout
        sources = json.loads(out)
        default = subprocess.run(
            ["pactl", "get-default-source"], capture_output=True, text=True, timeout=3
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.debug("cannot list PulseAudio sources: %s", exc)
        return []
    result = []
    for s in sources:
        spec = s.get("sample_specification", "")  # e.g. "s16le 1ch 16000Hz"
        rate = next((p[:-2] for p in spec.split() if p.endswith("Hz")), "")
        chans = next((p[:-2] for p in spec.split() if p.endswith("ch")), "")
        result.append(
            InputDevice(
                name=str(s.get("name", "")),
                description=str(s.get("description", "")),
                backend="pulse",
                index=pulse.index,
                channels=int(chans) if chans.isdigit() else pulse.channels,
                default_samplerate=float(rate) if rate.isdigit() else pulse.default_samplerate,
                is_default=s.get("name") == default,
            )
        )
    return result


def find_input_device(spec: str | int | None = None) -> InputDevice:
    """The device to use for `spec`: None (the default input), a PortAudio index,
    or a name: exact (case-insensitive) first, then a unique substring of name or description.
    """
    devices = list_input_devices()
    if not devices:
        raise NoInputDeviceError(
            "No audio input device found. Is a microphone connected and is the sound "
            "server (PulseAudio or PipeWire) running?"
        )
    if spec is None or spec == "":
        chosen = next((d for d in devices if d.is_default and d.backend == "portaudio"), None)
        return chosen or devices[0]
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        index = int(spec)
        for d in devices:
            if d.backend == "portaudio" and d.index == index:
                return d
        raise NoInputDeviceError(f"No input device with index {index}. {_available(devices)}")
    wanted = spec.casefold()
    exact = [d for d in devices if d.name.casefold() == wanted]
    if exact:
        return exact[0]
    partial = [d for d in devices if wanted in d.name.casefold() or wanted in d.description.casefold()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise NoInputDeviceError(f"No input device matches {spec!r}. {_available(devices)}")
    raise AudioDeviceError(
        f"{spec!r} matches several input devices: " + ", ".join(repr(d.name) for d in partial) + "; use a longer name"
    )


def _available(devices: list[InputDevice]) -> str:
    return "Available: " + ", ".join(repr(d.name) for d in devices)


@contextmanager
def pulse_source_routing(device: InputDevice) -> Iterator[None]:
    """Route the ALSA `pulse` device to `device` while a stream opens (no-op for others).

    libpulse reads PULSE_SOURCE when the ALSA plugin connects, which happens while
    PortAudio opens the stream; callers hold PORTAUDIO.lock so no other open races with it.
    """
    if device.backend != "pulse":
        yield
        return
    saved = os.environ.get("PULSE_SOURCE")
    os.environ["PULSE_SOURCE"] = device.name
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PULSE_SOURCE", None)
        else:
            os.environ["PULSE_SOURCE"] = saved
