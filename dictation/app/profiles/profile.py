"""Per-user profiles: takes, the adapted model, history, corrections, settings.

Layout of ``data_root()/profiles/<name>/`` (format_version 1)::

    profile.json          {"format_version": 1, "name": ..., "created": ...}
    settings.json         free-form dict (mic, device, auto_copy, hotkey, commands)
    vocabulary.json       {"words": [...]}
    takes/<id>.wav        16 kHz mono PCM-16, 0600
    takes/<id>.json       {"id", "prompt_id", "text", "quality", "created"}
    corrections/<id>.*    same, plus "hypothesis" (what the recogniser wrote)
    history.jsonl         one {"time", "text"} per line, append-only
    model/                installed adapted ONNX model + metadata.json
    model.prev/           the previously installed model (last good)
    .stage-<pid>-<hex>/   staging dirs of running or dead adaptation workers
    .trash-<hex>/         directories being deleted

A take exists once its JSON exists (the WAV is written first), so an interrupted
``add_take`` leaves at most an orphan WAV that is ignored. The model is swapped by
renames only; if a swap is interrupted between its two renames, ``model/`` is
missing and ``model.prev/`` (the previous model) is used, so the user always has a
working model. No torch and no Qt here: the GUI and the dictation path import it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from dictation.app import storage
from dictation.app.audio.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_NAME_LENGTH = 64
# Refuse archives that would unpack to more than this (zip bombs, wrong file).
MAX_ARCHIVE_BYTES = 4 * 1024**3

_PROFILE_JSON = "profile.json"
_SETTINGS_JSON = "settings.json"
_VOCABULARY_JSON = "vocabulary.json"
_HISTORY = "history.jsonl"
_TAKES = "takes"
_CORRECTIONS = "corrections"
_MODEL = "model"
_MODEL_PREV = "model.prev"
_MODEL_METADATA = "metadata.json"
_STAGE_PREFIX = ".stage-"
_TRASH_PREFIX = ".trash-"
_CREATE_PREFIX = ".create-"
_IMPORT_PREFIX = ".import-"
_ARCHIVE_TOP_LEVEL = frozenset(
    {_PROFILE_JSON, _SETTINGS_JSON, _VOCABULARY_JSON, _HISTORY, _TAKES, _CORRECTIONS, _MODEL, _MODEL_PREV}
)
# Staging dirs of a dead worker older than this are removed even where we cannot
# tell whether their pid is alive (non-POSIX).
_STALE_STAGE_SECONDS = 12 * 3600


class ProfileError(Exception):
    """A profile operation failed; the message is meant for the user."""


class CorruptProfileError(ProfileError):
    """A profile file is unreadable, half-written, missing or of an unknown format."""


class ProfileNotFoundError(ProfileError):
    """No profile of that name."""


class ProfileExistsError(ProfileError):
    """A profile of that name exists already (never overwritten silently)."""


@dataclass(frozen=True)
class Take:
    """One recorded phrase with its target text (an enrollment take or a correction)."""

    id: str
    text: str
    wav_path: Path
    quality: dict = field(default_factory=dict)
    prompt_id: str = ""
    created: str = ""
    hypothesis: str | None = None  # corrections only: what the recogniser wrote


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def profiles_root() -> Path:
    """The directory holding all profiles (created 0700 on first use)."""
    root = Path(storage.data_root()) / "profiles"
    storage.ensure_private_dir(root)
    return root


def validate_name(name: str) -> str:
    """Return ``name`` if it is a safe profile name, else raise ProfileError.

    Letters (any script), digits, space, ``_``, ``-`` and ``.``; starts with a letter
    or digit; no trailing dot or space (Windows drops them); at most 64 characters.
    """
    if not isinstance(name, str) or not name:
        raise ProfileError("profile name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ProfileError(f"profile name is longer than {MAX_NAME_LENGTH} characters")
    if not name[0].isalnum():
        raise ProfileError(f"profile name {name!r} must start with a letter or digit")
    if name[-1] in " .":
        raise ProfileError(f"profile name {name!r} must not end with a dot or a space")
    bad = sorted({c for c in name if not (c.isalnum() or c in " _-.")})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise ProfileError(
            f"profile name {name!r} contains characters that are not allowed: {shown} "
            "(use letters, digits, space, '_', '-', '.')"
        )
    return name


def list_profiles() -> list[str]:
    """Names of all profile directories, sorted (corrupt ones too: ``open`` reports them)."""
    names = []
    for entry in profiles_root().iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            continue  # staging/import/trash dirs
        try:
            validate_name(entry.name)
        except ProfileError:
            continue  # not ours
        names.append(entry.name)
    return sorted(names, key=str.casefold)


def delete_profile(name: str) -> None:
    """Delete a profile and everything in it. Only ever on explicit user request."""
    path = profiles_root() / validate_name(name)
    if not path.is_dir():
        raise ProfileNotFoundError(f"no profile named {name!r}")
    # Rename first so a half-deleted profile never looks like a (corrupt) profile.
    trash = profiles_root() / f"{_TRASH_PREFIX}{secrets.token_hex(6)}"
    os.replace(path, trash)
    shutil.rmtree(trash)


def _read_json(path: Path) -> Any:
    """Parse a JSON file; a missing or malformed one raises CorruptProfileError naming it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorruptProfileError(f"profile file is missing: {path}") from None
    except OSError as exc:
        raise CorruptProfileError(f"cannot read profile file {path}: {exc}") from exc
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptProfileError(
            f"profile file {path} is corrupt or half-written ({exc}); "
            "it was left untouched: restore it from a backup or export, or delete the profile"
        ) from exc


