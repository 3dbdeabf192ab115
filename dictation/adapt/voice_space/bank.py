"""A bank of adaptation starting points placed in the voice space.

Each entry is a centroid (a unit vector in the embedding space: the mean voice of a
cluster of training speakers) and a delta of every adaptation parameter (what the inner
loop changed when it adapted the meta-learned initial values to that cluster's speech).
A voice's start is the initial values plus `scale` times the deltas weighted by a softmax
of the voice's cosine similarity to the centroids (`sharpness` sets how much the nearest
dominates); a voice far from every centroid (below `min_similarity`) starts at the
initial values, unchanged. Each entry also has its own share (`entry_scales`, 1 unless set:
`dictation.lab.voice_bank_check` measures how far each entry's delta carries over to
speakers it did not learn from, and sets 0 for one that does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class VoiceBank:
    centroids: np.ndarray  # (K, dim), unit rows
    deltas: dict[str, np.ndarray]  # parameter name -> (K, *shape)
    sharpness: float = 20.0
    scale: float = 1.0
    min_similarity: float = -1.0
    entry_scales: np.ndarray | None = None  # (K,) each entry's share of its delta; None: all 1

    @property
    def size(self) -> int:
        return int(self.centroids.shape[0])

    def weights(self, embedding: np.ndarray) -> np.ndarray:
        """How much of each entry a voice with this (unit) embedding gets; zeros when it is
        farther from every centroid than `min_similarity`."""
        sims = self.centroids @ np.asarray(embedding, dtype=np.float32)
        if float(sims.max()) < self.min_similarity:
            return np.zeros(self.size, np.float32)
        z = self.sharpness * (sims - sims.max())
        w = np.exp(z)
        return (w / w.sum()).astype(np.float32)

    def start(self, init: Mapping[str, torch.Tensor], embedding: np.ndarray) -> dict[str, torch.Tensor]:
        """The adaptation's starting values for this voice (a new dict; `init` is unchanged)."""
        w = self.weights(embedding) * self.scale
        if self.entry_scales is not None:
            w = w * np.asarray(self.entry_scales, np.float32)
        out = {}
        for name, value in init.items():
            delta = self.deltas.get(name)
            if delta is None or not w.any():
                out[name] = value.detach().clone()
                continue
            mix = np.tensordot(w, delta, axes=1)
            out[name] = value.detach() + torch.from_numpy(mix).to(value.dtype).to(value.device)
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        # float16 halves the bundle's share; the deltas' rounding is far below their spread.
        arrays = {f"delta/{n}": v.astype(np.float16) for n, v in self.deltas.items()}
        arrays["centroids"] = self.centroids
        arrays["settings"] = np.array([self.sharpness, self.scale, self.min_similarity], np.float32)
        if self.entry_scales is not None:
            arrays["entry_scales"] = np.asarray(self.entry_scales, np.float32)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> VoiceBank:
        sharpness, scale, min_similarity = (float(v) for v in arrays["settings"])
        deltas = {k[6:]: np.asarray(v, np.float32) for k, v in arrays.items() if k.startswith("delta/")}
        entry = arrays.get("entry_scales")  # a bank written before entry scales: all 1
        entry_scales = None if entry is None else np.asarray(entry, np.float32)
        centroids = np.asarray(arrays["centroids"], np.float32)
        if entry_scales is not None and entry_scales.shape != (centroids.shape[0],):
            raise ValueError(f"entry_scales has shape {entry_scales.shape}, expected ({centroids.shape[0]},)")
        return cls(centroids, deltas, sharpness, scale, min_similarity, entry_scales)


def spherical_kmeans(points: np.ndarray, k: int, seed: int = 0, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (k, dim) unit rows, assignment per point) of unit `points` by cosine."""
    rng = np.random.default_rng(seed)
    k = min(k, len(points))
    # k-means++ seeding on cosine distance, so that the seeds spread over the space.
    centroids = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d = 1.0 - np.max(points @ np.stack(centroids).T, axis=1)
        p = np.clip(d, 0, None) ** 2
        centroids.append(points[rng.choice(len(points), p=p / p.sum()) if p.sum() > 0 else rng.integers(len(points))])
    c = np.stack(centroids)
    assign = np.zeros(len(points), dtype=int)
    for _ in range(iterations):
        assign = np.argmax(points @ c.T, axis=1)
        new = np.stack([points[assign == j].sum(0) if (assign == j).any() else c[j] for j in range(k)])
        new /= np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-8)
        if np.allclose(new, c):
            break
        c = new
    return c.astype(np.float32), assign
