"""Training-time audio augmentation in numpy (cheap enough to run per batch on a CPU).

Each effect fires with its own probability: speed perturbation, pitch shift, VTLP-style
frequency warping, band-limiting / telephone-style mu-law 8 kHz round trip, additive
coloured noise at a random SNR, synthetic room reverberation (exponentially decaying
noise impulse responses) and gain. Output is float32, finite, within [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dictation.app.audio.resampling import resample


@dataclass
class AugmentConfig:
    p_speed: float = 0.5
    speed_range: tuple[float, float] = (0.9, 1.1)
    p_pitch: float = 0.3
    pitch_semitones: float = 2.5
    p_vtlp: float = 0.3
    vtlp_range: tuple[float, float] = (0.9, 1.1)
    p_band: float = 0.25
    p_codec: float = 0.15
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    p_reverb: float = 0.3
    rt60: tuple[float, float] = (0.15, 0.8)
    p_gain: float = 0.5
    gain_db: tuple[float, float] = (-12.0, 6.0)


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    pad = np.pad(x, (n_fft // 2, n_fft // 2 + n_fft))
    frames = np.lib.stride_tricks.sliding_window_view(pad, n_fft)[::hop]
    return np.fft.rfft(frames * np.hanning(n_fft), axis=1)


def _istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    win = np.hanning(n_fft)
    frames = np.fft.irfft(spec, n_fft, axis=1) * win
    out = np.zeros(hop * (len(frames) - 1) + n_fft)
    norm = np.zeros_like(out)
    for i, f in enumerate(frames):
        out[i * hop : i * hop + n_fft] += f
        norm[i * hop : i * hop + n_fft] += win**2
    out = out / np.maximum(norm, 1e-8)
    return out[n_fft // 2 : n_fft // 2 + length]


def check_speed_factors(factors) -> tuple[float, ...]:
    """Speed factors as floats; ValueError unless each lies in [0.5, 2] and is not 1."""
    out = tuple(float(f) for f in factors)
    bad = [f for f in out if not 0.5 <= f <= 2.0 or f == 1.0]
    if bad:
        raise ValueError(f"speed factors must lie in [0.5, 2] and differ from 1, not {bad}")
    return out


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch change together, as in Kaldi's recipe)."""
    return resample(x, int(round(16000 * factor)), 16000)


def with_speed_copies(items: list[tuple[np.ndarray, str]], factors) -> list[tuple[np.ndarray, str]]:
    """(audio, text) items, then a copy of each played `factor` times faster (pitch moves
    with it), for each factor in turn; same texts. How enrollment takes are multiplied
    for adaptation (`enroll_speed_copies` in bundle.json)."""
    factors = check_speed_factors(factors)
    return list(items) + [(speed(audio, f).astype(np.float32), text) for f in factors for audio, text in items]


def warp_frequencies(freqs: np.ndarray, warp: float, nyquist: float, knee: float = 0.8) -> np.ndarray:
    """Piecewise-linear vocal-tract-length warp of a frequency axis (Jaitly & Hinton).

    Below a cut-off (`knee` x Nyquist, lowered by 1 / warp when warp > 1 so that the map
    stays monotone) the axis is scaled by `warp`; above it a straight line joins the cut-off
    to the Nyquist frequency, which stays fixed. Used by `vtlp` to perturb audio and by the
    mel front end (`dictation.adapt.features.mel_filterbank(warp=...)`) to normalise it."""
    if not 0.5 < warp < 2.0:
        raise ValueError(f"warp factor {warp} outside (0.5, 2)")
    freqs = np.asarray(freqs, dtype=np.float64)
    cut = knee * nyquist / max(1.0, warp)
    upper = warp * cut + (nyquist - warp * cut) * (freqs - cut) / (nyquist - cut)
    return np.where(freqs <= cut, freqs * warp, upper)


