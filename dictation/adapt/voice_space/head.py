"""The voice embedding: a small head on pooled encoder states, trained with a metric
objective so that utterances of one voice lie close (cosine) and other voices far.

`VoiceHead` maps (..., layers, width) states to unit vectors. The input is standardised
with the training set's statistics (held as buffers, saved with the head). `ge2e_loss` is
the generalised end-to-end softmax loss: each utterance against every speaker's centroid,
its own speaker's centroid taken without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class VoiceHead(nn.Module):
    """Pooled states of the chosen `layers` -> standardised -> MLP -> unit embedding."""

    mean: torch.Tensor
    scale: torch.Tensor
    layer_index: torch.Tensor

    def __init__(self, layers: Sequence[int], width: int, dim: int = 128, hidden: int = 256) -> None:
        super().__init__()
        in_dim = len(layers) * width
        self.register_buffer("layer_index", torch.tensor(list(layers), dtype=torch.long))
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("scale", torch.ones(in_dim))
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.width, self.dim, self.hidden = width, dim, hidden

    @property
    def layers(self) -> list[int]:
        return [int(i) for i in self.layer_index]

    def set_statistics(self, states: np.ndarray) -> None:
        """Standardise with the mean and spread of `states` (utterances, layers, width)."""
        x = torch.from_numpy(states[:, self.layers, :].reshape(len(states), -1))
        self.mean.copy_(x.mean(0))
        self.scale.copy_(x.std(0).clamp_min(1e-4))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        x = states.index_select(-2, self.layer_index).flatten(-2)
        return F.normalize(self.net((x - self.mean) / self.scale), dim=-1)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to rebuild the head, as arrays (saved in the bundle)."""
        arrays = {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}
        arrays["shape"] = np.array([self.width, self.dim, self.hidden])
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> VoiceHead:
        width, dim, hidden = (int(v) for v in arrays["shape"])
        head = cls([int(i) for i in arrays["layer_index"]], width, dim, hidden)
        head.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items() if k != "shape"})
        return head.eval()


def ge2e_loss(emb: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GE2E softmax loss of embeddings (speakers, utterances, dim), unit length."""
    n_spk, n_utt, _ = emb.shape
    total = emb.sum(1)  # (S, D)
    centroids = F.normalize(total / n_utt, dim=-1)
    own = F.normalize((total[:, None, :] - emb) / (n_utt - 1), dim=-1)  # centroid without itself
    sim = torch.einsum("sud,kd->suk", emb, centroids)  # (S, U, S)
    own_sim = (emb * own).sum(-1)  # (S, U)
    eye = torch.eye(n_spk, dtype=torch.bool, device=emb.device)[:, None, :].expand(n_spk, n_utt, n_spk)
    sim = torch.where(eye, own_sim[:, :, None].expand_as(sim), sim)
    logits = w.clamp_min(1e-3) * sim + b
    target = torch.arange(n_spk, device=emb.device)[:, None].expand(n_spk, n_utt)
    return F.cross_entropy(logits.reshape(-1, n_spk), target.reshape(-1))
