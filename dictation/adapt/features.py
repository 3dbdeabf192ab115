"""Whisper's log-mel front end in plain torch (no torchaudio).

The STFT is a strided conv1d with windowed cos/sin kernels so that the front end exports
to ONNX inside the model graph (waveform in). Constants match Whisper: 16 kHz, 25 ms
window (400), 10 ms hop (160), 80 Slaney mel bands up to 8 kHz, log10 with an 80 dB
floor below the utterance maximum, scaled as (x + 4) / 4.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from dictation.adapt.augment import warp_frequencies
from dictation.app.audio.constants import SAMPLE_RATE

N_FFT = 400
HOP = 160
N_MELS = 80
VTLN_KNEE = 0.85  # cut-off of the mel filters' warp, as a share of Nyquist (docs/experiments/vtln_probe.py)


def _hz_to_mel(f: npt.ArrayLike) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log_region = f >= 1000.0
    return np.where(log_region, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(m: npt.ArrayLike) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f = m * (200.0 / 3)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), f)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS, warp: float = 1.0) -> np.ndarray:
    """Slaney-normalised triangular mel filters, shape (n_mels, n_fft // 2 + 1), on a
    frequency axis warped by `warp` (1.0: Whisper's own filters)."""
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    if warp != 1.0:  # VTLN, with the knee the probe in the model card was measured with
        fft_freqs = warp_frequencies(fft_freqs, warp, sr / 2, knee=VTLN_KNEE)
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2 : n_mels + 2] - mel_points[:n_mels]))[:, None]
    return weights.astype(np.float32)


class LogMel(nn.Module):
    """Waveform (batch, samples) at 16 kHz -> normalised log-mel (batch, 80, frames).

    `warp`: vocal-tract-length normalisation factor of the mel filters (1.0: none)."""

    cos_kernel: torch.Tensor  # buffers: constants that move with the module (.to)
    sin_kernel: torch.Tensor
    mel: torch.Tensor

    def __init__(self, warp: float = 1.0) -> None:
        super().__init__()
        n = torch.arange(N_FFT, dtype=torch.float64)
        window = 0.5 - 0.5 * torch.cos(2 * torch.pi * n / N_FFT)  # periodic Hann
        k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)[:, None]
        angle = 2 * torch.pi * k * n[None, :] / N_FFT
        self.register_buffer("cos_kernel", (torch.cos(angle) * window)[:, None, :].float(), persistent=False)
        self.register_buffer("sin_kernel", (-torch.sin(angle) * window)[:, None, :].float(), persistent=False)
        self.register_buffer("mel", torch.from_numpy(mel_filterbank(warp=warp)), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = F.pad(waveform[:, None, :], (N_FFT // 2, N_FFT // 2), mode="reflect")
        real = F.conv1d(x, self.cos_kernel, stride=HOP)
        imag = F.conv1d(x, self.sin_kernel, stride=HOP)
        power = (real**2 + imag**2)[:, :, :-1]  # Whisper drops the last STFT frame
        mel = torch.matmul(self.mel, power)
        log_spec = torch.log10(torch.clamp(mel, min=1e-10))
        peak = log_spec.amax(dim=(1, 2), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - 8.0)
        return (log_spec + 4.0) / 4.0


def num_frames(num_samples: int) -> int:
    """Number of mel frames LogMel produces for a waveform of num_samples."""
    return num_samples // HOP
