"""Audio in and out: microphone capture, level meter, quality checks, WAV files.

Everything the rest of the app sees is 16 kHz mono float32 in [-1, 1]. Capture opens
the device at 16 kHz when it can, else at its native rate, and resamples with the
polyphase filter below (plain numpy, no scipy). A `MicrophoneStream` keeps an
always-on ring buffer, so a take started a moment after the user begins to speak
still holds the first word.

PortAudio (through sounddevice) is imported lazily: WAV I/O and `analyze` work
without a sound stack. On Linux, PortAudio 19.6 reaches PulseAudio/PipeWire through
ALSA's `pulse` device only; the PulseAudio sources behind it are listed with `pactl`
and chosen with PULSE_SOURCE, so users can pick a real microphone by name.

No Qt and no torch here.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from dictation.app.storage import atomic_write_bytes

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
DBFS_FLOOR = -120.0  # what silence reads as, so values stay finite (JSON-friendly)


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- resampling


def resample(audio: np.ndarray, orig_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float audio with a Kaiser-windowed sinc polyphase filter.

    Same design as scipy's `resample_poly` (cutoff at the lower Nyquist, 10 zero
    crossings each side, beta 5), delay-compensated so output sample n sits at
    time n / target_rate. Output length is ceil(len * target / orig).
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample expects mono (1-D) audio, got shape {x.shape}")
    orig_rate, target_rate = int(orig_rate), int(target_rate)
    if orig_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {target_rate}")
    if orig_rate == target_rate or x.size == 0:
        return x.copy()
    g = math.gcd(orig_rate, target_rate)
    up, down = target_rate // g, orig_rate // g
    phases, half = _polyphase_filter(up, down)
    taps = phases.shape[1]
    n_out = -(-x.size * up // down)
    # Zero padding so every index below is in range; `taps` on the left, `taps + 2` right.
    xp = np.concatenate([np.zeros(taps, np.float32), x, np.zeros(taps + 2, np.float32)])
    out = np.empty(n_out, dtype=np.float32)
    k = np.arange(taps)
    chunk = max(1, (1 << 20) // taps)  # bounds the gathered matrix to ~4 MB
    for start in range(0, n_out, chunk):
        stop = min(n_out, start + chunk)
        t = np.arange(start, stop, dtype=np.int64) * down + half  # index in the upsampled signal
        base, phase = t // up, t % up
        gathered = xp[(base + taps)[:, None] - k[None, :]]
        out[start:stop] = np.einsum("nk,nk->n", gathered, phases[phase])
    return out


@lru_cache(maxsize=16)
def _polyphase_filter(up: int, down: int) -> tuple[np.ndarray, int]:
    """Low-pass FIR split into `up` phases: phases[p, k] = h[p + k * up]."""
    max_rate = max(up, down)
    half = 10 * max_rate
    n = np.arange(-half, half + 1, dtype=np.float64)
    cutoff = 1.0 / max_rate  # relative to the upsampled Nyquist
    h = cutoff * np.sinc(cutoff * n) * np.kaiser(2 * half + 1, 5.0)
    h *= up / h.sum()  # unity DC gain after zero-stuffing by `up`
    taps = -(-h.size // up)
    padded = np.zeros(taps * up)
    padded[: h.size] = h
    return padded.reshape(taps, up).T.astype(np.float32).copy(), half


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) -> (n,) float32, channels averaged."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1, dtype=np.float32) if a.shape[1] != 1 else a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"audio must be (n,) or (n, channels), got shape {a.shape}")
    return a


# --------------------------------------------------------------------------- level & quality


def _dbfs(value: float) -> float:
    return DBFS_FLOOR if value <= 10 ** (DBFS_FLOOR / 20) else 20.0 * math.log10(value)


@dataclass(frozen=True)
class Level:
    """Loudness of the latest block, for a level meter."""

    rms_dbfs: float
    peak: float  # linear, 0..1 (may exceed 1 for float devices)

    @classmethod
    def of(cls, block: np.ndarray) -> Level:
        if block.size == 0:
            return cls(DBFS_FLOOR, 0.0)
        rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64))))
        return cls(_dbfs(rms), float(np.max(np.abs(block))))


@dataclass(frozen=True)
class Quality:
    """What `analyze` found in a take."""

    duration: float  # seconds
    rms_dbfs: float  # whole take
    peak: float  # linear
    peak_dbfs: float
    loudest_dbfs: float  # loudest 30 ms frame; what silence detection looks at
    clipped_fraction: float  # share of samples at or above the clip level
    is_silent: bool
    is_clipped: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def analyze(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    silence_dbfs: float = -50.0,
    clip_level: float = 0.99,
    clipped_max_fraction: float = 0.001,
) -> Quality:
    """Measure loudness, clipping and silence of mono audio.

    A take is silent when even its loudest 30 ms frame stays under `silence_dbfs`
    (so one short word in a long take still counts as speech). It is clipped when
    more than `clipped_max_fraction` of its samples reach `clip_level`.
    """
    a = to_mono(audio).astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("audio contains NaN or infinite samples")
    if a.size == 0:
        return Quality(0.0, DBFS_FLOOR, 0.0, DBFS_FLOOR, DBFS_FLOOR, 0.0, True, False)
    peak = float(np.max(np.abs(a)))
    rms = float(np.sqrt(np.mean(a * a)))
    frame = max(1, int(0.03 * sample_rate))
    n_frames = max(1, a.size // frame)
    frames = a[: n_frames * frame].reshape(n_frames, -1) if a.size >= frame else a[None, :]
    loudest = float(np.sqrt(np.max(np.mean(frames * frames, axis=1))))
    clipped = float(np.mean(np.abs(a) >= clip_level))
    return Quality(
        duration=a.size / sample_rate,
        rms_dbfs=_dbfs(rms),
        peak=peak,
        peak_dbfs=_dbfs(peak),
        loudest_dbfs=_dbfs(loudest),
        clipped_fraction=clipped,
        is_silent=_dbfs(loudest) < silence_dbfs,
        is_clipped=clipped > clipped_max_fraction,
    )


# --------------------------------------------------------------------------- files


def write_wav(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    subtype: str = "PCM_16",
) -> Path:
    """Write a WAV atomically, owner-only (0600). `subtype`: "PCM_16" or "FLOAT"."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim not in (1, 2):
        raise ValueError(f"audio must be (n,) or (n, channels), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("audio contains NaN or infinite samples")
    if subtype.startswith("PCM"):
        a = np.clip(a, -1.0, 1.0)  # integer PCM would wrap around otherwise
    buffer = io.BytesIO()
    sf.write(buffer, a, int(sample_rate), format="WAV", subtype=subtype)
    return atomic_write_bytes(path, buffer.getvalue())


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read any file libsndfile knows (WAV, FLAC, OGG, MP3): mono float32 and its rate."""
    path = Path(path)
    if not path.is_file():  # libsndfile only says "System error" for these
        raise AudioFileError(f"Audio file not found: {path}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioFileError(f"Cannot read audio file {path}: {exc}") from exc
    return to_mono(data), int(rate)


def load_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as mono float32 at `sample_rate` (16 kHz by default)."""
    audio, rate = read_wav(path)
    return resample(audio, rate, sample_rate)


# --------------------------------------------------------------------------- devices


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


_sd_lock = threading.RLock()  # guards PortAudio (re)initialisation and PULSE_SOURCE
_open_streams = 0


def _sounddevice() -> Any:
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
    sd = _sounddevice()
    with _sd_lock:
        if _open_streams:
            log.info("not rescanning audio devices: a stream is open")
            return
        sd._terminate()  # sounddevice has no public API for this
        sd._initialize()


def list_input_devices(rescan: bool = False) -> list[InputDevice]:
    """All inputs: PortAudio's, then the PulseAudio sources behind its `pulse` device."""
    sd = _sounddevice()
    if rescan:
        rescan_devices()
    with _sd_lock:
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


# --------------------------------------------------------------------------- capture


class MicrophoneStream:
    """An open input stream with an always-on pre-roll ring buffer.

    Typical use::

        with MicrophoneStream(pre_roll=0.5, on_level=meter_update) as mic:
            ...                      # user presses "record" a little late
            mic.start_take()         # the take begins pre_roll seconds back
            ...
            audio = mic.stop_take()  # 16 kHz mono float32

    `on_level(Level)` is called from PortAudio's thread for every block; a GUI must
    hand it over to its own thread (e.g. a Qt signal). `level` holds the latest value.
    If the device goes away, `stop_take()`/`check()` raise DeviceLostError holding the
    audio captured so far.
    """

    def __init__(
        self,
        device: str | int | None = None,
        *,
        pre_roll: float = 0.5,
        samplerate: int | None = None,
        on_level: Callable[[Level], None] | None = None,
        max_take_seconds: float = 600.0,
        stall_timeout: float = 5.0,
    ):
        if pre_roll < 0:
            raise ValueError("pre_roll must be >= 0 seconds")
        self._device_spec = device
        self._pre_roll = float(pre_roll)
        self._requested_rate = samplerate
        self._on_level = on_level
        self._max_take_seconds = float(max_take_seconds)
        # PulseAudio's null sink delivers in bursts of up to 2 s when idle: stay above that.
        self._stall_timeout = float(stall_timeout)
        self.device: InputDevice | None = None
        self.native_rate = 0
        self._stream: Any = None
        self._lock = threading.Condition()
        self._ring: deque[np.ndarray] = deque()
        self._ring_len = 0
        self._ring_cap = 0
        self._take: list[np.ndarray] | None = None
        self._take_len = 0
        self._take_pre_roll = 0
        self._take_cap = 0
        self._truncated = False
        self._frames_seen = 0
        self._last_callback = 0.0
        self._lost: str | None = None
        self._closing = False
        self.overflows = 0
        self.level = Level(DBFS_FLOOR, 0.0)

    # -- lifecycle

    def __enter__(self) -> MicrophoneStream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, timeout: float = 5.0) -> MicrophoneStream:
        """Open the device and wait until the first audio block has arrived."""
        global _open_streams
        if self._stream is not None:
            return self
        sd = _sounddevice()
        device = find_input_device(self._device_spec)
        with _sd_lock, _pulse_source(device):
            rate, channels = self._choose_format(sd, device)
            try:
                stream = sd.InputStream(
                    device=device.index,
                    samplerate=rate,
                    channels=channels,
                    dtype="float32",
                    latency="low",  # PortAudio's default latency delays the first block by ~2 s
                    callback=self._callback,
                    finished_callback=self._finished,
                )
            except sd.PortAudioError as exc:
                raise AudioDeviceError(f"Cannot open input device {device.label}: {exc}") from exc
            self.device, self.native_rate = device, rate
            self._ring_cap = int(round(self._pre_roll * rate))
            self._take_cap = int(self._max_take_seconds * rate)
            try:
                stream.start()
            except sd.PortAudioError as exc:
                stream.close()
                raise AudioDeviceError(f"Cannot start input device {device.label}: {exc}") from exc
            self._stream = stream
            _open_streams += 1
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._frames_seen == 0 and self._lost is None:
                if not self._lock.wait(timeout=max(0.0, deadline - time.monotonic())):
                    break
        if self._frames_seen == 0:
            reason = self._lost or f"no audio arrived within {timeout:g} s"
            self.close()
            raise AudioDeviceError(f"Input device {device.label} delivers no audio: {reason}")
        return self

    def close(self) -> None:
        """Stop and close the stream (idempotent). A running take is discarded."""
        global _open_streams
        stream, self._stream = self._stream, None
        if stream is None:
            return
        self._closing = True
        try:
            stream.abort()
            stream.close()
        except Exception as exc:  # a dead device may fail to close; nothing to save here
            log.debug("closing input stream: %s", exc)
        with _sd_lock:
            _open_streams -= 1
        with self._lock:
            self._take = None

    @staticmethod
    def _choose_format_candidates(device: InputDevice, requested: int | None) -> list[int]:
        if requested:
            return [int(requested)]
        return list(dict.fromkeys([SAMPLE_RATE, int(device.default_samplerate)]))

    def _choose_format(self, sd: Any, device: InputDevice) -> tuple[int, int]:
        """16 kHz mono if the device takes it; else its native rate and/or stereo."""
        rates = self._choose_format_candidates(device, self._requested_rate)
        channel_options = list(dict.fromkeys([1, min(2, max(1, device.channels))]))
        errors = []
        for rate in rates:
            for channels in channel_options:
                try:
                    sd.check_input_settings(device=device.index, samplerate=rate, channels=channels, dtype="float32")
                    return rate, channels
                except sd.PortAudioError as exc:
                    errors.append(f"{rate} Hz x{channels}: {exc}")
                except ValueError as exc:  # sounddevice's own checks, e.g. bad device
                    raise AudioDeviceError(f"Cannot use {device.label}: {exc}") from exc
        raise UnsupportedSampleRateError(
            f"Input device {device.label} accepts none of the sample rates tried "
            f"({', '.join(map(str, rates))} Hz): " + "; ".join(errors)
        )

    # -- PortAudio thread

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Runs on PortAudio's thread: copy, append, never block for long.
        block = indata[:, 0].copy() if indata.shape[1] == 1 else indata.mean(axis=1, dtype=np.float32)
        with self._lock:
            if status and status.input_overflow:
                self.overflows += 1
            self._frames_seen += frames
            self._last_callback = time.monotonic()
            if self._take is not None:
                if self._take_len < self._take_cap:
                    self._take.append(block)
                    self._take_len += block.size
                else:
                    self._truncated = True
            if self._ring_cap:
                self._ring.append(block)
                self._ring_len += block.size
                while self._ring and self._ring_len - self._ring[0].size >= self._ring_cap:
                    self._ring_len -= self._ring.popleft().size
            self._lock.notify_all()
        level = Level.of(block)
        self.level = level
        if self._on_level is not None:
            try:
                self._on_level(level)
            except Exception:  # a broken meter must not kill the capture
                log.exception("level callback failed")

    def _finished(self) -> None:
        """PortAudio ended the stream: fine when we closed it, a lost device otherwise."""
        if not self._closing:
            with self._lock:
                self._lost = "the audio stream stopped (device unplugged or sound server gone)"
                self._lock.notify_all()

    # -- takes

    @property
    def recording(self) -> bool:
        return self._take is not None

    @property
    def take_pre_roll_samples(self) -> int:
        """How many 16 kHz samples of the current/last take came from the pre-roll."""
        return int(round(self._take_pre_roll * SAMPLE_RATE / self.native_rate)) if self.native_rate else 0

    @property
    def take_truncated(self) -> bool:
        """True when the last take hit max_take_seconds and its end was dropped."""
        return self._truncated

    def check(self) -> None:
        """Raise DeviceLostError if the device went away (with the take so far)."""
        with self._lock:
            reason = self._lost
            if reason is None and self._stream is not None and self._frames_seen:
                silent_for = time.monotonic() - self._last_callback
                if silent_for > self._stall_timeout:
                    reason = f"no audio from the device for {silent_for:.1f} s"
            if reason is None:
                return
            blocks, self._take = self._take or [], None
        captured = self._to_output(blocks)
        name = self.device.label if self.device else "input device"
        raise DeviceLostError(
            f"Lost the microphone {name}: {reason}. {captured.size / SAMPLE_RATE:.1f} s of the take were kept.",
            captured,
        )

    def start_take(self) -> None:
        """Begin a take; it starts with the last `pre_roll` seconds already captured."""
        if self._stream is None:
            raise AudioDeviceError("start() the stream before starting a take")
        self.check()
        with self._lock:
            ring = np.concatenate(list(self._ring)) if self._ring else np.zeros(0, np.float32)
            pre = ring[-self._ring_cap :] if self._ring_cap else ring[:0]
            self._take = [pre]
            self._take_len = pre.size
            self._take_pre_roll = pre.size
            self._truncated = False

    def take_seconds(self) -> float:
        """Length of the running take so far, pre-roll included."""
        with self._lock:
            return self._take_len / self.native_rate if self.native_rate else 0.0

    def wait_for_take(self, seconds: float, timeout: float | None = None) -> None:
        """Block until the take holds `seconds` of audio after its pre-roll."""
        target = self._take_pre_roll + int(math.ceil(seconds * self.native_rate))
        deadline = time.monotonic() + (timeout if timeout is not None else seconds + self._stall_timeout)
        with self._lock:
            while self._take is not None and self._take_len < target and self._lost is None:
                if self._take_len >= self._take_cap:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(timeout=min(remaining, 0.1))
        self.check()
        if self._take is not None and self._take_len < target and self._take_len < self._take_cap:
            raise DeviceLostError(
                f"The microphone delivered only {self.take_seconds():.2f} s in time",
                self._to_output(list(self._take)),
            )

    def peek_take(self) -> np.ndarray:
        """The running take so far (16 kHz mono float32, pre-roll included); it keeps running."""
        with self._lock:
            if self._take is None:
                raise AudioDeviceError("no take is running")
            blocks = list(self._take)
        return self._to_output(blocks)

    def stop_take(self) -> np.ndarray:
        """End the take and return it: 16 kHz mono float32, pre-roll included."""
        self.check()
        with self._lock:
            if self._take is None:
                raise AudioDeviceError("no take is running")
            blocks, self._take = self._take, None
        return self._to_output(blocks)

    def cancel_take(self) -> None:
        with self._lock:
            self._take = None

    def _to_output(self, blocks: list[np.ndarray]) -> np.ndarray:
        audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        return resample(audio, self.native_rate, SAMPLE_RATE) if self.native_rate else audio


