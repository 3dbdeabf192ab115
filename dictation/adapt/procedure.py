"""Adapt the bundled model to one speaker from a few enrollment takes.

Meta-SGD: the bundle's meta-learned initial adaptation parameters, its per-tensor inner
learning rates and its fixed number of inner steps. The inner loop runs on the takes plus,
when the bundle names speeds (`enroll_speed_copies`), a copy of every take played at each
of those speeds: on meta-validation speakers that lowered the adapted WER (model card).
The passes run in the bundle's `inner_precision` ("auto": bfloat16 autocast on a CPU that
has it natively: 0.59x the float32 time for 10 takes on this project's CPU, model card).
Runs inside the adaptation worker process (torch); the GUI never imports this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.augment import check_speed_factors, with_speed_copies
from dictation.adapt.inner_loop import PRECISIONS, make_batches, resolve_precision
from dictation.adapt.learner import AdaptationCancelled as AdaptationCancelled  # raised here, by Learner.adapt
from dictation.adapt.learner import Learner
from dictation.adapt.model.bundle import Bundle, load_bundle
from dictation.adapt.model.inference import transcribe
from dictation.adapt.model.loader import backbone_dir
from dictation.app.decoding import DEFAULT_BEAM, TextTokenizer, load_tokenizer_and_rules
from dictation.app.text import wer

log = logging.getLogger(__name__)


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


def speed_copies_of(bundle: Bundle, override: Sequence[float] | None = None) -> tuple[float, ...]:
    """The enrollment speed factors: `override` when given (checked), else the bundle's
    (none for bundles that do not name any)."""
    if override is not None:
        return check_speed_factors(override)
    try:
        return check_speed_factors(bundle.info.get("enroll_speed_copies", ()))
    except (TypeError, ValueError) as exc:
        raise AdaptationError(f"{bundle.path / 'bundle.json'}: enroll_speed_copies: {exc}") from None


def precision_of(bundle: Bundle, override: str | None = None) -> str:
    """The inner loop's precision: `override` when given, else the bundle's
    `inner_precision` (float32 for bundles that do not name one); "auto" stays "auto"
    here and is resolved per device by the inner loop."""
    value = override if override is not None else bundle.info.get("inner_precision", "float32")
    if value not in PRECISIONS:
        where = "precision" if override is not None else f"{bundle.path / 'bundle.json'}: inner_precision"
        raise AdaptationError(f"{where} must be one of {', '.join(PRECISIONS)}, not {value!r}")
    return value


def steps_of(bundle: Bundle, n_takes: int, override: int | None = None) -> int:
    """Inner steps for `n_takes` takes: `override` when given, else the bundle's
    `inner_steps`, raised by its `inner_steps_by_takes` rule ([[min_takes, steps], ...]:
    from that many takes on, that many steps). More takes carry more of the voice and
    bear more steps before the model learns the phrases instead (model card)."""
    if override is not None:
        return int(override)
    steps = int(bundle.info.get("inner_steps", 5))
    rule = bundle.info.get("inner_steps_by_takes", [])
    try:
        pairs = [(int(m), int(k)) for m, k in rule]
    except (TypeError, ValueError):
        pairs = []
    if any(m < 1 or k < 1 for m, k in pairs) or len(pairs) != len(rule):
        raise AdaptationError(
            f"{bundle.path / 'bundle.json'}: inner_steps_by_takes must be "
            f"[[min_takes, steps], ...] of positive integers, not {rule!r}"
        )
    for min_takes, k in sorted(pairs):
        if n_takes >= min_takes:
            steps = k
    return steps


class AdaptedModel:
    """The bundle's model with a speaker's adapted parameters written in."""

    def __init__(
        self,
        bundle: Bundle,
        steps: int,
        losses: list[float],
        seconds: float,
        device: str,
        speed_copies: tuple[float, ...] = (),
        precision: str = "float32",
    ) -> None:
        self.bundle = bundle
        self.precision = precision
        self.speed_copies = speed_copies
        self.model = bundle.model
        self.steps = steps
        self.losses = losses
        self.seconds = seconds
        self.device = device
        self.voice_space: dict = {}  # where the voice space placed the voice, when it was used
        self._tokenizer, self._rules = load_tokenizer_and_rules(backbone_dir())

    def transcribe_torch(self, audio: np.ndarray) -> str:
        return transcribe(self.model, audio, self._rules, self._tokenizer)

    def export(self, out_dir: Path) -> dict:
        from dictation.adapt.export import export_model

        bdir = backbone_dir()
        return export_model(
            self.model,
            Path(out_dir),
            bdir / "tokenizer.json",
            bdir / "config.json",
            metadata={
                "model_version": self.bundle.info["version"],
                "adapted": True,
                "adapt_steps": self.steps,
                "adapt_seconds": round(self.seconds, 2),
                "adapt_device": self.device,
                "adapt_speed_copies": list(self.speed_copies),
                "adapt_precision": self.precision,
                "adapt_losses": [round(x, 4) for x in self.losses],
                "adapt_voice_space": self.voice_space,
            },
        )


def adapt(
    takes: list[tuple[np.ndarray, str]],
    steps: int | None = None,
    device: str = "auto",
    progress: Callable[[int, int, float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    bundle: Bundle | None = None,
    speed_copies: Sequence[float] | None = None,
    precision: str | None = None,
    voice_space: bool = True,
) -> AdaptedModel:
    """Run the inner loop on all takes (plus their speed copies: `speed_copies`, by default
    the bundle's) for `steps` steps (default: `steps_of` the bundle for this many takes),
    in `precision` (default: the bundle's, `precision_of`); return the adapted model (not
    yet exported). Timed from here, so the copies' resampling counts as adaptation time.
    With `voice_space` and a bundle that has one, the steps start from the bank's start
    for the takes' voice (`voice_start`) instead of the meta-learned initial values."""
    if not takes:
        raise AdaptationError("no enrollment takes to adapt on")
    dev = resolve_device(device)
    t0 = time.perf_counter()
    bundle = bundle or load_bundle()
    factors = speed_copies_of(bundle, speed_copies)
    used = resolve_precision(precision_of(bundle, precision), dev)
    model = bundle.model.to(dev).eval()
    steps = steps_of(bundle, len(takes), steps)
    tokenizer, _ = load_tokenizer_and_rules(backbone_dir())
    learner = Learner.from_bundle(bundle)
    start, placed = voice_start(learner, bundle, takes) if voice_space else (None, {})
    losses = _adapt_in_place(
        learner, tokenizer, with_speed_copies(takes, factors), steps, progress, should_cancel, used, start
    )
    model.to("cpu")
    adapted = AdaptedModel(bundle, steps, losses, time.perf_counter() - t0, str(dev), factors, used)
    adapted.voice_space = placed
    return adapted


def voice_start(
    learner: Learner, bundle: Bundle, takes: Sequence[tuple[np.ndarray, str]]
) -> tuple[dict[str, torch.Tensor] | None, dict]:
    """The bank's starting values for the takes' voice and where the voice was placed
    ({"nearest": entry, "weight": its share}), or (None, {}) when the bundle has no bank.
    The model must hold the learner's initial values (the space reads the unadapted encoder)."""
    from dictation.adapt.voice_space.space import VoiceSpaceError, load_voice_space

    try:
        space = load_voice_space(bundle.path)
    except VoiceSpaceError as exc:  # adapting from the meta-learned init still works
        log.warning("adapting without the voice space: %s", exc)
        return None, {}
    if space is None or space.bank is None:
        return None, {}
    device = learner.device
    learner.model.to("cpu")
    try:
        embedding = space.embed(learner.model, [audio for audio, _ in takes])
    finally:
        learner.model.to(device)
    weights = space.bank.weights(embedding)
    placed = {"nearest": int(np.argmax(weights)), "weight": round(float(weights.max()), 3)}
    return space.bank.start(learner.init, embedding), placed


def _adapt_in_place(
    learner: Learner,
    tokenizer: TextTokenizer,
    takes: list[tuple[np.ndarray, str]],
    steps: int,
    progress: Callable[[int, int, float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    precision: str = "float32",
    start: dict[str, torch.Tensor] | None = None,
) -> list[float]:
    """`steps` inner steps on `takes` from `start` (default: the learner's initial values;
    on the model's device), written into the model; returns the loss before each step."""
    batch = make_batches(learner.model, tokenizer, takes, learner.device)  # one batch's gradient, less time on a CPU
    adapted, losses = learner.adapt(
        batch, steps, start=start, precision=precision, progress=progress, should_cancel=should_cancel
    )
    learner.write(adapted)
    return losses


@dataclass
class CrossCheck:
    """How adaptation does on takes it did not see, estimated by k-fold cross-validation."""

    before_wer: float  # the base model on every take
    after_wer: float  # every take, transcribed by a model adapted on the other folds only
    n_takes: int
    folds: int
    seconds: float


CHECK_FOLDS = 2


def fold_of(index: int, folds: int) -> int:
    """Takes are dealt to folds in turn (deterministic, every fold gets early and late takes)."""
    return index % folds


def cross_check(
    takes: list[tuple[np.ndarray, str]],
    steps: int | None = None,
    device: str = "auto",
    should_cancel: Callable[[], bool] | None = None,
    bundle: Bundle | None = None,
    folds: int = CHECK_FOLDS,
    speed_copies: Sequence[float] | None = None,
    beam: int = DEFAULT_BEAM,
    precision: str | None = None,
    voice_space: bool = True,
) -> CrossCheck:
    """Word error rate of the base model and of held-out adapted models on the takes.

    Each fold's takes are transcribed by the model adapted (same steps, same rates) on
    the other folds, so every take is scored by a model that never saw it, and every
    take counts: a check on 10 takes instead of a held-back 2. Each fold adapts like
    `adapt` (with the speed copies of its training takes only, in the same precision).
    Torch transcription on the CPU with the app's beam (`beam`), like
    `AdaptedModel.transcribe_torch`. With `voice_space`, each fold starts where `adapt`
    would start for its training takes.
    """
    if len(takes) < 2:
        raise AdaptationError("cross-checking needs at least 2 takes")
    folds = max(2, min(folds, len(takes)))
    t0 = time.perf_counter()
    bundle = bundle or load_bundle()
    model = bundle.model.eval()
    tokenizer, rules = load_tokenizer_and_rules(backbone_dir())
    steps = steps_of(bundle, len(takes), steps)  # the installed model's protocol, checked on each fold
    factors = speed_copies_of(bundle, speed_copies)
    learner = Learner.from_bundle(bundle)  # every fold starts from the model as it is now
    dev = resolve_device(device)
    used = resolve_precision(precision_of(bundle, precision), dev)

    refs = [text for _, text in takes]
    before = [transcribe(model, audio, rules, tokenizer, beam=beam) for audio, _ in takes]
    after: list[str] = [""] * len(takes)
    try:
        for fold in range(folds):
            train = [t for i, t in enumerate(takes) if fold_of(i, folds) != fold]
            start, _ = voice_start(learner, bundle, train) if voice_space else (None, {})
            model.to(dev)
            _adapt_in_place(
                learner,
                tokenizer,
                with_speed_copies(train, factors),
                steps,
                should_cancel=should_cancel,
                precision=used,
                start=start,
            )
            model.to("cpu")
            for i, (audio, _) in enumerate(takes):
                if fold_of(i, folds) == fold:
                    after[i] = transcribe(model, audio, rules, tokenizer, beam=beam)
            learner.restore()
    finally:
        model.to("cpu")
        learner.restore()
    return CrossCheck(wer(refs, before), wer(refs, after), len(takes), folds, time.perf_counter() - t0)
