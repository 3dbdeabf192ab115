"""Reading a running take as it grows: only the audio that is new since the last read.

A long dictation is decoded while the user speaks, so the take is read every few hundred
milliseconds. Copying (and resampling) the whole take each time would grow with its
length; `TakeFeed` copies only the new blocks and resamples them with
`StreamingResampler`, whose output is sample for sample what `resample` gives for the
whole take (the final take, from `stop_take`, is that), so what was fed while the key
was held and the rest fed at release join without a seam.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.audio.resampling import resample


class StreamingResampler:
    """`resample` fed in pieces: `push` returns every output sample whose filter window
    lies in what has arrived, `flush` the rest (as `resample` pads the end with zeros).

    Exactness rests on `resample`'s design (10 zero crossings each side of the lower
    Nyquist, output n at input time n * down / up + half / up); a test compares both.
    """

    def __init__(self, orig_rate: int, target_rate: int = SAMPLE_RATE) -> None:
        g = math.gcd(int(orig_rate), int(target_rate))
        self.orig_rate, self.target_rate = int(orig_rate), int(target_rate)
        self.up, self.down = self.target_rate // g, self.orig_rate // g
        self.half = 10 * max(self.up, self.down)
        self.taps = -(-(2 * self.half + 1) // self.up)
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # input index of _buffer[0]: always a multiple of `down`
        self._received = 0
        self._emitted = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add input samples; the output samples that are final now."""
        x = np.asarray(samples, np.float32).reshape(-1)
        if self.up == self.down:
            return x.copy()
        self._buffer = np.concatenate([self._buffer, x])
        self._received += x.size
        # Output n uses input samples up to (n * down + half) // up: it is final once that
        # one has arrived.
        ready = -(-(self._received * self.up - self.half) // self.down)
        return self._emit(max(ready, self._emitted))

    def flush(self) -> np.ndarray:
        """The outputs left at the end of the input (zeros beyond it, as `resample`)."""
        if self.up == self.down:
            return np.zeros(0, np.float32)
        return self._emit(-(-self._received * self.up // self.down))

    def _emit(self, end: int) -> np.ndarray:
        if end <= self._emitted:
            return np.zeros(0, np.float32)
        first = self._buffer_start // self.down * self.up  # output index of the buffer's start
        out = resample(self._buffer, self.orig_rate, self.target_rate)[self._emitted - first : end - first]
        self._emitted = end
        # Keep the input the next output's window reaches back to (whole `down` steps, so
        # the buffer's outputs stay aligned with the whole stream's).
        lowest = (self._emitted * self.down + self.half) // self.up - self.taps + 1
        keep_from = max(0, lowest) // self.down * self.down
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[keep_from - self._buffer_start :]
            self._buffer_start = keep_from
        return out


class TakeFeed:
    """The new 16 kHz audio of `source`'s running take at each `read()`.

    A source with `peek_take_blocks(first) -> (blocks, rate)` (the microphone) is read
    block by block; one with only `peek_take()` (the whole take so far, 16 kHz) is
    sliced; one with neither cannot be read while it records (`read` gives None), and
    its whole take is fed at release.
    """

    def __init__(self, source: Any) -> None:
        self.source = source
        self.fed = 0  # 16 kHz samples handed out so far
        self._blocks_read = 0
        self._resampler: StreamingResampler | None = None

    def readable(self) -> bool:
        return hasattr(self.source, "peek_take_blocks") or hasattr(self.source, "peek_take")

    def read(self) -> np.ndarray | None:
        """Audio new since the last read (may be empty); None if the source cannot say."""
        peek_blocks = getattr(self.source, "peek_take_blocks", None)
        if peek_blocks is not None:
            blocks, rate = peek_blocks(self._blocks_read)
            self._blocks_read += len(blocks)
            if self._resampler is None:
                self._resampler = StreamingResampler(int(rate))
            raw = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
            new = self._resampler.push(raw)
        else:
            peek = getattr(self.source, "peek_take", None)
            if peek is None:
                return None
            new = np.asarray(peek(), np.float32).reshape(-1)[self.fed :]
        self.fed += new.size
        return new

    def rest(self, take: np.ndarray) -> np.ndarray:
        """What the whole take (`stop_take`'s) holds beyond what was read."""
        return np.asarray(take, np.float32).reshape(-1)[self.fed :]