def vtlp(x: np.ndarray, alpha: float, sr: int = 16000, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Vocal-tract-length perturbation: piecewise-linear warp of the frequency axis."""
    spec = _stft(x, n_fft, hop)
    bins = spec.shape[1]
    f = np.arange(bins, dtype=np.float64)
    top = bins - 1
    warped = warp_frequencies(f, alpha, top)
    # Output bin k takes energy from the source frequency that maps to it.
    src = np.interp(f, warped, f)
    lo = np.clip(np.floor(src).astype(int), 0, top)
    hi = np.clip(lo + 1, 0, top)
    w = src - lo
    mag = np.abs(spec[:, lo]) * (1 - w) + np.abs(spec[:, hi]) * w
    # Phase vocoder: an output bin must advance its phase at the warped frequency,
    # else overlap-add puts the energy back where it came from.
    nearest = np.clip(np.round(src).astype(int), 0, top)
    phase = np.angle(spec)
    omega = 2 * np.pi * np.arange(bins) / n_fft
    dev = np.diff(phase, axis=0, prepend=phase[:1]) - omega * hop
    inst = omega + (np.mod(dev + np.pi, 2 * np.pi) - np.pi) / hop  # rad/sample per source bin
    ratio = np.where(src > 0, f / np.maximum(src, 1e-9), 1.0)
    out_phase = phase[0, nearest] + np.cumsum(inst[:, nearest] * ratio * hop, axis=0)
    out = mag * np.exp(1j * out_phase)
    return _istft(out, n_fft, hop, x.size)


def pitch_shift(x: np.ndarray, semitones: float) -> np.ndarray:
    """Shift pitch, keeping duration: resample, then restore length by phase-vocoder-free OLA stretch."""
    factor = 2 ** (semitones / 12)
    y = speed(x, factor)  # higher pitch, shorter
    return _ola_stretch(y, x.size)


def _ola_stretch(y: np.ndarray, length: int, frame: int = 640, hop_out: int = 160) -> np.ndarray:
    """Time-stretch `y` to `length` samples by windowed overlap-add of re-spaced frames."""
    if y.size < frame or length < frame:
        return np.resize(y, length)
    n_frames = (length - frame) // hop_out + 1
    starts = np.linspace(0, y.size - frame, n_frames).astype(int)
    win = np.hanning(frame)
    out = np.zeros(length)
    norm = np.zeros(length)
    for i, s in enumerate(starts):
        out[i * hop_out : i * hop_out + frame] += y[s : s + frame] * win
        norm[i * hop_out : i * hop_out + frame] += win
    return out / np.maximum(norm, 1e-3)


def band_limit(x: np.ndarray, low_hz: float, high_hz: float, sr: int = 16000) -> np.ndarray:
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1 / sr)
    # Soft edges (raised cosine over 200 Hz) to avoid ringing.
    ramp = lambda d: 0.5 * (1 + np.cos(np.pi * np.clip(d / 200.0, 0, 1)))  # noqa: E731
    gain = np.where(freqs < low_hz, ramp(low_hz - freqs), 1.0) * np.where(freqs > high_hz, ramp(freqs - high_hz), 1.0)
    return np.fft.irfft(spec * gain, x.size)


def mu_law_8k(x: np.ndarray, mu: float = 255.0, bits: int = 8) -> np.ndarray:
    """Telephone codec round trip: 8 kHz, mu-law companded to `bits` bits, back to 16 kHz."""
    y = resample(x, 16000, 8000)
    y = np.clip(y, -1, 1)
    comp = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
    levels = 2 ** (bits - 1)
    comp = np.round(comp * levels) / levels
    y = np.sign(comp) * ((1 + mu) ** np.abs(comp) - 1) / mu
    return resample(y, 8000, 16000)[: x.size]


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown, -1 blue)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    noise = np.fft.irfft(spec / f ** (exponent / 2), n)
    return noise / (np.std(noise) + 1e-12)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    noise = coloured_noise(x.size, rng.choice([0.0, 1.0, 2.0, -1.0]), rng)
    if rng.random() < 0.3:  # a mains hum on top, as cheap laptops have
        t = np.arange(x.size) / 16000
        noise = noise + 0.5 * np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * t)
    p_signal = np.mean(x**2) + 1e-12
    p_noise = np.mean(noise**2) + 1e-12
    return x + noise * np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))


def synthetic_rir(rt60: float, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """Exponentially decaying noise tail after a direct-path impulse (a diffuse room)."""
    n = int(sr * min(rt60 * 1.2, 1.0))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    tail[: int(0.002 * sr)] = 0.0  # a small gap before the first reflections
    rir = tail * 0.3
    rir[0] = 1.0
    return rir / np.sqrt(np.sum(rir**2))


def reverb(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    rir = synthetic_rir(rt60, rng)
    n = x.size + rir.size - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: x.size]
    return y * (np.max(np.abs(x)) / (np.max(np.abs(y)) + 1e-12))


class Augmenter:
    """`Augmenter(seed).apply(waveform)`: a random chain of effects, reproducible per seed."""

    def __init__(self, seed: int = 0, config: AugmentConfig | None = None):
        self.rng = np.random.default_rng(seed)
        self.config = config or AugmentConfig()
        self.last_effects: list[str] = []

    def apply(self, waveform: np.ndarray, sr: int = 16000) -> np.ndarray:
        x = np.asarray(waveform, dtype=np.float64)
        if x.ndim == 2:
            x = x.mean(axis=1)
        if sr != 16000:
            x = resample(x, sr, 16000).astype(np.float64)
        x = np.nan_to_num(x)
        c, r = self.config, self.rng
        done: list[str] = []
        if x.size < 512:
            return np.clip(x, -1, 1).astype(np.float32)
        if r.random() < c.p_speed:
            x = speed(x, r.uniform(*c.speed_range)).astype(np.float64)
            done.append("speed")
        if r.random() < c.p_pitch:
            x = pitch_shift(x, r.uniform(-c.pitch_semitones, c.pitch_semitones))
            done.append("pitch")
        if r.random() < c.p_vtlp:
            x = vtlp(x, r.uniform(*c.vtlp_range))
            done.append("vtlp")
        if r.random() < c.p_reverb:
            x = reverb(x, r.uniform(*c.rt60), r)
            done.append("reverb")
        if r.random() < c.p_noise:
            x = add_noise(x, r.uniform(*c.snr_db), r)
            done.append("noise")
        if r.random() < c.p_band:
            x = band_limit(x, r.uniform(80, 400), r.uniform(3000, 7000))
            done.append("band")
        if r.random() < c.p_codec:
            x = mu_law_8k(np.clip(x, -1, 1))
            done.append("codec")
        if r.random() < c.p_gain:
            x = x * 10 ** (r.uniform(*c.gain_db) / 20)
            done.append("gain")
        x = np.nan_to_num(x)
        peak = np.max(np.abs(x)) if x.size else 0.0
        if peak > 1.0:  # never hard-clip: scale the whole clip down instead
            x = x / peak
        self.last_effects = done
        return x.astype(np.float32)
