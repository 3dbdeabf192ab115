"""Training-time augmentation: bounded, finite, reproducible, and each effect really acts."""

from __future__ import annotations

import numpy as np
import pytest

from dictation.adapt import augment
from dictation.adapt.augment import AugmentConfig, Augmenter


def _speechlike(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a syllable-rate envelope and formant-ish colouring."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    x = sum(np.sin(k * phase) / k for k in range(1, 25))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (0.25 * x * env / np.max(np.abs(x)) + 0.001 * rng.standard_normal(t.size)).astype(np.float32)


ALL_ON = AugmentConfig(**{k: (1.0 if k.startswith("p_") else v) for k, v in vars(AugmentConfig()).items()})


@pytest.mark.parametrize("seed", range(12))
def test_output_is_finite_bounded_and_changed(seed: int) -> None:
    x = _speechlike(seed=seed)
    y = Augmenter(seed, ALL_ON if seed % 2 else None).apply(x)
    assert y.dtype == np.float32 and y.ndim == 1
    assert 0.85 * x.size <= y.size <= 1.15 * x.size
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0
    if seed % 2:  # everything applied: the signal must differ substantially
        n = min(x.size, y.size)
        assert np.mean((y[:n] - x[:n]) ** 2) > 0.01 * np.mean(x**2)


def test_reproducible_per_seed_and_loud_input_stays_bounded() -> None:
    x = _speechlike()
    assert np.array_equal(Augmenter(3).apply(x), Augmenter(3).apply(x))
    assert not np.array_equal(Augmenter(3, ALL_ON).apply(x), Augmenter(4, ALL_ON).apply(x))
    loud = np.sign(x).astype(np.float32)  # full-scale square wave, then up to +6 dB gain
    cfg = AugmentConfig(
        p_speed=0, p_pitch=0, p_vtlp=0, p_band=0, p_codec=0, p_noise=0, p_reverb=0, p_gain=1.0, gain_db=(6.0, 6.0)
    )
    y = Augmenter(0, cfg).apply(loud)
    assert np.max(np.abs(y)) <= 1.0 and np.max(np.abs(y)) > 0.99


def test_other_sample_rates_and_stereo_are_accepted() -> None:
    x = _speechlike()
    stereo = np.stack([x, x], axis=1)
    y = Augmenter(
        0, AugmentConfig(p_speed=0, p_pitch=0, p_vtlp=0, p_band=0, p_codec=0, p_noise=0, p_reverb=0, p_gain=0)
    ).apply(stereo[::2], sr=8000)
    assert y.ndim == 1 and abs(y.size - x.size) <= 2


def test_noise_hits_the_requested_snr() -> None:
    x = _speechlike().astype(np.float64)
    for snr in (5.0, 20.0):
        y = augment.add_noise(x, snr, np.random.default_rng(1))
        measured = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
        assert measured == pytest.approx(snr, abs=0.5)


def _band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / 16000)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_band_limit_and_codec_remove_high_frequencies() -> None:
    x = _speechlike().astype(np.float64) + 0.05 * np.random.default_rng(0).standard_normal(32000)
    for y in (augment.band_limit(x, 300, 3400), augment.mu_law_8k(x)):
        assert y.size == x.size
        assert _band_energy(y, 4500, 8000) < 0.01 * _band_energy(x, 4500, 8000)
        assert _band_energy(y, 500, 3000) > 0.5 * _band_energy(x, 500, 3000)


def test_speed_pitch_vtlp_and_reverb_change_what_they_should() -> None:
    x = _speechlike().astype(np.float64)
    assert augment.speed(x, 1.1).size == pytest.approx(x.size / 1.1, abs=2)

    def centroid(y: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(y)) ** 2
        return float((np.fft.rfftfreq(y.size, 1 / 16000) * spec).sum() / spec.sum())

    up = augment.pitch_shift(x, 3.0)
    assert up.size == x.size and centroid(up) > 1.1 * centroid(x)
    warped = augment.vtlp(x, 0.9)
    assert warped.size == x.size and centroid(warped) < centroid(x)
    rng = np.random.default_rng(0)
    rir = augment.synthetic_rir(0.5, rng)
    tail = rir[int(0.25 * 16000) :]
    assert np.sum(tail**2) < np.sum(rir[: int(0.05 * 16000)] ** 2)  # decays
    wet = augment.reverb(x, 0.5, rng)
    # Reverberation fills the gaps between syllables.
    quiet = np.abs(x) < 0.002
    assert np.mean(np.abs(wet[quiet])) > 5 * np.mean(np.abs(x[quiet]))
