"""A profile's adapted model: installed (``model/``), previous (``model.prev/``), staging.

The model is swapped by renames only; if a swap is interrupted between its two
renames, ``model/`` is missing and ``model.prev/`` (the previous model) is used, so
the user always has a working model.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from pathlib import Path

from dictation.app import storage
from dictation.app.profiles.errors import CorruptProfileError, ProfileError
from dictation.app.profiles.files import (
    MODEL,
    MODEL_CANDIDATE,
    MODEL_METADATA,
    MODEL_PREV,
    STAGE_PREFIX,
    TRASH_PREFIX,
    ProfileLocation,
    now,
    pid_alive,
    read_json_dict,
    remove_dir,
)

log = logging.getLogger(__name__)

# Staging dirs of a dead worker older than this are removed even where we cannot
# tell whether their pid is alive (non-POSIX).
_STALE_STAGE_SECONDS = 12 * 3600


class AdaptedModels:
    """The adapted models of one profile: the one in use, the last good one, staging."""

    def __init__(self, location: ProfileLocation) -> None:
        self.location = location
        self.path = location.path

    def model_dir(self) -> Path | None:
        """The installed adapted model dir, or None (use ``base_model.base_model_dir()``).

        If an install was interrupted between its two renames, ``model/`` is missing
        and the previous model (``model.prev/``) is still the one to use.
        """
        for sub in (MODEL, MODEL_PREV):
            candidate = self.path / sub
            if (candidate / MODEL_METADATA).is_file():
                return candidate
        return None

    def metadata(self) -> dict:
        """Metadata of the model in use (version, date, steps, before/after WER, ...); {} for base.

        CorruptProfileError names the file when it is unreadable.
        """
        model = self.model_dir()
        if model is None:
            return {}
        return read_json_dict(model / MODEL_METADATA)

    def adapted_from(self) -> str | None:
        """Version of the speech model the installed adapted model was made from.

        None for the base model, or for a model installed before the version was recorded.
        """
        version = self.metadata().get("base_model_version")
        return str(version) if version else None

    def outdated_model(self, installed_version: str) -> str | None:
        """The older base version, if the adapted model was made from another speech model
        than ``installed_version`` (the one this installation ships); else None.

        The adapted model keeps working (it is a complete model), but adapting again
        builds on the newer one. Nothing is changed here: only the user decides.
        """
        made_from = self.adapted_from()
        return made_from if made_from and made_from != installed_version else None

    def previous_metadata(self) -> dict | None:
        """Metadata of the last good model kept as ``model.prev``, if any."""
        prev = self.path / MODEL_PREV / MODEL_METADATA
        if self.model_dir() == self.path / MODEL and prev.is_file():
            return read_json_dict(prev)
        return None

    def new_stage_dir(self) -> Path:
        """A fresh staging dir inside the profile for a worker to export into.

        Named after the creating pid, so stale ones (dead worker) can be recognised.
        """
        self.clean_stale_staging()
        return self.location.ensure_subdir(f"{STAGE_PREFIX}{os.getpid()}-{secrets.token_hex(4)}")

    def clean_stale_staging(self) -> list[Path]:
        """Remove staging dirs of dead workers and leftover trash; return what was removed."""
        removed = []
        with self.location.writing():
            entries = list(self.path.iterdir())
        for entry in entries:
            if not entry.is_dir():
                continue
            if entry.name.startswith(TRASH_PREFIX):
                stale = True
            elif entry.name.startswith(STAGE_PREFIX):
                pid_text = entry.name[len(STAGE_PREFIX) :].split("-", 1)[0]
                alive = pid_text.isdigit() and pid_alive(int(pid_text))
                age = time.time() - entry.stat().st_mtime
                stale = not alive or age > _STALE_STAGE_SECONDS
            else:
                continue
            if stale:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        return removed

    def install(self, staged_dir: Path, metadata: dict) -> None:
        """Install an exported model dir atomically; the current one becomes ``model.prev``.

        ``staged_dir`` should be (or lie inside) a dir from ``new_stage_dir()`` (same
        filesystem: the swap is two renames); a dir elsewhere is first copied into a
        staging dir here.
        """
        staged_dir = Path(staged_dir)
        if not staged_dir.is_dir():
            raise ProfileError(f"staged model directory does not exist: {staged_dir}")
        if not any(staged_dir.glob("*.onnx")):
            raise ProfileError(f"staged model directory holds no .onnx model: {staged_dir}")
        if not isinstance(metadata, dict):
            raise ProfileError("model metadata must be a dict")
        try:
            relative = staged_dir.resolve().relative_to(self.path.resolve())
            inside = relative.parts[0].startswith(STAGE_PREFIX)
        except (ValueError, IndexError):
            inside = False
        if not inside:
            stage = self.new_stage_dir() / MODEL
            shutil.copytree(staged_dir, stage)
            staged_dir, relative = stage, stage.relative_to(self.path)
        stage_root = self.path / relative.parts[0]
        record = dict(metadata)
        record["version"] = self._current_version() + 1
        record.setdefault("installed", now())
        with self.location.writing():
            storage.atomic_write_json(staged_dir / MODEL_METADATA, record, make_parents=False)
            model, prev = self.path / MODEL, self.path / MODEL_PREV
            if (model / MODEL_METADATA).is_file():
                # The current model becomes the last good one; the one before is dropped.
                remove_dir(prev)
                os.replace(model, prev)
            elif model.exists():
                remove_dir(model)  # a model dir without metadata is not a model: never used
            # (If model/ was missing, model.prev/ is the model in use: it stays as last good.)
            os.replace(staged_dir, model)
        if stage_root != model:
            shutil.rmtree(stage_root, ignore_errors=True)  # export leftovers, if any

    def keep_candidate(self, staged_dir: Path, metadata: dict) -> Path:
        """Keep an exported model that was not installed as ``model.candidate/`` (replacing
        the one kept before) with its metadata; the model in use and ``model.prev`` stay.

        ``staged_dir`` lies inside a dir from ``new_stage_dir()`` (one rename)."""
        staged_dir = Path(staged_dir)
        if not any(staged_dir.glob("*.onnx")):
            raise ProfileError(f"staged model directory holds no .onnx model: {staged_dir}")
        target = self.path / MODEL_CANDIDATE
        with self.location.writing():
            record = dict(metadata, kept=now())
            storage.atomic_write_json(staged_dir / MODEL_METADATA, record, make_parents=False)
            remove_dir(target)
            os.replace(staged_dir, target)
        return target

    def candidate_metadata(self) -> dict | None:
        """Metadata of the model kept aside by the last adaptation's check, if any."""
        path = self.path / MODEL_CANDIDATE / MODEL_METADATA
        return read_json_dict(path) if path.is_file() else None

    def _current_version(self) -> int:
        """The version number of the model in use; a damaged metadata file must not stop a
        new model from being installed, so it counts from the previous one then."""
        try:
            return int(self.metadata().get("version", 0))
        except (CorruptProfileError, TypeError, ValueError) as exc:
            log.warning("the installed model's metadata is unreadable (%s); numbering from the previous one", exc)
        try:
            prev = self.path / MODEL_PREV / MODEL_METADATA
            return int(read_json_dict(prev).get("version", 0)) + 1 if prev.is_file() else 1
        except (CorruptProfileError, TypeError, ValueError):
            return 1

    def restore_previous(self) -> None:
        """Go back to the last good model (``model.prev``); the current one is dropped."""
        prev = self.path / MODEL_PREV
        if not (prev / MODEL_METADATA).is_file():
            raise ProfileError(f"profile {self.location.name!r} has no previous model to go back to")
        with self.location.writing():
            remove_dir(self.path / MODEL)
            os.replace(prev, self.path / MODEL)

    def reset_to_base(self) -> None:
        """Uninstall the adapted models (current and previous); takes stay."""
        with self.location.writing():
            remove_dir(self.path / MODEL)
            remove_dir(self.path / MODEL_PREV)
