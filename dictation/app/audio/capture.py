"""Microphone capture: `MicrophoneStream` (an open input with an always-on pre-roll) and
`record` (a one-shot recording).

Capture opens the device at 16 kHz when it can, else at its native rate, and hands out
16 kHz mono float32 resampled by `resampling.resample`. The ring buffer and takes live in
`takes.TakeBuffer`; this module owns the PortAudio stream around it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dictation.app.audio.analysis import Level
from dictation.app.audio.constants import DBFS_FLOOR, SAMPLE_RATE
from dictation.app.audio.devices import (
    PORTAUDIO,
    InputDevice,
    find_input_device,
    import_sounddevice,
    pulse_source_routing,
)
from dictation.app.audio.errors import AudioDeviceError, DeviceLostError, UnsupportedSampleRateError
from dictation.app.audio.resampling import resample
from dictation.app.audio.takes import TakeBuffer

log = logging.getLogger(__name__)

# Audio arrives in blocks of this length (1280 samples at 16 kHz). Each callback costs
# about 0.4 ms of CPU (PortAudio, ALSA's pulse plugin, the GIL) whatever the latency
# setting, so the idle cost of an always-open microphone is set by the block rate
# (`dictation listen` idle: under 1 % of a core at 12.5 blocks a second; see README).
# At key release at most one block of trailing audio (after the last word) is still
# on its way.
BLOCK_SECONDS = 0.08


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
        self._buffer = TakeBuffer()
        self._closing = False
        self.level = Level(DBFS_FLOOR, 0.0)

    # -- lifecycle

    def __enter__(self) -> MicrophoneStream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, timeout: float = 5.0) -> MicrophoneStream:
        """Open the device and wait until the first audio block has arrived."""
        if self._stream is not None:
            return self
        sd = import_sounddevice()
        device = find_input_device(self._device_spec)
        with PORTAUDIO.lock, pulse_source_routing(device):
            rate, channels = self._choose_format(sd, device)
            self._buffer = TakeBuffer(
                pre_roll=int(round(self._pre_roll * rate)), max_take=int(self._max_take_seconds * rate)
            )
            try:
                stream = sd.InputStream(
                    device=device.index,
                    samplerate=rate,
                    channels=channels,
                    dtype="float32",
                    latency="low",  # PortAudio's default latency delays the first block by ~2 s
                    # Without a block size PortAudio calls back ~470 times a second: an idle
                    # open microphone then costs ~12 % of a core instead of ~1 %.
                    blocksize=int(rate * BLOCK_SECONDS),
                    callback=self._callback,
                    finished_callback=self._finished,
                )
            except sd.PortAudioError as exc:
                raise AudioDeviceError(f"Cannot open input device {device.label}: {exc}") from exc
            self.device, self.native_rate = device, rate
            try:
                stream.start()
            except sd.PortAudioError as exc:
                stream.close()
                raise AudioDeviceError(f"Cannot start input device {device.label}: {exc}") from exc
            self._stream = stream
            PORTAUDIO.open_streams += 1
        reason = self._buffer.wait_for_first_block(timeout)
        if reason is not None:
            self.close()
            raise AudioDeviceError(f"Input device {device.label} delivers no audio: {reason}")
        return self

    def close(self) -> None:
        """Stop and close the stream (idempotent). A running take is discarded."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        self._closing = True
        try:
            stream.abort()
            stream.close()
        except Exception as exc:  # a dead device may fail to close; nothing to save here
            log.debug("closing input stream: %s", exc)
        with PORTAUDIO.lock:
            PORTAUDIO.open_streams -= 1
        self._buffer.discard()

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
        self._buffer.add_block(block, frames, overflowed=bool(status and status.input_overflow))
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
            self._buffer.mark_lost("the audio stream stopped (device unplugged or sound server gone)")

    # -- takes

    @property
    def overflows(self) -> int:
        """How many blocks PortAudio reported as overflowed (samples dropped)."""
        return self._buffer.overflows

    @property
    def recording(self) -> bool:
        return self._buffer.recording

    @property
    def take_pre_roll_samples(self) -> int:
        """How many 16 kHz samples of the current/last take came from the pre-roll."""
        if not self.native_rate:
            return 0
        return int(round(self._buffer.pre_roll_length * SAMPLE_RATE / self.native_rate))

    @property
    def take_truncated(self) -> bool:
        """True when the last take hit max_take_seconds and its end was dropped."""
        return self._buffer.truncated

    def check(self) -> None:
        """Raise DeviceLostError if the device went away (with the take so far)."""
        lost = self._buffer.end_if_lost(self._stall_timeout if self._stream is not None else None)
        if lost is None:
            return
        reason, blocks = lost
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
        self._buffer.begin()

    def take_seconds(self) -> float:
        """Length of the running take so far, pre-roll included."""
        return self._buffer.length / self.native_rate if self.native_rate else 0.0

    def wait_for_take(self, seconds: float, timeout: float | None = None) -> None:
        """Block until the take holds `seconds` of audio after its pre-roll."""
        samples = int(math.ceil(seconds * self.native_rate))
        deadline = time.monotonic() + (timeout if timeout is not None else seconds + self._stall_timeout)
        self._buffer.wait_for(samples, deadline)
        self.check()
        blocks = self._buffer.short_of(samples)
        if blocks is not None:
            raise DeviceLostError(
                f"The microphone delivered only {self.take_seconds():.2f} s in time",
                self._to_output(blocks),
            )

    def peek_take(self) -> np.ndarray:
        """The running take so far (16 kHz mono float32, pre-roll included); it keeps running."""
        return self._to_output(self._buffer.peek())

    def peek_take_blocks(self, first: int = 0) -> tuple[list[np.ndarray], int]:
        """The running take's blocks from the `first`-th on, at the device's own rate, and
        that rate: a reader that resamples as it goes copies only what is new."""
        return self._buffer.peek()[first:], self.native_rate

    def stop_take(self) -> np.ndarray:
        """End the take and return it: 16 kHz mono float32, pre-roll included."""
        self.check()
        return self._to_output(self._buffer.end())

    def cancel_take(self) -> None:
        self._buffer.discard()

    def _to_output(self, blocks: list[np.ndarray]) -> np.ndarray:
        audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        return resample(audio, self.native_rate, SAMPLE_RATE) if self.native_rate else audio


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