def _read_json_dict(path: Path) -> dict:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise CorruptProfileError(f"profile file {path} does not hold a JSON object")
    return data


def _checked_audio(audio: np.ndarray) -> np.ndarray:
    """16 kHz mono float32 take audio, or ProfileError (nothing is written then)."""
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.ndim != 1 or samples.size == 0:
        raise ProfileError("take audio must be a non-empty 1-D array of 16 kHz samples")
    if not np.all(np.isfinite(samples)):
        raise ProfileError("take audio contains NaN or infinite samples")
    return samples


def _new_id() -> str:
    # Sorts by creation time (to the microsecond); the random tail avoids collisions.
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f") + "-" + secrets.token_hex(3)


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # cannot tell cheaply; age decides instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_root_leftovers(root: Path) -> None:
    """Remove what a crash in delete/create/import left in the profiles root.

    Trash is always garbage; a build dir only once it is old enough that no running
    create/import can still own it.
    """
    for entry in root.iterdir():
        if not entry.is_dir():
            continue
        if (
            entry.name.startswith(_TRASH_PREFIX)
            or entry.name.startswith((_CREATE_PREFIX, _IMPORT_PREFIX))
            and time.time() - entry.stat().st_mtime > 3600
        ):
            shutil.rmtree(entry, ignore_errors=True)


def _remove_dir(path: Path) -> None:
    """Delete a directory by renaming it away first, so it never appears half-deleted."""
    if not path.exists():
        return
    trash = path.parent / f"{_TRASH_PREFIX}{secrets.token_hex(6)}"
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


