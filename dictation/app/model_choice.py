"""Which speech model to dictate with, falling back past ones that fail to load.

The chain, first usable one wins:

1. the profile's adapted model (``model/``),
2. the profile's previous model (``model.prev/``, the last good one),
3. the base model (the bundled model's ONNX export in the cache); if its files fail to
   load, the cache copy is exported again (a subprocess with torch, most of a minute)
   and loaded once more. A frozen app's shipped copy cannot be rebuilt.

A model "fails" when a file is missing, truncated or garbled (onnxruntime's
InvalidProtobuf/Fail, a tokenizer or JSON error) or when it loads but computes
non-finite numbers on a short probe. Each failure is reported once per process in
plain words (`on_problem`); the profile's files are never deleted or changed.

Used by `dictation transcribe --profile` and by the GUI::

    from dictation.app.model_choice import load_model

    loaded = load_model(profile, beam=4, on_problem=lambda p: show(p.message))
    loaded.transcriber.transcribe(audio)   # a ready runtime.Transcriber
    loaded.kind                            # "adapted", "previous" or "base"
    loaded.problems                        # every ModelProblem met on the way

`load_model(None)` loads the base model. It raises `runtime.ModelMissingError` only
when no model at all can be used (then the message holds every reason).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dictation.app.base_model import base_model_dir
from dictation.app.decoding import DEFAULT_BEAM
from dictation.app.runtime import ModelDamagedError, ModelMissingError, Transcriber

log = logging.getLogger(__name__)

KINDS = {"adapted": "model", "previous": "model.prev"}
_METADATA = "metadata.json"


class ProfileLike(Protocol):
    """What the chain needs of a `profiles.Profile`."""

    name: str
    path: Path


@dataclass
class ModelProblem:
    """A model that could not be used, in words for the user (`message`)."""

    kind: str  # "adapted", "previous" or "base"
    model_dir: Path
    detail: str  # what is wrong, e.g. "decoder.onnx is damaged"
    message: str


@dataclass
class LoadedModel:
    transcriber: Transcriber
    model_dir: Path
    kind: str  # "adapted", "previous" or "base"
    problems: list[ModelProblem] = field(default_factory=list)


_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


def candidates(profile: ProfileLike | None) -> list[tuple[str, Path]]:
    """(kind, folder) of the profile's installed models, best first (base not included)."""
    if profile is None:
        return []
    found = []
    for kind, sub in KINDS.items():
        folder = Path(profile.path) / sub
        if (folder / _METADATA).is_file():
            found.append((kind, folder))
    return found


def _describe(kind: str, profile: ProfileLike | None) -> str:
    if kind == "base":
        return "the base speech model"
    owner = f"of profile {profile.name!r}" if profile is not None else ""
    return f"the {'adapted' if kind == 'adapted' else 'previous'} model {owner}".rstrip()


def _detail(exc: Exception) -> str:
    if isinstance(exc, ModelDamagedError):
        return f"{exc.file} is damaged"
    text = str(exc)
    return text.split(": ", 1)[-1] if "is not a complete model" in text else text


def _load(folder: Path, beam: int, threads: int | None, check: bool) -> Transcriber:
    transcriber = Transcriber(folder, threads=threads, beam=beam)
    if check:
        transcriber.self_check()
    return transcriber


def load_model(
    profile: ProfileLike | None = None,
    beam: int = DEFAULT_BEAM,
    threads: int | None = None,
    on_problem: Callable[[ModelProblem], None] | None = None,
    on_build: Callable[[str], None] | None = None,
    check: bool = True,
) -> LoadedModel:
    """The first model of the chain that loads (see the module docstring).

    `on_problem` hears each failure not reported before in this process; `on_build`
    hears that the base model is being built or rebuilt (it takes most of a minute).
    `check`: also run the short probe (`Transcriber.self_check`, ~50 ms).
    """
    chain = candidates(profile)
    problems: list[ModelProblem] = []

    def note(kind: str, folder: Path, exc: Exception, next_step: str) -> None:
        detail = _detail(exc)
        message = f"{_describe(kind, profile)} cannot be used ({detail}); {next_step}."
        problem = ModelProblem(kind, folder, detail, message[0].upper() + message[1:])
        problems.append(problem)
        log.warning("model %s failed to load: %s", folder, exc)
        key = (str(folder), detail)
        with _reported_lock:
            fresh = key not in _reported
            _reported.add(key)
        if fresh and on_problem is not None:
            on_problem(problem)

    for i, (kind, folder) in enumerate(chain):
        try:
            return LoadedModel(_load(folder, beam, threads, check), folder, kind, problems)
        except (ModelMissingError, OSError, ValueError) as exc:
            nxt = "using the previous model instead" if i + 1 < len(chain) else "using the base model instead"
            note(kind, folder, exc, nxt)
    folder = base_model_dir(on_build=on_build)
    try:
        return LoadedModel(_load(folder, beam, threads, check), folder, "base", problems)
    except (ModelMissingError, OSError, ValueError) as exc:
        if getattr(sys, "frozen", False):
            note("base", folder, exc, "this installation is damaged: install it again")
            raise ModelMissingError(_summary(problems)) from exc
        note("base", folder, exc, "building it again")
    folder = base_model_dir(rebuild=True, on_build=on_build)
    try:
        return LoadedModel(_load(folder, beam, threads, check), folder, "base", problems)
    except (ModelMissingError, OSError, ValueError) as exc:
        note("base", folder, exc, "no model is left to use")
        raise ModelMissingError(_summary(problems)) from exc


def _summary(problems: list[ModelProblem]) -> str:
    return "no speech model can be used: " + "; ".join(p.message for p in problems)
