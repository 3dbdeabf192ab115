"""The model's adaptation parameters as one object: their initial values, their inner
learning rates, the Meta-SGD adaptation from those values, and writing values into the
model and putting the initial values back.

In the spirit of learn2learn's learner objects (`MetaSGD`): user-time adaptation, the
app's cross-validated check, the held-out evaluation, meta-training and the lab scripts
all adapt, transcribe with the adapted values and restore the model the same way, here.

The adaptation parameters are the LoRA factors and LayerNorms of the adapted blocks
(`Whisper.adaptation_parameter_names`). `Learner.adapt` runs the first-order inner loop a
step at a time, detaching between steps: the same values and losses, bit for bit, as
`inner_loop` over all steps at once (checked by a test), with no graph kept across steps
and a chance to cancel between them. Meta-training, which needs the inner loop
differentiable in the initial values and the rates, calls `inner_loop` on a trainable
learner's `init` and `inner_lrs` (`trainable=True`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

from dictation.adapt.inner_loop import Batches, inner_loop
from dictation.adapt.model.bundle import Bundle
from dictation.adapt.model.whisper import Whisper

Values = dict[str, torch.Tensor]


class AdaptationCancelled(Exception):
    """The user cancelled the adaptation."""


class Learner:
    """A model's adaptation parameters: initial values, per-tensor inner rates, adaptation.

    `init` holds a copy of the model's values of `names` taken when the learner is made
    (the meta-learned initial values of a freshly loaded bundle). With `trainable` they and
    the rates are `torch.nn.Parameter`s for an outer optimiser, and the model's own
    parameters are frozen so that the outer loss trains the learner's copies only.
    """

    def __init__(
        self,
        model: Whisper,
        inner_lrs: Mapping[str, torch.Tensor],
        names: Sequence[str] | None = None,
        trainable: bool = False,
    ) -> None:
        self.model = model
        self.names = list(names) if names is not None else model.adaptation_parameter_names()
        current = self.values()
        if trainable:
            for p in model.parameters():
                p.requires_grad_(False)
            device = self.device
            self.init: Values = {n: torch.nn.Parameter(v) for n, v in current.items()}
            self.inner_lrs: Values = {
                n: torch.nn.Parameter(inner_lrs[n].detach().clone().to(device)) for n in self.names
            }
        else:
            self.init = current
            self.inner_lrs = {n: inner_lrs[n] for n in self.names}

    @classmethod
    def from_bundle(cls, bundle: Bundle, trainable: bool = False) -> Learner:
        """The bundle model's adaptation parameters, its inner rates."""
        return cls(bundle.model, bundle.inner_lrs, bundle.adapt_names, trainable)

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are now."""
        return next(self.model.parameters()).device

    def values(self) -> Values:
        """A detached copy of the values the model holds now."""
        named = dict(self.model.named_parameters())
        return {n: named[n].detach().clone() for n in self.names}

    def write(self, values: Mapping[str, torch.Tensor]) -> None:
        """Copy `values` (some or all of the adaptation parameters) into the model."""
        # Looked up each time: the parameters are the model's, wherever it was moved since.
        named = dict(self.model.named_parameters())
        with torch.no_grad():
            for n, v in values.items():
                named[n].copy_(v)

    def restore(self) -> None:
        """Put the initial values back into the model."""
        self.write(self.init)

    @contextlib.contextmanager
    def restoring(self) -> Iterator[Learner]:
        """The initial values go back into the model when the block ends, however it ends."""
        try:
            yield self
        finally:
            self.restore()

    @contextlib.contextmanager
    def applied(self, values: Mapping[str, torch.Tensor]) -> Iterator[None]:
        """`values` in the model for the block (to transcribe with them); then the initial ones."""
        self.write(values)
        try:
            yield
        finally:
            self.restore()

    def adapt(
        self,
        batches: Batches,
        steps: int,
        start: Mapping[str, torch.Tensor] | None = None,
        lrs: Mapping[str, torch.Tensor] | None = None,
        precision: str = "float32",
        progress: Callable[[int, int, float], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> tuple[Values, list[float]]:
        """`steps` first-order Meta-SGD steps on `batches` from `start` (default: the initial
        values) at the rates `lrs` (default: the learner's), in `precision`. Returns the
        adapted values (detached, on the model's device; the model is not changed: `write`
        them) and the loss before each step. `progress(step, steps, loss)` after each step;
        `should_cancel()` before each, AdaptationCancelled when it says so."""
        device = self.device
        source = self.init if start is None else start
        rates = self.inner_lrs if lrs is None else lrs
        params = {n: source[n].detach().to(device, copy=True).requires_grad_(True) for n in self.names}
        rates_here = {n: rates[n].detach().to(device) for n in self.names}
        losses: list[float] = []
        for step in range(1, steps + 1):
            if should_cancel is not None and should_cancel():
                raise AdaptationCancelled("adaptation cancelled")
            fast, step_losses = inner_loop(self.model, params, rates_here, batches, 1, precision=precision)
            params = {n: p.detach().requires_grad_(True) for n, p in fast.items()}
            losses.extend(step_losses)
            if progress is not None:
                progress(step, steps, step_losses[-1])
        return {n: p.detach() for n, p in params.items()}, losses
