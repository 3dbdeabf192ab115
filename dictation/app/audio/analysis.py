"""Loudness, clipping and silence: the level meter's `Level` and a take's `Quality`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dictation.app.audio.constants import DBFS_FLOOR, SAMPLE_RATE
from dictation.app.audio.resampling import to_mono


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
