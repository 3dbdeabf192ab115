"""Conversion to the app's format: channels averaged to mono, any rate resampled.

The resampler is a polyphase filter in plain numpy (no scipy in the app).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from dictation.app.audio.constants import SAMPLE_RATE


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
