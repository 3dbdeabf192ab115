"""A profile's recordings: enrollment takes (``takes/``) and corrections (``corrections/``).

A take exists once its JSON exists (the WAV is written first), so an interrupted add
leaves at most an orphan WAV, which is ignored. A take whose JSON is unreadable or
whose WAV is missing or empty is reported by `unreadable()` and left out of `readable()`:
one damaged file never makes the whole profile unusable.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from dictation.app import storage
from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.profiles.errors import CorruptProfileError, ProfileError, UnreadableFile
from dictation.app.profiles.files import (
    UNREADABLE_SUFFIX,
    ProfileLocation,
    new_id,
    now,
    read_json_dict,
)

log = logging.getLogger(__name__)

# The smallest WAV with a header; anything shorter is a truncated or empty file.
_WAV_HEADER_BYTES = 44


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


def checked_audio(audio: np.ndarray) -> np.ndarray:
    """16 kHz mono float32 audio, or ProfileError (nothing is written then)."""
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.ndim != 1 or samples.size == 0:
        raise ProfileError("take audio must be a non-empty 1-D array of 16 kHz samples")
    if not np.all(np.isfinite(samples)):
        raise ProfileError("take audio contains NaN or infinite samples")
    return samples


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A PCM-16 WAV file's bytes (clipped to [-1, 1]: integer PCM would wrap around)."""
    import soundfile  # lazily: keeps `import profiles` light

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(samples, -1.0, 1.0), int(sample_rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


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


class Recordings:
    """The recordings in one folder of a profile (``takes`` or ``corrections``)."""

    def __init__(self, location: ProfileLocation, folder_name: str) -> None:
        self.location = location
        self.folder = location.path / folder_name
        self._reported: set[Path] = set()  # unreadable files already logged

    def add(self, prompt_id: str, text: str, audio: np.ndarray, quality: dict, hypothesis: str | None) -> Take:
        """Save a recording at once: WAV (0600) first, then its JSON, both atomically."""
        if not isinstance(text, str) or not text.strip():
            raise ProfileError("a take needs a non-empty text")
        if not isinstance(quality, dict):
            raise ProfileError("take quality must be a dict")
        take_id = new_id()
        wav_path = self.folder / f"{take_id}.wav"
        record = {"id": take_id, "prompt_id": str(prompt_id), "text": text, "quality": quality, "created": now()}
        if hypothesis is not None:
            record["hypothesis"] = hypothesis
        try:
            json.dumps(record)
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"take quality flags are not JSON-serialisable: {exc}") from exc
        data = wav_bytes(checked_audio(audio))
        with self.location.writing():
            storage.atomic_write_bytes(wav_path, data, make_parents=False)
            storage.atomic_write_json(self.folder / f"{take_id}.json", record, make_parents=False)
        return _take_from_record(record, wav_path)

    def readable(self) -> list[Take]:
        """The readable recordings, oldest first (unreadable ones: see `unreadable`)."""
        takes, problems = self._scan()
        for problem in problems:
            if problem.path not in self._reported:
                self._reported.add(problem.path)
                log.warning("skipping an unreadable recording: %s", problem)
        return takes

    def unreadable(self) -> list[UnreadableFile]:
        """Recordings that `readable` leaves out: JSON unreadable, WAV missing or empty."""
        return self._scan()[1]

    def remove(self, take_id: str) -> None:
        """Delete one recording (its JSON first, so a crash leaves only an ignored WAV)."""
        json_path = self.folder / f"{take_id}.json"
        if PurePosixPath(take_id).name != take_id or "\\" in take_id or not json_path.is_file():
            raise ProfileError(f"no take {take_id!r} in profile {self.location.name!r}")
        with self.location.writing():
            json_path.unlink()
            (self.folder / f"{take_id}.wav").unlink(missing_ok=True)

    def move_aside(self, take_id: str) -> Path:
        """Move a recording's files (JSON and WAV, whichever exist) into
        ``<folder>.unreadable/``; return that folder. Nothing is deleted."""
        if PurePosixPath(take_id).name != take_id or "\\" in take_id:
            raise ProfileError(f"no take {take_id!r} in profile {self.location.name!r}")
        aside = self.location.ensure_subdir(self.folder.name + UNREADABLE_SUFFIX)
        with self.location.writing():
            for suffix in (".json", ".wav"):  # JSON first: the take stops existing at once
                source = self.folder / f"{take_id}{suffix}"
                if source.exists():
                    target = aside / source.name
                    if target.exists():
                        target = aside / f"{source.stem}.{new_id()}{suffix}"
                    shutil.move(source, target)
        return aside

    def _scan(self) -> tuple[list[Take], list[UnreadableFile]]:
        takes: list[Take] = []
        problems: list[UnreadableFile] = []
        try:
            json_paths = sorted(p for p in self.folder.glob("*.json") if not p.name.startswith("."))
        except OSError as exc:
            return [], [UnreadableFile(self.folder, f"the folder cannot be read: {exc}")]
        for json_path in json_paths:
            try:
                record = read_json_dict(json_path)
            except CorruptProfileError as exc:
                problems.append(UnreadableFile(json_path, f"take file is unreadable: {exc.__cause__ or exc}"))
                continue
            take_id = record.get("id")
            if take_id != json_path.stem or not isinstance(record.get("text"), str):
                problems.append(UnreadableFile(json_path, "take file lacks a matching 'id' or a 'text'"))
                continue
            wav_path = self.folder / f"{take_id}.wav"
            reason = _wav_problem(wav_path)
            if reason:
                problems.append(UnreadableFile(wav_path, f"{reason} (for {json_path.name})"))
                continue
            takes.append(_take_from_record(record, wav_path))
        return takes, problems


def _wav_problem(wav_path: Path) -> str | None:
    """Why a take's WAV cannot be used (cheap: no decoding), or None."""
    try:
        size = os.stat(wav_path).st_size
    except FileNotFoundError:
        return "take audio is missing"
    except OSError as exc:
        return f"take audio cannot be read: {exc}"
    if size < _WAV_HEADER_BYTES:
        return f"take audio is empty or truncated ({size} bytes)"
    return None
