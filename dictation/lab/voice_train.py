"""Training the voice embedding (`VoiceHead`) on cached corpus states, and scoring it.

Episodes draw `speakers_per_step` training speakers and `utterances_per_speaker` of each
speaker's cached states; the loss is GE2E's softmax (`ge2e_loss`). The score is the
equal error rate of speaker verification on speakers the head never saw: each speaker's
prototype (the mean embedding of their first `n_enroll` utterances, as a profile's
enrollment) against every later utterance of every speaker of the set.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from dictation.adapt.voice_space.head import VoiceHead, ge2e_loss

SpeakerStates = dict[str, np.ndarray]


@dataclass
class HeadConfig:
    layers: tuple[int, ...] = (0, 1, 2, 3, 4)
    dim: int = 128
    hidden: int = 256
    steps: int = 1500
    speakers_per_step: int = 32
    utterances_per_speaker: int = 6
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


def equal_error_rate(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): the rate at which false accepts equal false rejects, and the
    score there (accept when score >= threshold)."""
    order = np.argsort(-scores)
    s, y = scores[order], same[order].astype(bool)
    n_pos, n_neg = y.sum(), (~y).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("verification needs both same-speaker and other-speaker trials")
    false_reject = 1.0 - np.cumsum(y) / n_pos  # accepting the first i+1
    false_accept = np.cumsum(~y) / n_neg
    i = int(np.argmin(np.abs(false_reject - false_accept)))
    return float((false_reject[i] + false_accept[i]) / 2), float(s[i])


@torch.no_grad()
def embed_speakers(head: VoiceHead, states: SpeakerStates) -> dict[str, np.ndarray]:
    head.eval()
    return {s: head(torch.from_numpy(v)).numpy() for s, v in states.items()}


def prototype(embeddings: np.ndarray) -> np.ndarray:
    """The unit mean of a speaker's utterance embeddings."""
    mean = embeddings.mean(0)
    return mean / max(float(np.linalg.norm(mean)), 1e-8)


def verification_trials(embedded: dict[str, np.ndarray], n_enroll: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Scores (cosine) and same-speaker flags of every prototype-vs-later-utterance trial."""
    names = [s for s in sorted(embedded) if len(embedded[s]) > n_enroll]
    protos = np.stack([prototype(embedded[s][:n_enroll]) for s in names])
    scores, same = [], []
    for i, s in enumerate(names):
        tests = embedded[s][n_enroll:]
        sims = tests @ protos.T  # (tests, speakers)
        scores.append(sims.reshape(-1))
        same.append(np.tile(np.arange(len(names)) == i, len(tests)))
    return np.concatenate(scores), np.concatenate(same)


def verification_eer(head: VoiceHead, states: SpeakerStates, n_enroll: int = 10) -> tuple[float, float]:
    return equal_error_rate(*verification_trials(embed_speakers(head, states), n_enroll))


def train_head(
    train: SpeakerStates,
    cfg: HeadConfig,
    validation: SpeakerStates | None = None,
    log: Callable[[str], None] = print,
    eval_every: int = 250,
) -> tuple[VoiceHead, list[dict]]:
    """A head trained on `train`; with `validation`, the EER is logged every `eval_every`
    steps and the best head is the one returned."""
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    names = [s for s in sorted(train) if len(train[s]) >= cfg.utterances_per_speaker]
    width = next(iter(train.values())).shape[-1]
    head = VoiceHead(cfg.layers, width, cfg.dim, cfg.hidden)
    head.set_statistics(np.concatenate([train[s] for s in names]))
    w, b = torch.nn.Parameter(torch.tensor(10.0)), torch.nn.Parameter(torch.tensor(-5.0))
    opt = torch.optim.AdamW([*head.net.parameters(), w, b], lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict] = []
    best: tuple[float, dict] | None = None
    t0 = time.monotonic()
    for step in range(1, cfg.steps + 1):
        head.train()
        chosen = rng.sample(names, min(cfg.speakers_per_step, len(names)))
        batch = np.stack([train[s][rng.sample(range(len(train[s])), cfg.utterances_per_speaker)] for s in chosen])
        loss = ge2e_loss(head(torch.from_numpy(batch)), w, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if validation is not None and (step % eval_every == 0 or step == cfg.steps):
            eer, _ = verification_eer(head, validation)
            history.append({"step": step, "loss": round(loss.item(), 4), "validation_eer": round(eer, 4)})
            log(
                f"[voice head] step {step}: loss {loss.item():.3f}, validation EER {eer:.2%} ({time.monotonic() - t0:.0f} s)"
            )
            if best is None or eer < best[0]:
                best = (eer, {k: v.clone() for k, v in head.state_dict().items()})
    if best is not None:
        head.load_state_dict(best[1])
    return head.eval(), history


def speaker_mean_embeddings(head: VoiceHead, states: SpeakerStates, first: int = 10) -> dict[str, np.ndarray]:
    """Each speaker's prototype from their first `first` utterances."""
    return {s: prototype(e[:first]) for s, e in embed_speakers(head, states).items()}
