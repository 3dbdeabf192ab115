"""Audio files: WAV written atomically and owner-only, anything libsndfile reads read back."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.audio.errors import AudioFileError
from dictation.app.audio.resampling import resample, to_mono
from dictation.app.storage import atomic_write_bytes


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
