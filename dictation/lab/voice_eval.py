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
    embedding = space.embed(learner.model, [a for a, _ in enroll])
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
        "voice_embeddings": _test_embeddings(learner, space, enroll, test),
    }


def _test_embeddings(learner: Learner, space: VoiceSpace, enroll: Items, test: Items) -> list[list[float]]:
    """One embedding per enrollment and test utterance (for the EER over speakers)."""
    import torch

    from dictation.adapt.voice_space.states import StateReader

    reader = StateReader(learner.model)
    states = [reader.read(a) for a, _ in enroll + test if a.size >= 0.3 * 16000]
    with torch.no_grad():
        emb = space.head(torch.from_numpy(np.stack(states))).numpy()
    return [[round(float(x), 5) for x in row] for row in emb]


def heldout_eer(rows: list[dict], n_enroll: int) -> float | None:
    """Verification EER over the rows' speakers (prototype of `n_enroll` vs later takes);
    pops the rows' embeddings, which are not part of the printed results."""
    from dictation.lab.voice_train import equal_error_rate, verification_trials

    embedded = {}
    for r in rows:
        emb = r.pop("voice_embeddings", None)
        if emb is not None and r.get("speaker") not in embedded:
            embedded[r["speaker"]] = np.asarray(emb, np.float32)
    if len(embedded) < 2:
        return None
    return equal_error_rate(*verification_trials(embedded, n_enroll))[0]
