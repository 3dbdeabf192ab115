"""Small shared pieces: cache location, errors, WAV bytes (resampling is dictation.app.audio's)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

# Re-exported so the corpus modules have one import for these.
from dictation.app.audio import resample  # noqa: F401
from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.storage import atomic_write_bytes, cache_root  # noqa: F401


class CorpusError(Exception):
    """Base class for corpus errors."""


class EngineUnavailable(CorpusError):
    """A speech source cannot run here; the message names what to install."""


class CorpusFormatError(CorpusError):
    """A corpus on disk does not have the expected layout or contents."""


class UnreadableAudio(CorpusError):
    """Audio bytes/file that cannot be decoded, or decode to nothing usable."""


def default_corpus_dir() -> Path:
    return cache_root() / "corpus"


def to_mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def decode_audio(data: bytes | Path) -> tuple[np.ndarray, int]:
    """Decode WAV/FLAC/MP3/OGG bytes or a file to float32 mono; UnreadableAudio on failure."""
    try:
        src = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else str(data)
        audio, sr = sf.read(src, dtype="float32", always_2d=False)
    except Exception as exc:  # libsndfile raises several types; all mean "cannot decode"
        raise UnreadableAudio(f"cannot decode audio: {exc}") from exc
    audio = to_mono(audio)
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        raise UnreadableAudio("audio is empty or not finite")
    return audio, int(sr)


def wav_bytes(audio: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV bytes; the clip is peak-limited so it never clips."""
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()
