"""Shared helpers for the benchmark scripts: speech clips of given lengths, timing stats."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SENTENCES = [
    "Please send the quarterly report to Maria before Friday afternoon.",
    "The meeting has been moved to the second floor conference room.",
    "Remember to buy milk, eggs and bread on the way home tonight.",
    "Our train leaves at seven thirty, so we should meet at the station at seven.",
    "I think the new design is cleaner, but the colours need more contrast.",
    "Could you book a table for four people at the Italian place on Main Street?",
]


def speech_clip(seconds: float, out_dir: Path | None = None, voice: str = "slt") -> tuple[np.ndarray, Path]:
    """A flite TTS clip trimmed/extended to about `seconds` (sentences joined), 16 kHz mono."""
    from dictation.app.audio import load_audio, write_wav

    out_dir = out_dir or Path(tempfile.mkdtemp(prefix="dictation-bench-"))
    pieces, total, i = [], 0.0, 0
    while total < seconds:
        wav = out_dir / f"s{i}.wav"
        subprocess.run(
            ["flite", "-voice", voice, "-t", SENTENCES[i % len(SENTENCES)], "-o", str(wav)],
            check=True,
            capture_output=True,
        )
        a = load_audio(wav)
        pieces.append(a)
        total += len(a) / 16000
        i += 1
    audio = np.concatenate(pieces)
    if len(audio) > seconds * 16000 * 1.15:  # cut at a pause-ish point near the target
        audio = audio[: int(seconds * 16000)]
    path = out_dir / f"clip_{seconds:g}s.wav"
    write_wav(path, audio)
    return audio, path


def stats_ms(times: list[float]) -> dict:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return {"median_ms": round(statistics.median(ms), 1), "p95_ms": round(p95, 1), "n": len(ms)}
