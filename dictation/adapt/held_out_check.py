"""The adaptation's own check: how models adapted on part of the user's takes do on the
rest, at several strengths of the update.

2-fold cross-validation like `procedure.cross_check` (each half of the takes adapted on,
the other half scored, both ways, the same steps, rates, speed copies and precision as
`procedure.adapt`), scored two ways on the held-back halves:

- the mean token log-loss (teacher-forced, every token of every held-back take): a
  smooth figure, far less noisy on 10 takes than a word count;
- the word error rate (the app's beam search), the figure the user reads.

Each is taken for the update shrunk toward the base model: the adaptation parameters
``init + a * (adapted - init)`` for every ``a`` in `SHRINK_FACTORS` (0 is the base model, 1
the adapted model as `adapt` makes it). The losses of all factors cost one forward pass
each; words are decoded for the base, the full update and the factor with the lowest loss
only. `dictation.adapt.install_rule` decides from these what to install.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dictation.adapt.augment import with_speed_copies
from dictation.adapt.inner_loop import batch_loss, make_batches, resolve_precision
from dictation.adapt.learner import AdaptationCancelled, Learner, Values
from dictation.adapt.model.bundle import Bundle, load_bundle
from dictation.adapt.model.inference import transcribe
from dictation.adapt.model.loader import backbone_dir
from dictation.adapt.procedure import (
    CHECK_FOLDS,
    AdaptationError,
    fold_of,
    precision_of,
    resolve_device,
    speed_copies_of,
    steps_of,
    voice_start,
)
from dictation.app.decoding import DEFAULT_BEAM, load_tokenizer_and_rules
from dictation.app.text import wer

# 0: the base model (what a user whose voice it already serves keeps); 1: the full update.
SHRINK_FACTORS = (0.0, 0.5, 1.0)


@dataclass
class HeldOutCheck:
    """Cross-validated figures of the update at each shrink factor (0.0 = the base model)."""

    losses: dict[float, float]  # factor -> mean token log-loss on the held-back takes
    wers: dict[float, float]  # factor -> WER on them: 0.0, 1.0 and the factor of lowest loss
    n_takes: int
    folds: int
    seconds: float

    @property
    def before_wer(self) -> float:
        return self.wers[0.0]

    @property
    def after_wer(self) -> float:
        """The full update's (what the app installed before shrinking existed)."""
        return self.wers[1.0]

    def best_factor(self) -> float:
        """The factor of lowest loss (ties: the smaller update)."""
        return min(self.losses, key=lambda a: (self.losses[a], a))


def shrunk(init: Mapping[str, torch.Tensor], adapted: Mapping[str, torch.Tensor], factor: float) -> Values:
    """``init + factor * (adapted - init)`` for every adaptation tensor."""
    return {n: init[n] + factor * (adapted[n].to(init[n].device) - init[n]) for n in init}


def held_out_check(
    takes: list[tuple[np.ndarray, str]],
    steps: int | None = None,
    device: str = "auto",
    should_cancel: Callable[[], bool] | None = None,
    bundle: Bundle | None = None,
    folds: int = CHECK_FOLDS,
    speed_copies: Sequence[float] | None = None,
    beam: int = DEFAULT_BEAM,
    precision: str | None = None,
    factors: Sequence[float] = SHRINK_FACTORS,
    voice_space: bool = True,
) -> HeldOutCheck:
    """Cross-validated loss at every factor and WER at 0, 1 and the best factor. With
    `voice_space`, each fold starts where `adapt` would (`voice_start`); factor 0 is the
    base model all the same.

    The bundle's model is left with its initial values, on the CPU."""
    if len(takes) < 2:
        raise AdaptationError("cross-checking needs at least 2 takes")
    factors = sorted({0.0, 1.0, *(float(a) for a in factors)})
    folds = max(2, min(folds, len(takes)))
    t0 = time.perf_counter()
    bundle = bundle or load_bundle()
    model = bundle.model.eval()
    tokenizer, rules = load_tokenizer_and_rules(backbone_dir())
    steps = steps_of(bundle, len(takes), steps)
    copies = speed_copies_of(bundle, speed_copies)
    learner = Learner.from_bundle(bundle)
    dev = resolve_device(device)
    used = resolve_precision(precision_of(bundle, precision), dev)
    init = {n: v.to("cpu") for n, v in learner.init.items()}

    fold_values: list[Values] = []
    loss_sums = dict.fromkeys(factors, 0.0)
    tokens = 0
    try:
        for fold in range(folds):
            train = [t for i, t in enumerate(takes) if fold_of(i, folds) != fold]
            held = [t for i, t in enumerate(takes) if fold_of(i, folds) == fold]
            start, _ = voice_start(learner, bundle, train) if voice_space else (None, {})
            model.to(dev)
            batches = make_batches(model, tokenizer, with_speed_copies(train, copies), learner.device)
            adapted, _ = learner.adapt(batches, steps, start=start, precision=used, should_cancel=should_cancel)
            model.to("cpu")
            values = {n: v.to("cpu") for n, v in adapted.items()}
            fold_values.append(values)
            held_batches = make_batches(model, tokenizer, held, "cpu")
            n_tokens = sum(b.n_tokens for b in held_batches)
            tokens += n_tokens
            with torch.no_grad():
                for factor in factors:
                    loss = batch_loss(model, shrunk(init, values, factor), held_batches)
                    loss_sums[factor] += float(loss) * n_tokens
    finally:
        model.to("cpu")
        learner.restore()
    losses = {a: s / max(tokens, 1) for a, s in loss_sums.items()}
    check = HeldOutCheck(losses, {}, len(takes), folds, 0.0)

    refs = [text for _, text in takes]
    check.wers[0.0] = wer(refs, [transcribe(model, audio, rules, tokenizer, beam=beam) for audio, _ in takes])
    for factor in sorted({1.0, check.best_factor()} - {0.0}):
        hyps = [""] * len(takes)
        for fold, values in enumerate(fold_values):
            if should_cancel is not None and should_cancel():
                raise AdaptationCancelled("adaptation cancelled")
            with learner.applied(shrunk(init, values, factor)):
                for i, (audio, _) in enumerate(takes):
                    if fold_of(i, folds) == fold:
                        hyps[i] = transcribe(model, audio, rules, tokenizer, beam=beam)
        check.wers[factor] = wer(refs, hyps)
    check.seconds = time.perf_counter() - t0
    return check


def shrink_in_place(model: torch.nn.Module, init: Mapping[str, torch.Tensor], factor: float) -> None:
    """Shrink the adaptation values `model` holds toward `init` (the base model's):
    ``init + factor * (current - init)``, written into the model."""
    named = dict(model.named_parameters())
    with torch.no_grad():
        for n, base in init.items():
            param = named[n]
            param.copy_(shrunk({n: base.to(param.device)}, {n: param.detach().clone()}, factor)[n])
