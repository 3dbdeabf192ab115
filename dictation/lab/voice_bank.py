"""Building the voice bank: cluster the training speakers in the voice space, adapt the
meta-learned initial values to each cluster's speech, keep the deltas.

One adaptation per cluster, on utterances drawn in turn from its speakers, costs K inner
loops instead of one per training speaker, and each delta is an average over voices
rather than one voice's noise (speaker-cluster adapters, the cheapest form of them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dictation.adapt.inner_loop import make_batches, resolve_precision
from dictation.adapt.learner import Learner
from dictation.adapt.model.bundle import Bundle
from dictation.adapt.model.loader import backbone_dir
from dictation.adapt.procedure import precision_of
from dictation.adapt.voice_space.bank import VoiceBank, spherical_kmeans
from dictation.app.audio import load_audio
from dictation.app.decoding import load_tokenizer_and_rules
from dictation.lab.corpus.readers import Utterance, read_manifest
from dictation.lab.meta_tasks import speakers_by_split


def cluster_speakers(
    prototypes: dict[str, np.ndarray], k: int, seed: int = 0
) -> tuple[np.ndarray, dict[int, list[str]]]:
    """(centroids, cluster -> speakers) of the speakers' unit prototypes."""
    names = sorted(prototypes)
    centroids, assign = spherical_kmeans(np.stack([prototypes[n] for n in names]), k, seed)
    members: dict[int, list[str]] = {j: [] for j in range(len(centroids))}
    for name, j in zip(names, assign):
        members[int(j)].append(name)
    return centroids, members


# Utterances of each member a cluster's delta may learn from (its first ones by file); the
# rest are what `voice_bank_check` scores a delta on.
PER_SPEAKER = 10


def cluster_items(
    speakers: dict[str, list[Utterance]], members: list[str], per_cluster: int, per_speaker: int = PER_SPEAKER
) -> list[tuple[np.ndarray, str]]:
    """Up to `per_cluster` utterances taken in turn from the members' first `per_speaker`."""
    queues = [sorted(speakers[m], key=lambda u: str(u.audio_path))[:per_speaker] for m in members if m in speakers]
    chosen: list[Utterance] = []
    for i in range(per_speaker):
        for q in queues:
            if i < len(q) and len(chosen) < per_cluster:
                chosen.append(q[i])
    return [(load_audio(u.audio_path), u.text) for u in chosen]


def build_bank(
    bundle: Bundle,
    prototypes: dict[str, np.ndarray],
    corpus: Path,
    k: int,
    per_cluster: int = 40,
    steps: int = 10,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> tuple[VoiceBank, dict[int, list[str]]]:
    """The bank of `k` entries over the training speakers' `prototypes`, and its clusters."""
    centroids, members = cluster_speakers(prototypes, k, seed)
    speakers = speakers_by_split(read_manifest(corpus), 1)["train"]
    tok, _ = load_tokenizer_and_rules(backbone_dir())
    model = bundle.model.eval()
    learner = Learner.from_bundle(bundle)
    precision = resolve_precision(precision_of(bundle))
    deltas: dict[str, list[np.ndarray]] = {n: [] for n in learner.names}
    t0 = time.monotonic()
    for j in range(len(centroids)):
        items = cluster_items(speakers, members[j], per_cluster)
        fast, losses = learner.adapt(make_batches(model, tok, items), steps, precision=precision)
        for n in learner.names:
            deltas[n].append((fast[n] - learner.init[n]).float().cpu().numpy())
        log(
            f"[voice bank] cluster {j + 1}/{len(centroids)}: {len(members[j])} speakers, {len(items)} utterances, "
            f"loss {losses[0]:.3f} -> {losses[-1]:.3f} ({time.monotonic() - t0:.0f} s)"
        )
    learner.restore()
    return VoiceBank(centroids, {n: np.stack(v) for n, v in deltas.items()}), members
