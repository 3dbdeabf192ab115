"""Play a take back through the default output device (sounddevice; QtMultimedia is not
part of PySide6-Essentials). Playback is optional: without an output device it says why."""

from __future__ import annotations

import numpy as np


def play(audio: np.ndarray, sample_rate: int) -> str | None:
    """Start non-blocking playback. Returns None on success, else a plain-language reason."""
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio missing
        return f"Playback is not available on this computer ({exc})."
    try:
        sd.check_output_settings(samplerate=sample_rate, channels=1)
        sd.play(np.asarray(audio, dtype=np.float32), samplerate=sample_rate)
    except Exception as exc:
        return f"Playback is not available: no usable output device ({exc})."
    return None


def stop() -> None:
    """Stop any playback started by `play` (no-op without sounddevice)."""
    try:
        import sounddevice as sd

        sd.stop()
    except Exception:
        pass
