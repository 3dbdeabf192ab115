"""Short start/stop tones for dictation (off by default): made with numpy, played through
QtMultimedia where PySide6 has it (not in PySide6-Essentials), else through sounddevice."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

RATE = 16_000
TONE_S = 0.09
START_HZ = (660.0, 880.0)  # rising: listening
STOP_HZ = (880.0, 660.0)  # falling: done
VOLUME = 0.25


def tone(frequencies: tuple[float, float], seconds: float = TONE_S, rate: int = RATE) -> np.ndarray:
    """Two short notes (float32 mono), each faded in and out so they never click."""
    half = int(seconds * rate / 2)
    t = np.arange(half, dtype=np.float32) / rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.008).astype(np.float32)
    notes = [np.sin(2 * np.pi * f * t).astype(np.float32) * fade for f in frequencies]
    return (np.concatenate(notes) * VOLUME).astype(np.float32)


class Sounds:
    """`play_start()` / `play_stop()`; silent (and never raising) where nothing can play."""

    def __init__(self) -> None:
        self.backend = ""  # "qt", "sounddevice", or "" before the first sound / when none works
        self._qt_sinks: list[Any] = []

    def play_start(self) -> None:
        self.play(tone(START_HZ))

    def play_stop(self) -> None:
        self.play(tone(STOP_HZ))

    def play(self, samples: np.ndarray) -> None:
        for name, player in (("qt", self._play_qt), ("sounddevice", self._play_sounddevice)):
            if self.backend not in ("", name):
                continue
            try:
                player(samples)
            except Exception as exc:  # a missing module or output device: try the next way
                log.debug("%s cannot play: %s", name, exc)
                continue
            self.backend = name
            return
        log.info("no way to play the dictation sounds here")

    def _play_qt(self, samples: np.ndarray) -> None:
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice
        from PySide6.QtMultimedia import QAudioFormat, QAudioSink  # type: ignore[import-not-found,unused-ignore]

        audio_format = QAudioFormat()
        audio_format.setSampleRate(RATE)
        audio_format.setChannelCount(1)
        audio_format.setSampleFormat(QAudioFormat.SampleFormat.Int16)
        data = QByteArray((samples * 32767).astype("<i2").tobytes())
        buffer = QBuffer()
        buffer.setData(data)
        buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        sink = QAudioSink(audio_format)
        sink.start(buffer)
        self._qt_sinks = [*self._qt_sinks[-3:], (sink, buffer)]  # kept alive while playing

    @staticmethod
    def _play_sounddevice(samples: np.ndarray) -> None:
        import sounddevice

        sounddevice.play(samples, RATE)  # returns at once; a new sound cuts the last one
