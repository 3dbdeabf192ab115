"""The zero-step voice-space start ("placement"): before any enrollment, a profile's
model is the bundle's model with the voice bank's start for the user's voice written in.

From a few seconds of the user's first dictations (audio only: no text is needed), the
voice space places the voice among the training speakers (`voice_start`), and the bank's
start for it (its initial values plus the weighted deltas of the nearby clusters) is
written into the model with no inner step. It is exported like an adaptation, with
metadata that says so ("adapt_steps": 0, "adapt_voice_space": {..., "zero_step": true}).

No held-out check is possible here: dictations have no checked text to score a model on,
so the start is installed unchecked. That is why it is only ever installed for a profile
that has no adapted model of its own (`install_placement`): it never replaces an
enrollment or learned adaptation, and the first enrollment adaptation replaces it (and is
checked against the base model as usual). Nothing is deleted: an installed start becomes
`model.prev` like any model an adaptation replaces.

`run` is the entry point of the spawned worker process (`dictation.app.placement_job`);
like `dictation.adapt.worker` it imports no torch at module level.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dictation.adapt.worker import WorkerError, _adaptation_lock, _is_profile_error, _log_to_the_app_file
from dictation.adapt.worker_process import bound_resources

if TYPE_CHECKING:
    from dictation.adapt.model.bundle import Bundle
    from dictation.adapt.procedure import AdaptedModel
    from dictation.app.profiles import Profile

log = logging.getLogger(__name__)

KIND = "voice_space_start"  # the install metadata's "kind"
# Test-only: a bundle folder the worker places with instead of the bundled model (which
# has no voice space yet), so a test runs the real job end to end. Never set it in use.
BUNDLE_ENV = "DICTATION_TEST_PLACEMENT_BUNDLE"
NOT_CHECKED = "none: dictations have no checked text, so no held-out check is possible"


class PlacementError(RuntimeError):
    """No start can be placed (no voice space or bank, too little speech, a far voice)."""


def place(audios: Sequence[np.ndarray], bundle: Bundle | None = None) -> AdaptedModel:
    """The bundle's model (default: the bundled one) with the bank's start for the voice of
    `audios` (16 kHz mono speech) written in, not yet exported; zero inner steps."""
    from dictation.adapt.learner import Learner
    from dictation.adapt.model.bundle import load_bundle
    from dictation.adapt.procedure import AdaptedModel, voice_start
    from dictation.adapt.voice_space.space import VoiceSpaceError, load_voice_space

    t0 = time.perf_counter()
    bundle = bundle or load_bundle()
    try:
        space = load_voice_space(bundle.path)
    except VoiceSpaceError as exc:
        raise PlacementError(str(exc)) from exc
    if space is None or space.bank is None:
        raise PlacementError("the speech model has no voice bank to start from")
    bundle.model.to("cpu").eval()
    learner = Learner.from_bundle(bundle)
    try:
        start, placed = voice_start(learner, bundle, [(np.asarray(a, np.float32), "") for a in audios])
    except ValueError as exc:  # no clip long enough to place the voice
        raise PlacementError(str(exc)) from exc
    if start is None or not placed or placed["weight"] <= 0.0:
        raise PlacementError("the voice is far from every voice in the bank: the base model stays")
    learner.write(start)
    adapted = AdaptedModel(bundle, 0, [], time.perf_counter() - t0, "cpu")
    adapted.voice_space = {**placed, "zero_step": True}
    return adapted


def placement_metadata(adapted: Any, report: dict | None, clips: int, speech_seconds: float, seconds: float) -> dict:
    """What the profile records about an installed start (the window reads "kind")."""
    report = report or {}
    return {
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "kind": KIND,
        "zero_step": True,
        "steps": 0,
        "train_takes": 0,
        "corrections": 0,
        "learned": 0,
        "dictations": clips,
        "speech_seconds": round(speech_seconds, 2),
        "voice_space": dict(getattr(adapted, "voice_space", {}) or {}),
        "check": NOT_CHECKED,
        "decision": "installed: the voice space's start for your voice, before enrollment (not checked: no text)",
        "device": "cpu",
        "seconds": round(seconds, 2),
        "base_model_version": report.get("model_version"),
        "export": json.loads(
            json.dumps({k: v for k, v in report.items() if k in ("parity", "export_seconds", "opset")}, default=str)
        ),
    }


def install_placement(profile: Profile, stage: Path, metadata: dict) -> str | None:
    """Install the exported start at `stage` (inside one of the profile's staging dirs)
    unless the profile has an adapted model of its own, or an adaptation of it is running
    (whose result comes next); returns why it was not installed, or None when it was."""
    try:
        with _adaptation_lock(profile.name):  # no adaptation installs meanwhile
            if profile.model_dir() is not None:
                return "the profile already has an adapted model; the voice-space start is not needed"
            profile.install_model(stage, metadata)
    except WorkerError:
        return "an adaptation of this profile is running; its model comes next"
    return None


def run(profile_name: str, audios: list[np.ndarray], events: Any, cancel: Any, parent_pid: int | None = None) -> None:
    """Process entry point: place, export, install (`install_placement`). Events as the
    adaptation worker's: status, then one done ({"installed", "reason", "zero_step",
    "voice_space"}) or error."""
    from dictation.adapt.worker_process import ParentGone, die_with_parent, parent_alive, quiet_libraries

    threads = bound_resources()  # before torch is imported
    _log_to_the_app_file()
    quiet_libraries()

    def emit(event: dict) -> None:
        if event.get("type") in ("done", "error"):
            log.info("voice-space start of profile %r: %s", profile_name, event.get("reason") or event.get("message"))
        events.put(event)

    def check_stop() -> None:
        if not parent_alive(parent_pid):
            raise ParentGone()
        if cancel.is_set():
            raise WorkerError("cancelled")

    try:
        die_with_parent(parent_pid)
        _run(profile_name, audios, emit, check_stop, threads)
    except Exception as exc:
        if not parent_alive(parent_pid) or isinstance(exc, ParentGone):
            events.cancel_join_thread()  # nobody reads the events; the profile was left as it was
        elif isinstance(exc, (WorkerError, PlacementError)) or _is_profile_error(exc):
            emit({"type": "error", "message": str(exc)})
        else:
            log.exception("the voice-space start of profile %r failed", profile_name)
            emit({"type": "error", "message": f"the voice-space start failed: {type(exc).__name__}: {exc}"})


def _run(
    profile_name: str,
    audios: list[np.ndarray],
    emit: Callable[[dict], None],
    check_stop: Callable[[], None],
    threads: int,
) -> None:
    from dictation.adapt.model.bundle import load_bundle
    from dictation.app.profiles import Profile

    started = time.monotonic()
    profile = Profile.open(profile_name)
    if profile.model_dir() is not None:
        emit({"type": "done", "installed": False, "reason": "the profile already has an adapted model"})
        return
    import torch

    torch.set_num_threads(threads)
    emit({"type": "status", "message": "placing your voice in the voice space"})
    test_bundle = os.environ.get(BUNDLE_ENV)
    adapted = place(audios, load_bundle(Path(test_bundle)) if test_bundle else None)
    check_stop()
    stage_root = profile.new_stage_dir()
    try:
        emit({"type": "status", "message": "exporting the voice-space start"})
        report = adapted.export(stage_root / "model")
        check_stop()  # never install for a cancelled job or an app that is gone
        speech = sum(a.size for a in audios) / 16000
        metadata = placement_metadata(adapted, report, len(audios), speech, time.monotonic() - started)
        why_not = install_placement(profile, stage_root / "model", metadata)
        emit(
            {
                "type": "done",
                "installed": why_not is None,
                "reason": why_not or metadata["decision"],
                "zero_step": True,
                "voice_space": metadata["voice_space"],
            }
        )
    finally:
        shutil.rmtree(stage_root, ignore_errors=True)  # installed (moved out) or not
