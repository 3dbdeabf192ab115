"""A bank of adaptation starting points placed in the voice space.

Each entry is a centroid (a unit vector in the embedding space: the mean voice of a
cluster of training speakers) and a delta of every adaptation parameter (what the inner
loop changed when it adapted the meta-learned initial values to that cluster's speech).
A voice's start is the initial values plus `scale` times the deltas weighted by a softmax
of the voice's cosine similarity to the centroids (`sharpness` sets how much the nearest
dominates); a voice far from every centroid (below `min_similarity`) starts at the
initial values, unchanged.
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
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> VoiceBank:
        sharpness, scale, min_similarity = (float(v) for v in arrays["settings"])
        deltas = {k[6:]: np.asarray(v, np.float32) for k, v in arrays.items() if k.startswith("delta/")}
        return cls(np.asarray(arrays["centroids"], np.float32), deltas, sharpness, scale, min_similarity)


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
