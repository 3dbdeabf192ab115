"""The voice space in the held-out evaluation: the bank alone (zero steps) and the bank
as the start of the MAML steps, per speaker; and the verification EER over speakers.

JSON keys (a contract): `voice_space_zero_wer`, `voice_space_wer` per speaker, their
means and relative gains in the summary, and `voice_space_eer` over the held-out speakers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from dictation.adapt.inner_loop import Batch
from dictation.adapt.learner import Learner
from dictation.adapt.voice_space.space import VoiceSpace
from dictation.app.text import wer, word_errors
from dictation.lab.voice_train import prototype

Items = list[tuple[np.ndarray, str]]


def voice_space_scores(
    learner: Learner,
    space: VoiceSpace,
    enroll: Items,
    batch: list[Batch],
    test: Items,
    transcribe_all: Callable[[Items], list[str]],
    steps: int,
    precision: str,
) -> dict:
    """WER of the bank's start for this voice (zero steps) and after `steps` MAML steps from
    it; the model holds the learner's initial values before and after."""
    if space.bank is None:
        return {}
    refs = [t for _, t in test]
    t0 = time.perf_counter()
    learner.restore()
    enroll_emb = _embed_each(learner, space, enroll)
    embedding = prototype(enroll_emb)
    start = space.bank.start(learner.init, embedding)
    with learner.applied(start):
        zero = transcribe_all(test)
    fast, _ = learner.adapt(batch, steps, start=start, precision=precision)
    seconds = time.perf_counter() - t0
    with learner.applied(fast):
        adapted = transcribe_all(test)
    weights = space.bank.weights(embedding)
    return {
        "voice_space_zero_wer": wer(refs, zero),
        "voice_space_wer": wer(refs, adapted),
        "voice_space_seconds": seconds,
        "voice_space_nearest": int(np.argmax(weights)),
        "voice_space_weight": round(float(weights.max()), 3),
        "voice_space_errors": [e for e, _ in word_errors(refs, adapted)],
        "voice_space_zero_errors": [e for e, _ in word_errors(refs, zero)],
        # Enrollment then test utterances, for the EER over speakers (not printed).
        "voice_embeddings": np.concatenate([enroll_emb, _embed_each(learner, space, test)]),
    }


def _embed_each(learner: Learner, space: VoiceSpace, items: Items) -> np.ndarray:
    """One embedding per utterance long enough to place (the model holds its initial values)."""
    import torch

    from dictation.adapt.voice_space.states import MIN_SECONDS, StateReader

    reader = StateReader(learner.model)
    states = [reader.read(a) for a, _ in items if a.size >= MIN_SECONDS * 16000]
    if not states:
        raise ValueError("no utterance is long enough to place the voice")
    with torch.no_grad():
        return space.head(torch.from_numpy(np.stack(states))).numpy()


def heldout_eer(embedded: dict[str, np.ndarray], n_enroll: int) -> float | None:
    """Verification EER over speakers (prototype of their first `n_enroll` utterances vs
    each later one); None with fewer than two speakers."""
    from dictation.lab.voice_train import equal_error_rate, verification_trials

    if len(embedded) < 2:
        return None
    return equal_error_rate(*verification_trials(embedded, n_enroll))[0]