class _pulse_source:
    """Context manager: route the ALSA `pulse` device to one PulseAudio source.

    libpulse reads PULSE_SOURCE when the ALSA plugin connects, which happens while
    PortAudio opens the stream; callers hold _sd_lock so no other open races with it.
    """

    def __init__(self, device: InputDevice):
        self._name = device.name if device.backend == "pulse" else None
        self._saved: str | None = None

    def __enter__(self) -> None:
        if self._name is not None:
            self._saved = os.environ.get("PULSE_SOURCE")
            os.environ["PULSE_SOURCE"] = self._name

    def __exit__(self, *exc: object) -> None:
        if self._name is not None:
            if self._saved is None:
                os.environ.pop("PULSE_SOURCE", None)
            else:
                os.environ["PULSE_SOURCE"] = self._saved


def record(
    seconds: float, device: str | int | None = None, pre_roll: float = 0.5
) -> tuple[np.ndarray, MicrophoneStream]:
    """Record `seconds` from the device (plus whatever pre-roll is already buffered).

    Returns the 16 kHz audio and the (closed) stream, for its device and pre-roll info.
    """
    if seconds <= 0:
        raise ValueError("seconds must be > 0")
    mic = MicrophoneStream(device, pre_roll=pre_roll)
    with mic:
        mic.start_take()
        mic.wait_for_take(seconds)
        audio = mic.stop_take()
    wanted = mic.take_pre_roll_samples + int(round(seconds * SAMPLE_RATE))
    return audio[:wanted], mic
