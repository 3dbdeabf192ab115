"""Pooled encoder states: what the voice embedding reads from an utterance.

The encoder runs with the bundle's initial (unadapted) values, so the states do not move
when a profile's model is adapted. Per layer (the stem's output and each block's) the mean
and the standard deviation over time, so an utterance of any length gives a fixed vector.
"""

from __future__ import annotations

import numpy as np
import torch

from dictation.adapt.features import LogMel
from dictation.adapt.model.whisper import Whisper

# Shorter than this and the statistics are mostly noise; such a clip gives no state.
MIN_SECONDS = 0.3


class StateReader:
    """Reads pooled states of utterances with a model's encoder as it is now."""

    def __init__(self, model: Whisper) -> None:
        self.model = model
        self.logmel = LogMel()
        self.n_layers = len(model.encoder.blocks) + 1
        self.width = 2 * model.cfg.d_model

    @torch.no_grad()
    def read(self, audio: np.ndarray) -> np.ndarray:
        """(n_layers, 2 * d_model) float32: mean and std over time of each layer's output."""
        if audio.size < MIN_SECONDS * 16000:
            raise ValueError(f"an utterance needs at least {MIN_SECONDS} s of audio for a voice state")
        wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        x = self.model.encoder.embed(self.logmel(wave))
        layers = [x]
        for block in self.model.encoder.blocks:
            x, _ = block(x)
            layers.append(x)
        pooled = [torch.cat([h[0].mean(0), h[0].std(0)]) for h in layers]
        return torch.stack(pooled).numpy().astype(np.float32)
