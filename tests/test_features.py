"""The log-mel front end's vocal-tract-length warp of the mel filters (VTLN probe)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dictation.adapt.augment import warp_frequencies
from dictation.adapt.features import SAMPLE_RATE, LogMel, mel_filterbank


def _centres(bank: np.ndarray) -> np.ndarray:
    bins = np.linspace(0, SAMPLE_RATE / 2, bank.shape[1])
    return (bank * bins).sum(1) / bank.sum(1)


def test_warp_one_is_whispers_own_filterbank() -> None:
    assert np.array_equal(mel_filterbank(warp=1.0), mel_filterbank())
    audio = torch.randn(1, 16000) * 0.1
    assert torch.equal(LogMel(warp=1.0)(audio), LogMel()(audio))


@pytest.mark.parametrize("warp", [0.88, 1.12])
def test_warped_axis_is_monotone_and_keeps_the_band(warp: float) -> None:
    f = np.linspace(0, 8000, 801)
    w = warp_frequencies(f, warp, 8000)
    assert w[0] == 0 and w[-1] == pytest.approx(8000)
    assert np.all(np.diff(w) > 0)
    assert w[100] == pytest.approx(1000 * warp)  # scaled below the cut-off


@pytest.mark.parametrize("warp", [0.9, 1.1])
def test_warped_filters_collect_energy_near_centre_over_warp(warp: float) -> None:
    plain, warped = _centres(mel_filterbank()), _centres(mel_filterbank(warp=warp))
    ratio = warped[5:60] / plain[5:60]  # bands well below the cut-off
    assert np.allclose(ratio, 1 / warp, rtol=0.04)
    # every filter still has weight, so no band goes silent
    assert mel_filterbank(warp=warp).sum(1).min() > 0


def test_a_warp_outside_the_plausible_range_is_refused() -> None:
    with pytest.raises(ValueError, match="warp factor"):
        mel_filterbank(warp=2.5)
