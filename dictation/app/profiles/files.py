"""What the parts of a profile share: the layout's names, JSON reading, ids, moving aside,
and `ProfileLocation`, the guard that keeps writes out of a deleted profile."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dictation.app.audio.constants import SAMPLE_RATE as SAMPLE_RATE  # the profile modules import it from here
from dictation.app.profiles.errors import CorruptProfileError, ProfileDeletedError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

PROFILE_JSON = "profile.json"
SETTINGS_JSON = "settings.json"
VOCABULARY_JSON = "vocabulary.json"
HISTORY = "history.jsonl"
TAKES = "takes"
CORRECTIONS = "corrections"
PENDING = "pending"
LEARNED = "learned"  # dictations accepted unchanged, kept for adaptation (profiles.learned)
LEARNING_JSON = "learning.json"  # the background adaptation runs (profiles.learned)
MODEL = "model"
MODEL_PREV = "model.prev"
# An adapted model its own check did not pass: kept, not used (`AdaptedModels.keep_candidate`).
MODEL_CANDIDATE = "model.candidate"
MODEL_METADATA = "metadata.json"
STAGE_PREFIX = ".stage-"
TRASH_PREFIX = ".trash-"
CREATE_PREFIX = ".create-"
IMPORT_PREFIX = ".import-"
# Where `profile check --repair` moves unreadable recordings (e.g. "takes.unreadable").
UNREADABLE_SUFFIX = ".unreadable"
# What an archive may hold (and all an export writes): pending dictations, moved-aside
# damaged files and hidden temp/staging entries stay on this machine.
# The material learned from use (learned/, learning.json) travels with the takes: it is the
# user's speech for adaptation as much as they are.
ARCHIVE_TOP_LEVEL = frozenset(
    {
        PROFILE_JSON,
        SETTINGS_JSON,
        VOCABULARY_JSON,
        HISTORY,
        TAKES,
        CORRECTIONS,
        LEARNED,
        LEARNING_JSON,
        MODEL,
        MODEL_PREV,
    }
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_id() -> str:
    """A take/pending id: sorts by creation time (to the microsecond); the random tail
    avoids collisions."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f") + "-" + secrets.token_hex(3)


def read_json(path: Path) -> Any:
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


def read_json_dict(path: Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict):
        raise CorruptProfileError(f"profile file {path} does not hold a JSON object")
    return data


def remove_dir(path: Path) -> None:
    """Delete a directory by renaming it away first, so it never appears half-deleted."""
    if not path.exists():
        return
    trash = path.parent / f"{TRASH_PREFIX}{secrets.token_hex(6)}"
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def keep_aside(path: Path) -> Path:
    """Rename a damaged file to ``<stem>.damaged-<time><suffix>`` beside it; return the new path.

    Never deletes: the user (or a later version) may still recover something from it.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.stem}.damaged-{stamp}{path.suffix}")
    while target.exists():
        target = path.with_name(f"{path.stem}.damaged-{stamp}-{secrets.token_hex(2)}{path.suffix}")
    os.rename(path, target)
    return target


def new_profile_token() -> str:
    """The id stored in a new profile's profile.json (an imported copy keeps its own)."""
    return secrets.token_hex(8)


def profile_token(info: dict) -> str:
    return str(info.get("id") or info.get("created") or "")


def pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # cannot tell cheaply; age decides instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProfileLocation:
    """A profile's folder, and the proof that it is still the one that was opened.

    Another process may delete the profile while this one holds it. Every write goes
    through `writing()`: it refuses when the folder is gone (or replaced by a new one
    of the same name), and turns "no such file or directory" during the write into
    ProfileDeletedError. Writes inside a profile never create missing parent folders
    (``make_parents=False``), so a late write cannot bring a deleted profile back.
    """

    def __init__(self, name: str, path: Path, info: dict) -> None:
        self.name = name
        self.path = path
        stat = path.stat()
        self._inode = (stat.st_dev, stat.st_ino)
        # Inode numbers are reused at once; the id in profile.json (the creation time for
        # profiles made before ids) tells a new profile of the same name from this one.
        self._token = profile_token(info)

    def exists(self) -> bool:
        """True while the folder that was opened is still there under its name."""
        try:
            stat = self.path.stat()
            if (stat.st_dev, stat.st_ino) != self._inode:
                return False
            info = json.loads((self.path / PROFILE_JSON).read_bytes())
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            return True  # unreadable just now: the folder is the same one, that must do
        return not isinstance(info, dict) or profile_token(info) == self._token

    def ensure_exists(self) -> None:
        if not self.exists():
            raise ProfileDeletedError(
                f"profile {self.name!r} was deleted (by another window or command); "
                "nothing was written to it. Open or create a profile to go on."
            )

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Context for a write into the profile (see the class docstring)."""
        self.ensure_exists()
        try:
            yield
        except OSError as exc:
            if exc.errno == errno.ENOENT and not self.exists():
                raise ProfileDeletedError(
                    f"profile {self.name!r} was deleted (by another window or command) "
                    f"while writing to it; nothing was written ({exc})"
                ) from exc
            raise

    def ensure_subdir(self, name: str) -> Path:
        """Create a private (0700) folder directly inside the profile, never its parents."""
        path = self.path / name
        with self.writing():
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=0o700)
            if (path.stat().st_mode & 0o777) != 0o700:
                path.chmod(0o700)
        return path
