"""Where user data lives, and how it is written without ever being half-written.

Every file that holds user data (takes, profiles, settings, models' metadata) goes
through `atomic_write_*`: a temporary file in the same directory is written, flushed
and fsynced, then renamed over the target, and the directory is fsynced. A crash or a
full disk at any point leaves either the old file or the new one, never a mix.

A process killed mid-write can leave its temporary file (``.<name>.<8 chars>.tmp``);
`remove_stale_temp_files` removes those (and only those) once they are old.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "dictation"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

# Errors that mean "no room left", whatever the filesystem calls it.
_NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}

# The names `atomic_write_bytes` gives its temporary files (tempfile.mkstemp's 8 random
# characters between our prefix and suffix): nothing else is ever taken for one.
_TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
# A write takes seconds at most; a temp file older than this belongs to a dead process.
STALE_TEMP_SECONDS = 10 * 60

log = logging.getLogger(__name__)


class StorageError(OSError):
    """Writing user data failed; the previous version of the file is intact.

    Subclasses OSError so that callers that already handle I/O errors keep working.
    `errno`, `filename` and `__cause__` describe the underlying failure.
    """


class DiskFullError(StorageError):
    """The disk (or the user's quota) is full; nothing was written."""


def data_root(create: bool = True) -> Path:
    """The private directory for user data: `$DICTATION_HOME`, else platformdirs' user data dir.

    `create=False` only names it (it may not exist): for code that only reads, so that a
    data folder this user cannot write or chmod (read-only, someone else's) still reads.
    """
    override = os.environ.get("DICTATION_HOME")
    root = Path(override).expanduser() if override else platformdirs.user_data_path(APP_NAME)
    return ensure_private_dir(root) if create else root


def cache_root() -> Path:
    """The directory for data that can be rebuilt (exported models, corpora).

    `$DICTATION_CACHE` wins; else `$DICTATION_HOME/cache` when DICTATION_HOME is set (so a
    test or a portable install keeps everything in one place); else platformdirs' cache dir.
    """
    override = os.environ.get("DICTATION_CACHE")
    if override:
        root = Path(override).expanduser()
    elif os.environ.get("DICTATION_HOME"):
        root = Path(os.environ["DICTATION_HOME"]).expanduser() / "cache"
    else:
        root = platformdirs.user_cache_path(APP_NAME)
    return ensure_private_dir(root)


def ensure_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` (and parents) if needed and make it readable by its owner only (0700)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        # mkdir's mode is filtered by the umask and ignored for existing dirs.
        if (path.stat().st_mode & 0o777) != PRIVATE_DIR_MODE:
            path.chmod(PRIVATE_DIR_MODE)
    except OSError as exc:
        raise _wrap(exc, path, "create directory") from exc
    return path


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, mode: int = PRIVATE_FILE_MODE, *, make_parents: bool = True
) -> Path:
    """Write `data` to `path` atomically (temp file + fsync + rename + directory fsync).

    On any failure the temporary file is removed, the previous file (if any) is left
    untouched, and a `StorageError` (`DiskFullError` for a full disk) is raised.
    `make_parents=False`: a missing folder is an error (StorageError with errno ENOENT)
    instead of being created; for data inside a folder that another process may delete
    (a profile), which must not be brought back half-empty by a late write.
    """
    path = Path(path)
    directory = path.parent
    try:
        if make_parents:
            directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
    except OSError as exc:
        raise _wrap(exc, path, "write") from exc
    try:
        try:
            os.fchmod(fd, mode)
            write_all(fd, data, path)  # os.write may write less than asked
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, path)
    except BaseException as exc:  # includes KeyboardInterrupt: never leave a temp file behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise _wrap(exc, path, "write") from exc
        raise
    _fsync_dir(directory)
    return path


def atomic_write_text(
    path: str | os.PathLike[str],
    text: str,
    mode: int = PRIVATE_FILE_MODE,
    encoding: str = "utf-8",
    *,
    make_parents: bool = True,
) -> Path:
    """Atomically write `text` (see `atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode(encoding), mode, make_parents=make_parents)


def atomic_write_json(
    path: str | os.PathLike[str], obj: Any, mode: int = PRIVATE_FILE_MODE, *, make_parents: bool = True
) -> Path:
    """Atomically write `obj` as indented UTF-8 JSON (see `atomic_write_bytes`).

    The object is serialised before anything touches the disk, so a value that
    JSON cannot hold raises TypeError/ValueError and leaves the old file alone.
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text, mode, make_parents=make_parents)


def write_all(fd: int, data: bytes, path: str | os.PathLike[str]) -> None:
    """Write all of `data` to an open descriptor, looping over short writes.

    `os.write` may write less than asked (signals, pipes, some filesystems near full).
    Failures raise `StorageError` (`DiskFullError` for a full disk); a write that makes
    no progress counts as an I/O error rather than looping forever.
    """
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(errno.EIO, "the write made no progress")
            view = view[written:]
    except OSError as exc:
        raise _wrap(exc, Path(path), "write") from exc


def is_temp_file_name(name: str) -> bool:
    """True for a name `atomic_write_bytes` gives its temporary files, and only for those."""
    return bool(_TEMP_NAME.match(name))


def remove_stale_temp_files(directory: str | os.PathLike[str], older_than_s: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove the temporary files of interrupted writes in `directory` (not below it).

    Only names of our own pattern (`is_temp_file_name`), and only once they are older
    than `older_than_s`, so a write in progress elsewhere is never disturbed. Errors
    (a read-only folder, a file gone meanwhile) are logged and skipped: this is
    housekeeping, never a reason to fail. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not is_temp_file_name(entry.name):
            continue
        try:
            if (
                not entry.is_file(follow_symlinks=False)
                or now - entry.stat(follow_symlinks=False).st_mtime < older_than_s
            ):
                continue
            os.unlink(entry.path)
        except OSError as exc:
            log.warning("could not remove the leftover temporary file %s: %s", entry.path, exc)
            continue
        log.info("removed the leftover temporary file of an interrupted write: %s", entry.path)
        removed.append(Path(entry.path))
    return removed


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable. Some filesystems cannot fsync a directory: fine."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _wrap(exc: OSError, path: Path, action: str) -> StorageError:
    """Turn an OSError into a StorageError whose message tells the user what happened."""
    if isinstance(exc, StorageError):
        return exc
    if exc.errno in _NO_SPACE_ERRNOS:
        return DiskFullError(
            exc.errno,
            f"Not enough disk space to {action} {path}; free some space and try again (the previous version is intact)",
            str(path),
        )
    return StorageError(
        exc.errno or errno.EIO,
        f"Could not {action} {path}: {exc.strerror or exc} (the previous version is intact)",
        str(path),
    )
