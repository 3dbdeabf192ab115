"""Adapt the bundled model to one speaker from a few enrollment takes.

Meta-SGD: the bundle's meta-learned initial adaptation parameters, its per-tensor inner
learning rates and its fixed number of inner steps. Runs inside the adaptation worker
process (torch); the GUI never imports this module.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dictation.decoding import DecodingRules, TextTokenizer
from dictation.meta.inner import inner_loop, make_batch
from dictation.model.bundle import Bundle, load_bundle
from dictation.model.inference import transcribe
from dictation.model.loader import backbone_dir


class AdaptationCancelled(Exception):
    """The user cancelled the adaptation."""


class AdaptationError(RuntimeError):
    """Adaptation could not run (no usable takes, device problem)."""


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when available; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise AdaptationError("no CUDA GPU is available; choose 'auto' or 'cpu'")
    if device not in ("cpu", "cuda"):
        raise AdaptationError(f"unknown device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


class AdaptedModel:
    """The bundle's model with a speaker's adapted parameters written in."""

    def __init__(self, bundle: Bundle, steps: int, losses: list[float], seconds: float, device: str) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.steps = steps
        self.losses = losses
        self.seconds = seconds
        self.device = device
        bdir = backbone_dir()
        self._tokenizer = TextTokenizer(bdir / "tokenizer.json")
        self._rules = DecodingRules.from_config(bdir / "config.json")

    def transcribe_torch(self, audio: np.ndarray) -> str:
        return transcribe(self.model, audio, self._rules, self._tokenizer)

    def export(self, out_dir: Path) -> dict:
        from dictation.export import export_model

        bdir = backbone_dir()
        return export_model(
            self.model, Path(out_dir), bdir / "tokenizer.json", bdir / "config.json",
            metadata={"model_version": self.bundle.info["version"], "adapted": True,
                      "adapt_steps": self.steps, "adapt_seconds": round(self.seconds, 2),
                      "adapt_device": self.device, "adapt_losses": [round(x, 4) for x in self.losses]},
        )


def adapt(
    takes: list[tuple[np.ndarray, str]],
    steps: int | None = None,
    device: str = "auto",
    progress: Callable[[int, int, float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    bundle: Bundle | None = None,
) -> AdaptedModel:
    """Run the inner loop on all takes; return the adapted model (not yet exported)."""
    if not takes:
        raise AdaptationError("no enrollment takes to adapt on")
    dev = resolve_device(device)
    t0 = time.perf_counter()
    bundle = bundle or load_bundle()
    model = bundle.model.to(dev).eval()
    steps = int(steps if steps is not None else bundle.info.get("inner_steps", 5))
    tokenizer = TextTokenizer(backbone_dir() / "tokenizer.json")
    batch = make_batch(model, tokenizer, takes, dev)
    names = bundle.adapt_names
    named = dict(model.named_parameters())
    params = {n: named[n].detach().clone().requires_grad_(True) for n in names}
    lrs = {n: bundle.inner_lrs[n].to(dev) for n in names}
    losses: list[float] = []
    for step in range(1, steps + 1):
        if should_cancel is not None and should_cancel():
            raise AdaptationCancelled("adaptation cancelled")
        params, step_losses = inner_loop(model, params, lrs, batch, 1)
        params = {n: p.detach().requires_grad_(True) for n, p in params.items()}
        losses.extend(step_losses)
        if progress is not None:
            progress(step, steps, step_losses[-1])
    with torch.no_grad():
        for n, p in params.items():
            named[n].copy_(p)
    model.to("cpu")
    return AdaptedModel(bundle, steps, losses, time.perf_counter() - t0, str(dev))
