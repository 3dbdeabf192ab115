"""`Profile`: one user's profile folder, the facade over its parts.

The parts, each in its own module and reachable as attributes: ``take_store`` and
``correction_store`` (`Recordings`), ``models`` (`AdaptedModels`), ``history_log``
(`HistoryLog`), ``settings_store`` (`SettingsStore`), ``pending_store``
(`PendingDictations`), ``learned_material`` (`LearnedMaterial`). The methods here are the API callers use; they delegate.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import numpy as np

from dictation.app import storage
from dictation.app.profiles import archive, check
from dictation.app.profiles.errors import (
    CorruptProfileError,
    ProfileError,
    ProfileExistsError,
    ProfileNotFoundError,
    UnreadableFile,
)
from dictation.app.profiles.files import (
    CORRECTIONS,
    CREATE_PREFIX,
    FORMAT_VERSION,
    LEARNED,
    MODEL,
    MODEL_PREV,
    PENDING,
    PROFILE_JSON,
    TAKES,
    ProfileLocation,
    new_profile_token,
    now,
    read_json_dict,
)
from dictation.app.profiles.history import HistoryLog
from dictation.app.profiles.learned import LearnedItem, LearnedMaterial
from dictation.app.profiles.model import AdaptedModels
from dictation.app.profiles.pending import PendingDictation, PendingDictations
from dictation.app.profiles.root import (
    clean_root_leftovers,
    profiles_dir,
    profiles_root,
    refuse_existing,
    validate_name,
)
from dictation.app.profiles.settings import SettingsStore
from dictation.app.profiles.takes import Recordings, Take


class Profile:
    """One user's profile directory. Open with ``Profile.open`` or ``Profile.create``."""

    def __init__(self, name: str, path: Path, info: dict) -> None:
        self.name = name
        self.path = path
        self.info = info  # profile.json contents
        self.location = ProfileLocation(name, path, info)
        self.take_store = Recordings(self.location, TAKES)
        self.correction_store = Recordings(self.location, CORRECTIONS)
        self.models = AdaptedModels(self.location)
        self.history_log = HistoryLog(self.location)
        self.settings_store = SettingsStore(self.location)
        self.pending_store = PendingDictations(path / PENDING, self.location)
        self.learned_material = LearnedMaterial(self.location, self.correction_store)

    # -- life cycle -------------------------------------------------------------------

    @classmethod
    def create(cls, name: str) -> Profile:
        """Create an empty profile; ProfileExistsError if the name is taken (any case)."""
        validate_name(name)
        root = profiles_root()
        clean_root_leftovers(root)
        refuse_existing(name)
        # Build it under a hidden name, then rename: a crash never leaves a half profile.
        build = root / f"{CREATE_PREFIX}{secrets.token_hex(6)}"
        storage.ensure_private_dir(build)
        storage.ensure_private_dir(build / TAKES)
        storage.ensure_private_dir(build / CORRECTIONS)
        info = {"format_version": FORMAT_VERSION, "name": name, "created": now(), "id": new_profile_token()}
        storage.atomic_write_json(build / PROFILE_JSON, info)
        try:
            os.rename(build, root / name)  # fails if target appeared meanwhile (POSIX: non-empty)
        except OSError as exc:
            shutil.rmtree(build, ignore_errors=True)
            raise ProfileExistsError(f"cannot create profile {name!r}: {exc}") from exc
        return cls.open(name)

    @classmethod
    def open(cls, name: str) -> Profile:
        """Open an existing profile; CorruptProfileError names the bad file.

        Writes nothing of the user's: it only removes temporary files that interrupted
        writes left (old enough to be dead), and works in a read-only data folder.
        """
        validate_name(name)
        path = profiles_dir() / name
        if not path.is_dir():
            raise ProfileNotFoundError(f"no profile named {name!r} (in {path.parent})")
        profile = cls._open_path(path, name)
        for folder in (
            path,
            path / TAKES,
            path / CORRECTIONS,
            path / MODEL,
            path / MODEL_PREV,
            path / PENDING,
            path / LEARNED,
        ):
            storage.remove_stale_temp_files(folder)
        return profile

    @classmethod
    def _open_path(cls, path: Path, name: str) -> Profile:
        info = read_json_dict(path / PROFILE_JSON)
        version = info.get("format_version")
        if version != FORMAT_VERSION:
            raise CorruptProfileError(
                f"profile file {path / PROFILE_JSON} has format_version {version!r}; "
                f"this version of dictation reads format_version {FORMAT_VERSION} "
                "(a newer dictation may have written it)"
            )
        for sub in (TAKES, CORRECTIONS):
            if not (path / sub).is_dir():
                raise CorruptProfileError(f"profile directory is missing: {path / sub}")
        return cls(name, path, info)

    def exists(self) -> bool:
        """False once the profile was deleted (by this or another process)."""
        return self.location.exists()

    # -- takes and corrections --------------------------------------------------------

    def add_take(self, prompt_id: str, text: str, audio: np.ndarray, quality: dict) -> Take:
        """Save a take at once: WAV (0600) first, then its JSON, both atomically."""
        return self.take_store.add(prompt_id, text, audio, quality, None)

    def takes(self) -> list[Take]:
        """All readable enrollment takes, oldest first (unreadable ones: `unreadable_takes`)."""
        return self.take_store.readable()

    def remove_take(self, take_id: str) -> None:
        """Delete one take (its JSON first, so a crash leaves only an ignored WAV)."""
        self.take_store.remove(take_id)

    def add_correction(self, audio: np.ndarray, hypothesis: str, corrected: str) -> Take:
        """Keep a user correction (audio, what was recognised, what was meant)."""
        if not isinstance(hypothesis, str):
            raise ProfileError("hypothesis must be a string")
        return self.correction_store.add("correction", corrected, audio, {}, hypothesis)

    def corrections(self) -> list[Take]:
        """Readable user corrections, oldest first; extra adaptation data."""
        return self.correction_store.readable()

    def remove_correction(self, take_id: str) -> None:
        self.correction_store.remove(take_id)

    def learned(self) -> list[LearnedItem]:
        """Material learned from use (accepted dictations and corrections), oldest first."""
        return self.learned_material.items()

    def add_learned(
        self, audio: np.ndarray, text: str, source: str, confidence: float | None = None, hypothesis: str | None = None
    ) -> LearnedItem:
        """Keep a dictation accepted unchanged ("accepted") or corrected ("corrected") for
        adaptation; the oldest accepted ones make room past the cap (`profiles.learned`)."""
        return self.learned_material.add(audio, text, source, confidence, hypothesis)

    def remove_learned(self, item_id: str) -> None:
        """Delete one item of learned material (an accepted dictation or a correction)."""
        self.learned_material.delete(item_id)

    def unreadable_takes(self) -> list[UnreadableFile]:
        """Takes and corrections that `takes()`/`corrections()` leave out, each with the file
        and the reason (JSON unreadable, WAV missing or empty). Cheap: no decoding."""
        return self.take_store.unreadable() + self.correction_store.unreadable()

    # -- problems, for the user -------------------------------------------------------

    def problems(self) -> list[UnreadableFile]:
        """What this profile cannot use right now: unreadable recordings, and damaged
        settings/vocabulary files set aside since it was opened (``kept_at``)."""
        return self.unreadable_takes() + self.settings_store.recovered()

    def notice(self) -> str:
        """One paragraph telling the user what was left out or set aside; "" when nothing."""
        sentences = []
        recordings = self.unreadable_takes()
        if recordings:
            sentences.append(
                f"{len(recordings)} recording{'s' if len(recordings) > 1 else ''} of profile {self.name!r} "
                f"cannot be read and {'are' if len(recordings) > 1 else 'is'} left out "
                f"(`dictation profile check {self.name}` lists them; --repair moves them aside)."
            )
        for problem in self.settings_store.recovered():
            kept = f" (the damaged file is kept as {problem.kept_at.name})" if problem.kept_at else ""
            sentences.append(f"The file {problem.path.name} {problem.reason}{kept}.")
        return " ".join(sentences)

    # -- adapted model ----------------------------------------------------------------

    def model_dir(self) -> Path | None:
        """The installed adapted model dir, or None (use ``base_model.base_model_dir()``)."""
        return self.models.model_dir()

    @property
    def metadata(self) -> dict:
        """Metadata of the model in use (version, date, steps, before/after WER, ...); {} for base."""
        return self.models.metadata()

    def adapted_from(self) -> str | None:
        """Version of the speech model the installed adapted model was made from, or None."""
        return self.models.adapted_from()

    def outdated_model(self, installed_version: str) -> str | None:
        """The older base version the adapted model was made from, if not `installed_version`."""
        return self.models.outdated_model(installed_version)

    def previous_metadata(self) -> dict | None:
        """Metadata of the last good model kept as ``model.prev``, if any."""
        return self.models.previous_metadata()

    def new_stage_dir(self) -> Path:
        """A fresh pid-named staging dir inside the profile for a worker to export into."""
        return self.models.new_stage_dir()

    def clean_stale_staging(self) -> list[Path]:
        """Remove staging dirs of dead workers and leftover trash; return what was removed."""
        return self.models.clean_stale_staging()

    def install_model(self, staged_dir: Path, metadata: dict) -> None:
        """Install an exported model dir atomically; the current one becomes ``model.prev``."""
        self.models.install(staged_dir, metadata)

    def keep_candidate_model(self, staged_dir: Path, metadata: dict) -> Path:
        """Keep a model its check did not pass as ``model.candidate/``; nothing in use changes."""
        return self.models.keep_candidate(staged_dir, metadata)

    def candidate_metadata(self) -> dict | None:
        """Metadata of the model the last adaptation's check kept aside, if any."""
        return self.models.candidate_metadata()

    def restore_previous_model(self) -> None:
        """Go back to the last good model (``model.prev``); the current one is dropped."""
        self.models.restore_previous()

    def reset_to_base(self) -> None:
        """Uninstall the adapted models (current and previous); takes stay."""
        self.models.reset_to_base()

    # -- history, settings, vocabulary ------------------------------------------------

    def append_history(self, text: str) -> None:
        """Append one dictated text to history.jsonl; raises unless all of it is on disk."""
        self.history_log.append(text)

    def replace_history(self, old_text: str, new_text: str) -> bool:
        """Correct the newest history entry holding `old_text`; False if there is none."""
        return self.history_log.replace_last(old_text, new_text)

    def history(self, limit: int | None = None) -> list[dict]:
        """History entries, oldest first; corrupt lines are skipped (and logged)."""
        return self.history_log.entries(limit)

    def clear_history(self) -> None:
        self.history_log.clear()

    def settings(self) -> dict:
        """Saved settings ({} when never saved, or when damaged: kept aside, see `notice`)."""
        return self.settings_store.settings()

    def save_settings(self, settings: dict) -> None:
        self.settings_store.save_settings(settings)

    def vocabulary(self) -> list[str]:
        """The user's own words (names, jargon), in the order saved."""
        return self.settings_store.vocabulary()

    def save_vocabulary(self, words: list[str]) -> None:
        """Save the word list: stripped, duplicates (any case) and empties dropped."""
        self.settings_store.save_vocabulary(words)

    # -- pending dictations (see dictation.app.profiles.pending) ----------------------

    def save_pending(self, audio: np.ndarray) -> str:
        """Keep a dictation's audio until its text is delivered; return its id."""
        return self.pending_store.save_pending(audio)

    def pending(self) -> list[PendingDictation]:
        """Kept dictations whose text was not delivered yet, oldest first."""
        return self.pending_store.pending()

    def discard_pending(self, pending_id: str) -> None:
        """Drop a dictation's kept audio once its text was delivered."""
        self.pending_store.discard_pending(pending_id)

    # -- archive ----------------------------------------------------------------------

    def export_archive(self, path: Path, include_model: bool = True) -> list[UnreadableFile]:
        """Write the profile to a zip archive (written atomically); return what was left out.

        Left out: unreadable recordings (both files of each), damaged settings or
        vocabulary, and a model folder with a damaged file, which an import would refuse.
        """
        leave_out = []
        for problem in check.recording_problems(self, decode_audio=True):
            for suffix in (".json", ".wav"):
                leave_out.append(UnreadableFile(problem.path.with_suffix(suffix), problem.reason))
        leave_out += self.settings_store.problems()
        if include_model:
            for problem in check.model_problems(self, load_models=False, require_files=False):
                folder = self.path / problem.path.relative_to(self.path).parts[0]
                leave_out += [UnreadableFile(f, problem.reason) for f in folder.rglob("*") if f.is_file()]
        archive.export_archive(self.path, Path(path), include_model, leave_out)
        return leave_out

    @classmethod
    def import_archive(cls, path: Path, name: str | None = None) -> Profile:
        """Create a profile from an archive; checked entry by entry; never overwrites one."""
        return cls.open(archive.import_archive(Path(path), name))

    def __repr__(self) -> str:
        return f"Profile({self.name!r}, {str(self.path)!r})"