class Profile:
    """One user's profile directory. Open with ``Profile.open`` or ``Profile.create``."""

    def __init__(self, name: str, path: Path, info: dict) -> None:
        self.name = name
        self.path = path
        self.info = info  # profile.json contents

    # -- life cycle -------------------------------------------------------------------

    @classmethod
    def create(cls, name: str) -> Profile:
        """Create an empty profile; ProfileExistsError if the name is taken (any case)."""
        validate_name(name)
        root = profiles_root()
        _clean_root_leftovers(root)
        for existing in list_profiles():
            if existing.casefold() == name.casefold():
                raise ProfileExistsError(f"a profile named {existing!r} exists already")
        # Build it under a hidden name, then rename: a crash never leaves a half profile.
        build = root / f"{_CREATE_PREFIX}{secrets.token_hex(6)}"
        storage.ensure_private_dir(build)
        storage.ensure_private_dir(build / _TAKES)
        storage.ensure_private_dir(build / _CORRECTIONS)
        info = {"format_version": FORMAT_VERSION, "name": name, "created": _now()}
        storage.atomic_write_json(build / _PROFILE_JSON, info)
        target = root / name
        try:
            os.rename(build, target)  # fails if target appeared meanwhile (POSIX: non-empty)
        except OSError as exc:
            shutil.rmtree(build, ignore_errors=True)
            raise ProfileExistsError(f"cannot create profile {name!r}: {exc}") from exc
        return cls.open(name)

    @classmethod
    def open(cls, name: str) -> Profile:
        """Open an existing profile; CorruptProfileError names the bad file. Never writes."""
        validate_name(name)
        path = profiles_root() / name
        if not path.is_dir():
            raise ProfileNotFoundError(f"no profile named {name!r} (in {path.parent})")
        return cls._open_path(path, name)

    @classmethod
    def _open_path(cls, path: Path, name: str) -> Profile:
        info = _read_json_dict(path / _PROFILE_JSON)
        version = info.get("format_version")
        if version != FORMAT_VERSION:
            raise CorruptProfileError(
                f"profile file {path / _PROFILE_JSON} has format_version {version!r}; "
                f"this version of dictation reads format_version {FORMAT_VERSION} "
                "(a newer dictation may have written it)"
            )
        for sub in (_TAKES, _CORRECTIONS):
            if not (path / sub).is_dir():
                raise CorruptProfileError(f"profile directory is missing: {path / sub}")
        return cls(name, path, info)

    # -- takes ------------------------------------------------------------------------

    def add_take(self, prompt_id: str, text: str, audio: np.ndarray, quality: dict) -> Take:
        """Save a take at once: WAV (0600) first, then its JSON, both atomically."""
        return self._add_recording(self.path / _TAKES, prompt_id, text, audio, quality, None)

    def takes(self) -> list[Take]:
        """All enrollment takes, oldest first."""
        return self._read_recordings(self.path / _TAKES)

    def remove_take(self, take_id: str) -> None:
        """Delete one take (its JSON first, so a crash leaves only an ignored WAV)."""
        self._remove_recording(self.path / _TAKES, take_id)

    def add_correction(self, audio: np.ndarray, hypothesis: str, corrected: str) -> Take:
        """Keep a user correction (audio, what was recognised, what was meant)."""
        if not isinstance(hypothesis, str):
            raise ProfileError("hypothesis must be a string")
        return self._add_recording(self.path / _CORRECTIONS, "correction", corrected, audio, {}, hypothesis)

    def corrections(self) -> list[Take]:
        """User corrections, oldest first; extra adaptation data."""
        return self._read_recordings(self.path / _CORRECTIONS)

    def remove_correction(self, take_id: str) -> None:
        self._remove_recording(self.path / _CORRECTIONS, take_id)

    def _add_recording(
        self,
        folder: Path,
        prompt_id: str,
        text: str,
        audio: np.ndarray,
        quality: dict,
        hypothesis: str | None,
    ) -> Take:
        if not isinstance(text, str) or not text.strip():
            raise ProfileError("a take needs a non-empty text")
        if not isinstance(quality, dict):
            raise ProfileError("take quality must be a dict")
        take_id = _new_id()
        wav_path = folder / f"{take_id}.wav"
        record = {
            "id": take_id,
            "prompt_id": str(prompt_id),
            "text": text,
            "quality": quality,
            "created": _now(),
        }
        if hypothesis is not None:
            record["hypothesis"] = hypothesis
        try:
            json.dumps(record)
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"take quality flags are not JSON-serialisable: {exc}") from exc
        samples = _checked_audio(audio)
        from dictation.app.audio import write_wav  # lazily: keeps `import profiles` light

        write_wav(wav_path, samples, SAMPLE_RATE, subtype="PCM_16")  # atomic, 0600
        storage.atomic_write_json(folder / f"{take_id}.json", record)
        return self._take_from_record(record, wav_path)

    def _read_recordings(self, folder: Path) -> list[Take]:
        result = []
        for json_path in sorted(folder.glob("*.json")):
            record = _read_json_dict(json_path)
            take_id = record.get("id")
            if take_id != json_path.stem or not isinstance(record.get("text"), str):
                raise CorruptProfileError(f"take file {json_path} lacks a matching 'id' or a 'text'")
            wav_path = folder / f"{take_id}.wav"
            if not wav_path.is_file():
                raise CorruptProfileError(f"take audio is missing: {wav_path} (for {json_path})")
            result.append(self._take_from_record(record, wav_path))
        return result

    @staticmethod
    def _take_from_record(record: dict, wav_path: Path) -> Take:
        quality = record.get("quality")
        return Take(
            id=record["id"],
            text=record["text"],
            wav_path=wav_path,
            quality=quality if isinstance(quality, dict) else {},
            prompt_id=str(record.get("prompt_id", "")),
            created=str(record.get("created", "")),
            hypothesis=record.get("hypothesis"),
        )

    def _remove_recording(self, folder: Path, take_id: str) -> None:
        json_path = folder / f"{take_id}.json"
        if PurePosixPath(take_id).name != take_id or "\\" in take_id or not json_path.is_file():
            raise ProfileError(f"no take {take_id!r} in profile {self.name!r}")
        json_path.unlink()
        (folder / f"{take_id}.wav").unlink(missing_ok=True)

    # -- adapted model ----------------------------------------------------------------

    def model_dir(self) -> Path | None:
        """The installed adapted model dir, or None (use ``runtime.base_model_dir()``).

        If an install was interrupted between its two renames, ``model/`` is missing
        and the previous model (``model.prev/``) is still the one to use.
        """
        for sub in (_MODEL, _MODEL_PREV):
            candidate = self.path / sub
            if (candidate / _MODEL_METADATA).is_file():
                return candidate
        return None

    @property
    def metadata(self) -> dict:
        """Metadata of the model in use (version, date, steps, before/after WER, ...); {} for base."""
        model = self.model_dir()
        if model is None:
            return {}
        return _read_json_dict(model / _MODEL_METADATA)

    def adapted_from(self) -> str | None:
        """Version of the speech model the installed adapted model was made from.

        None for the base model, or for a model installed before the version was recorded.
        """
        version = self.metadata.get("base_model_version")
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
        prev = self.path / _MODEL_PREV / _MODEL_METADATA
        if self.model_dir() == self.path / _MODEL and prev.is_file():
            return _read_json_dict(prev)
        return None

    def new_stage_dir(self) -> Path:
        """A fresh staging dir inside the profile for a worker to export into.

        Named after the creating pid, so stale ones (dead worker) can be recognised.
        """
        self.clean_stale_staging()
        stage = self.path / f"{_STAGE_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        storage.ensure_private_dir(stage)
        return stage

    def clean_stale_staging(self) -> list[Path]:
        """Remove staging dirs of dead workers and leftover trash; return what was removed."""
        removed = []
        for entry in self.path.iterdir():
            if not entry.is_dir():
                continue
            if entry.name.startswith(_TRASH_PREFIX):
                stale = True
            elif entry.name.startswith(_STAGE_PREFIX):
                pid_text = entry.name[len(_STAGE_PREFIX) :].split("-", 1)[0]
                alive = pid_text.isdigit() and _pid_alive(int(pid_text))
                age = time.time() - entry.stat().st_mtime
                stale = not alive or age > _STALE_STAGE_SECONDS
            else:
                continue
            if stale:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        return removed

    def install_model(self, staged_dir: Path, metadata: dict) -> None:
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
            inside = relative.parts[0].startswith(_STAGE_PREFIX)
        except (ValueError, IndexError):
            inside = False
        if not inside:
            stage = self.new_stage_dir() / _MODEL
            shutil.copytree(staged_dir, stage)
            staged_dir, relative = stage, stage.relative_to(self.path)
        stage_root = self.path / relative.parts[0]
        current = self.metadata
        record = dict(metadata)
        record["version"] = int(current.get("version", 0)) + 1
        record.setdefault("installed", _now())
        storage.atomic_write_json(staged_dir / _MODEL_METADATA, record)

        model, prev = self.path / _MODEL, self.path / _MODEL_PREV
        if (model / _MODEL_METADATA).is_file():
            # The current model becomes the last good one; the one before is dropped.
            _remove_dir(prev)
            os.replace(model, prev)
        elif model.exists():
            _remove_dir(model)  # a model dir without metadata is not a model: never used
        # (If model/ was missing, model.prev/ is the model in use: it stays as last good.)
        os.replace(staged_dir, model)
        if stage_root != model:
            shutil.rmtree(stage_root, ignore_errors=True)  # export leftovers, if any

    def restore_previous_model(self) -> None:
        """Go back to the last good model (``model.prev``); the current one is dropped."""
        prev = self.path / _MODEL_PREV
        if not (prev / _MODEL_METADATA).is_file():
            raise ProfileError(f"profile {self.name!r} has no previous model to go back to")
        _remove_dir(self.path / _MODEL)
        os.replace(prev, self.path / _MODEL)

    def reset_to_base(self) -> None:
        """Uninstall the adapted models (current and previous); takes stay."""
        _remove_dir(self.path / _MODEL)
        _remove_dir(self.path / _MODEL_PREV)

    # -- history ----------------------------------------------------------------------

    def append_history(self, text: str) -> None:
        """Append one dictated text to history.jsonl (one JSON object per line)."""
        path = self.path / _HISTORY
        line = json.dumps({"time": _now(), "text": str(text)}, ensure_ascii=False) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # A torn last line (crash mid-write) must not swallow this entry as well.
            if os.fstat(fd).st_size > 0 and not _ends_with_newline(path):
                line = "\n" + line
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def history(self, limit: int | None = None) -> list[dict]:
        """History entries, oldest first; corrupt lines are skipped (and logged)."""
        path = self.path / _HISTORY
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return []
        entries = []
        for number, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                log.warning("skipping corrupt line %d of %s", number, path)
                continue
            if isinstance(entry, dict) and isinstance(entry.get("text"), str):
                entries.append(entry)
            else:
                log.warning("skipping malformed line %d of %s", number, path)
        return entries[-limit:] if limit else entries

    def clear_history(self) -> None:
        (self.path / _HISTORY).unlink(missing_ok=True)

    # -- settings and vocabulary ------------------------------------------------------

    def settings(self) -> dict:
        """Saved settings ({} when never saved). CorruptProfileError if the file is bad."""
        path = self.path / _SETTINGS_JSON
        if not path.exists():
            return {}
        return _read_json_dict(path)

    def save_settings(self, settings: dict) -> None:
        if not isinstance(settings, dict):
            raise ProfileError("settings must be a dict")
        try:
            json.dumps(settings)
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"settings are not JSON-serialisable: {exc}") from exc
        storage.atomic_write_json(self.path / _SETTINGS_JSON, settings)

    def vocabulary(self) -> list[str]:
        """The user's own words (names, jargon), in the order saved."""
        path = self.path / _VOCABULARY_JSON
        if not path.exists():
            return []
        words = _read_json_dict(path).get("words")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise CorruptProfileError(f"profile file {path} has no list of words under 'words'")
        return words

    def save_vocabulary(self, words: list[str]) -> None:
        """Save the word list: stripped, duplicates (any case) and empties dropped."""
        seen: set[str] = set()
        cleaned = []
        for word in words:
            if not isinstance(word, str):
                raise ProfileError(f"vocabulary entries must be strings, not {type(word).__name__}")
            word = " ".join(word.split())
            if word and word.casefold() not in seen:
                seen.add(word.casefold())
                cleaned.append(word)
        storage.atomic_write_json(self.path / _VOCABULARY_JSON, {"words": cleaned})

    # -- archive ----------------------------------------------------------------------

    def export_archive(self, path: Path, include_model: bool = True) -> None:
        """Write the profile to a zip archive (written atomically)."""
        path = Path(path)
        if not path.parent.is_dir():
            raise ProfileError(f"cannot write {path}: the folder {path.parent} does not exist")
        buffer_path = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            with zipfile.ZipFile(buffer_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(self.path.rglob("*")):
                    relative = file.relative_to(self.path)
                    top = relative.parts[0]
                    if top.startswith("."):
                        continue  # staging / trash
                    if not include_model and top in (_MODEL, _MODEL_PREV):
                        continue
                    if file.is_file() and not file.is_symlink():
                        archive.write(file, relative.as_posix())
            os.chmod(buffer_path, 0o600)
            os.replace(buffer_path, path)
        finally:
            buffer_path.unlink(missing_ok=True)

    @classmethod
    def import_archive(cls, path: Path, name: str | None = None) -> Profile:
        """Create a profile from an archive; validated; never overwrites an existing one."""
        path = Path(path)
        if not path.is_file():
            raise ProfileError(f"archive not found: {path}")
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ProfileError(f"{path} is not a profile archive (zip): {exc}") from exc
        with archive:
            members = archive.infolist()
            _check_members(path, members)
            try:
                info = json.loads(archive.read(_PROFILE_JSON).decode("utf-8"))
            except (KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ProfileError(f"{path} has no readable {_PROFILE_JSON}: {exc}") from exc
            if not isinstance(info, dict):
                raise ProfileError(f"{path}: {_PROFILE_JSON} is not a JSON object")
            name = validate_name(name if name is not None else str(info.get("name", "")))
            for existing in list_profiles():
                if existing.casefold() == name.casefold():
                    raise ProfileExistsError(
                        f"a profile named {existing!r} exists already; "
                        "import under another name (or delete that profile first)"
                    )
            root = profiles_root()
            _clean_root_leftovers(root)
            build = root / f"{_IMPORT_PREFIX}{secrets.token_hex(6)}"
            storage.ensure_private_dir(build)
            try:
                for member in members:
                    target = build / member.filename
                    if member.is_dir():
                        storage.ensure_private_dir(target)
                        continue
                    storage.ensure_private_dir(target.parent)
                    with archive.open(member) as source:
                        data = source.read()
                    if member.filename != _PROFILE_JSON:
                        storage.atomic_write_bytes(target, data)
                for sub in (_TAKES, _CORRECTIONS):
                    storage.ensure_private_dir(build / sub)
                info["name"] = name
                storage.atomic_write_json(build / _PROFILE_JSON, info)
                # Validate everything as `open` and the readers would, before it is visible.
                profile = cls._open_path(build, name)
                profile.takes()
                profile.corrections()
                profile.settings()
                profile.vocabulary()
                _ = profile.metadata
                os.rename(build, root / name)
            except CorruptProfileError as exc:
                detail = str(exc).replace(f"{build}{os.sep}", "")
                raise CorruptProfileError(
                    f"{path} is not a valid profile archive (nothing was imported): {detail}"
                ) from exc
            finally:
                if build.exists():
                    shutil.rmtree(build, ignore_errors=True)
        return cls.open(name)

    def __repr__(self) -> str:
        return f"Profile({self.name!r}, {str(self.path)!r})"


def _check_members(path: Path, members: list[zipfile.ZipInfo]) -> None:
    """Reject archives with unsafe paths (absolute, ``..``, symlinks) or that are too big."""
    total = 0
    for member in members:
        parts = PurePosixPath(member.filename).parts
        if parts and parts[0] not in _ARCHIVE_TOP_LEVEL:
            raise ProfileError(f"{path}: unexpected entry in profile archive: {member.filename!r}")
        if (
            not parts
            or member.filename.startswith("/")
            or "\\" in member.filename
            or ".." in parts
            or ":" in parts[0]
            or parts[0].startswith(".")
        ):
            raise ProfileError(f"{path}: unsafe path in archive: {member.filename!r}")
        mode = member.external_attr >> 16
        if mode and (mode & 0o170000) == 0o120000:
            raise ProfileError(f"{path}: archive holds a symbolic link: {member.filename!r}")
        total += member.file_size
    if total > MAX_ARCHIVE_BYTES:
        raise ProfileError(f"{path}: archive would unpack to {total} bytes; refusing")


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
