"""Audio files read block by block (soundfile), so an hour-long file never sits in memory.

`scan(path)` reads the file once to check it (NaN/infinite samples are an error naming
where they are; the peak says whether it is far over full scale); `read_blocks(path)`
then yields 16 kHz mono float32 blocks. Another rate is resampled block by block with
enough context on each side that the result equals resampling the whole file at once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from dictation.app.audio import AudioFileError, resample
from dictation.app.runtime import OVER_SCALE, SAMPLE_RATE, check_finite, over_scale_warning

BLOCK_SECONDS = 10.0


@dataclass
class FileScan:
    """What one pass over a file found."""

    rate: int
    frames: int  # samples per channel, at `rate`
    peak: float  # largest absolute sample value

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0

    @property
    def gain(self) -> float:
        """1, or what brings input far over full scale back to full scale."""
        return 1.0 / self.peak if self.peak > OVER_SCALE else 1.0

    @property
    def warnings(self) -> list[str]:
        return [over_scale_warning(self.peak)] if self.peak > OVER_SCALE else []


def _open(path: str | os.PathLike[str]) -> sf.SoundFile:
    path = Path(path)
    if not path.is_file():  # libsndfile only says "System error" for these
        raise AudioFileError(f"Audio file not found: {path}")
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioFileError(f"Cannot read audio file {path}: {exc}") from exc


def _mono_blocks(path: str | os.PathLike[str], block: int) -> Iterator[tuple[np.ndarray, int]]:
    """(mono float32 block, rate), `block` samples each (the last may be shorter)."""
    with _open(path) as f:
        rate = int(f.samplerate)
        try:
            for data in f.blocks(blocksize=block, dtype="float32", always_2d=True):
                yield (data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)), rate
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioFileError(f"Cannot read audio file {path}: {exc}") from exc


def scan(path: str | os.PathLike[str]) -> FileScan:
    """Read the file once: its rate, length and peak. InvalidAudioError (naming the time
    of the first bad sample) if it holds NaN or infinite samples; AudioFileError if it
    cannot be read."""
    with _open(path) as f:
        rate = int(f.samplerate)
    frames, peak = 0, 0.0
    for data, _ in _mono_blocks(path, int(BLOCK_SECONDS * rate)):
        check_finite(data, offset=frames, sample_rate=rate)
        if data.size:
            peak = max(peak, float(np.max(np.abs(data))))
        frames += len(data)
    return FileScan(rate, frames, peak)


def read_blocks(
    path: str | os.PathLike[str], gain: float = 1.0, block_seconds: float = BLOCK_SECONDS
) -> Iterator[np.ndarray]:
    """16 kHz mono float32 blocks of the file, scaled by `gain`."""
    with _open(path) as f:
        rate = int(f.samplerate)
    if rate == SAMPLE_RATE:
        for data, _ in _mono_blocks(path, int(block_seconds * rate)):
            yield data * np.float32(gain) if gain != 1.0 else data
        return
    g = math.gcd(rate, SAMPLE_RATE)
    up, down = SAMPLE_RATE // g, rate // g
    # Input samples each output sample depends on, either side (the polyphase filter's
    # reach: 10 zero crossings at the lower rate), rounded up to whole `down` steps so
    # block edges fall on output samples.
    reach = 10 * max(up, down) // up + 2
    pad = down * -(-reach // down)
    block = max(pad, down * max(1, int(block_seconds * rate) // down))
    left = np.zeros(0, np.float32)
    current: np.ndarray | None = None
    for data, _ in _mono_blocks(path, block):
        if current is not None:
            yield _resampled_middle(left, current, data[:pad], rate, up, down, gain)
            left = current[-pad:]
        current = data
    if current is not None:
        out = resample(np.concatenate([left, current]), rate, SAMPLE_RATE)
        yield out[len(left) * up // down :] * np.float32(gain)


def _resampled_middle(
    left: np.ndarray, middle: np.ndarray, right: np.ndarray, rate: int, up: int, down: int, gain: float
) -> np.ndarray:
    """The resampled `middle`, computed with its neighbours as context (whole `down` steps)."""
    out = resample(np.concatenate([left, middle, right]), rate, SAMPLE_RATE)
    start = len(left) * up // down
    return out[start : start + len(middle) * up // down] * np.float32(gain)
