"""Find every unreadable file of a profile, and move unreadable recordings aside.

What `dictation profile check NAME [--repair]` runs. Checking only reads; repairing
never deletes: an unreadable take goes to ``takes.unreadable/`` (corrections to
``corrections.unreadable/``, accepted dictations to ``learned.unreadable/``), a damaged settings or vocabulary file is renamed beside
itself, and the rest of the profile works again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dictation.app.profiles.errors import UnreadableFile
from dictation.app.profiles.files import MODEL, MODEL_METADATA, MODEL_PREV
from dictation.app.profiles.validate import (
    json_problem,
    npy_problem,
    onnx_load_problem,
    onnx_structure_problem,
    wav_problem,
)

if TYPE_CHECKING:
    from dictation.app.profiles.profile import Profile
    from dictation.app.profiles.takes import Recordings

# What the runtime opens from a model folder (dictation.app.runtime.OnnxWhisper).
REQUIRED_MODEL_FILES = ("encoder.onnx", "decoder.onnx", "tokenizer.json", "config.json", "model.json")


def find_problems(profile: Profile, load_models: bool = True) -> list[UnreadableFile]:
    """Every unreadable file of the profile: recordings (JSON, and WAVs decoded), settings,
    vocabulary, history lines, model metadata and model files (present, non-empty, and
    ONNX files whole; loaded in onnxruntime when `load_models`). Reads only."""
    problems = recording_problems(profile, decode_audio=True)
    problems += profile.settings_store.problems()
    problems += history_problems(profile)
    problems += model_problems(profile, load_models=load_models, require_files=True)
    return problems


def recording_stores(profile: Profile) -> tuple[Recordings, ...]:
    """Every store of recordings with text: takes, corrections, accepted dictations."""
    return (profile.take_store, profile.correction_store, profile.learned_material.accepted_store)


def recording_problems(profile: Profile, decode_audio: bool) -> list[UnreadableFile]:
    """Unreadable takes, corrections and accepted dictations; with `decode_audio`, WAVs
    that do not decode too."""
    problems: list[UnreadableFile] = []
    for store in recording_stores(profile):
        problems += store.unreadable()
        if decode_audio:
            for take in store.readable():
                reason = wav_problem(take.wav_path)
                if reason:
                    problems.append(UnreadableFile(take.wav_path, f"take audio {reason.removeprefix('audio file ')}"))
    return problems


def history_problems(profile: Profile) -> list[UnreadableFile]:
    lines = profile.history_log.unreadable_lines()
    if not lines:
        return []
    shown = ", ".join(str(n) for n in lines[:10]) + (" ..." if len(lines) > 10 else "")
    return [UnreadableFile(profile.history_log.path, f"unreadable lines (skipped, the others are kept): {shown}")]


def model_problems(profile: Profile, load_models: bool, require_files: bool) -> list[UnreadableFile]:
    """Problems of ``model/`` and ``model.prev/``. `require_files`: also the files the
    runtime needs that are missing, and model folders without metadata."""
    problems: list[UnreadableFile] = []
    for sub in (MODEL, MODEL_PREV):
        folder = profile.path / sub
        if not folder.is_dir():
            continue
        metadata = folder / MODEL_METADATA
        if not metadata.is_file():
            if require_files and any(folder.iterdir()):
                problems.append(UnreadableFile(folder, "incomplete model (no metadata.json): it is not used"))
            continue
        reason = json_problem(metadata)
        if reason:
            problems.append(UnreadableFile(metadata, f"model metadata is {reason}"))
        if require_files:
            for name in REQUIRED_MODEL_FILES:
                if not (folder / name).exists():
                    problems.append(UnreadableFile(folder / name, "model file is missing"))
        for file in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            reason = _model_file_problem(file, load_models)
            if reason:
                problems.append(UnreadableFile(file, reason))
    return problems


def _model_file_problem(file: Path, load_models: bool) -> str | None:
    if file.stat().st_size == 0:
        return "model file is empty"
    if file.suffix == ".onnx":
        return onnx_load_problem(file) if load_models else onnx_structure_problem(file)
    if file.suffix == ".npy":
        return npy_problem(file)
    if file.suffix == ".json":
        return json_problem(file)
    return None


def repair(profile: Profile) -> tuple[list[UnreadableFile], list[UnreadableFile]]:
    """Move unreadable recordings aside and set damaged settings/vocabulary aside.

    Returns (repaired, remaining): what was moved (``kept_at`` says where) and what
    repair cannot fix (models: go back with `profile previous-model` or adapt again).
    Unreadable history lines are in neither: reading skips them, and rewriting the
    file could lose a line another process appends meanwhile. Nothing is deleted.
    """
    repaired: list[UnreadableFile] = []
    for store in recording_stores(profile):
        bad = store.unreadable() + [
            UnreadableFile(t.wav_path, f"take audio {reason.removeprefix('audio file ')}")
            for t in store.readable()
            if (reason := wav_problem(t.wav_path))
        ]
        moved: set[str] = set()
        for problem in bad:
            take_id = problem.path.stem
            if take_id in moved:
                continue
            moved.add(take_id)
            aside = store.move_aside(take_id)
            repaired.append(UnreadableFile(problem.path, problem.reason, kept_at=aside))
    store_problems = profile.settings_store.problems()
    if store_problems:
        profile.settings()  # each sets its damaged file aside
        profile.vocabulary()
        recovered = {p.path: p for p in profile.settings_store.recovered()}
        for problem in store_problems:
            done = recovered.get(problem.path)
            repaired.append(done if done is not None and done.kept_at else problem)
    history = profile.history_log.path  # its bad lines are skipped on reading: nothing to move
    remaining = [p for p in find_problems(profile, load_models=True) if p.kept_at is None and p.path != history]
    return [p for p in repaired if p.kept_at is not None], remaining
