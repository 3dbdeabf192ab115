"""Profile archives (zip): export, and an import that trusts nothing in the file.

Import refuses, with a message naming the entry: unsafe paths (absolute, ``..``, links),
unexpected or duplicate entries, encrypted entries, unknown compression, more than
`MAX_ARCHIVE_BYTES` unpacked, or more than `MAX_COMPRESSION_RATIO` times the archive's
size (zip bombs: a 3.6 MB zip of 3.5 GiB of zeros is refused before one byte is
unpacked). Entries are streamed to disk in chunks under a running budget, so memory
stays small whatever the archive says; an entry whose contents do not match its
declared size or checksum is refused. Everything is unpacked into a hidden build
folder and checked the way the app reads it (takes and their WAVs decode, models load
in onnxruntime, settings parse) before one rename makes it a profile: a bad archive
leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from dictation.app import storage
from dictation.app.profiles.errors import CorruptProfileError, ProfileError, ProfileExistsError, UnreadableFile
from dictation.app.profiles.files import (
    ARCHIVE_TOP_LEVEL,
    CORRECTIONS,
    IMPORT_PREFIX,
    MODEL,
    MODEL_PREV,
    PROFILE_JSON,
    TAKES,
)
from dictation.app.profiles.root import clean_root_leftovers, profiles_root, refuse_existing, validate_name

# Refuse archives that would unpack to more than this (zip bombs, wrong file).
MAX_ARCHIVE_BYTES = 4 * 1024**3
# Profiles are WAV (compresses ~1.1-3x) and ONNX (~1.1x): a hundredfold is a bomb. Small
# archives may compress better (JSON, a silent take), so the ratio counts above a floor.
MAX_COMPRESSION_RATIO = 100
RATIO_FLOOR_BYTES = 64 * 1024**2
MAX_ENTRIES = 100_000
_MAX_PROFILE_JSON_BYTES = 1024**2
_CHUNK = 1024**2
_COMPRESSIONS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_ENCRYPTED_FLAG = 0x1


def export_archive(profile_dir: Path, path: Path, include_model: bool, leave_out: list[UnreadableFile]) -> None:
    """Write a profile folder to a zip archive (written atomically, 0600).

    Only what an archive may hold (``ARCHIVE_TOP_LEVEL``): no hidden entries (temp files
    of interrupted writes, staging), no pending dictations, nothing moved aside, and not
    the files in `leave_out` (damaged ones that would make the archive unimportable).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ProfileError(f"cannot write {path}: the folder {path.parent} does not exist")
    skip = {problem.path for problem in leave_out}
    buffer_path = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with zipfile.ZipFile(buffer_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(profile_dir.rglob("*")):
                relative = file.relative_to(profile_dir)
                if relative.parts[0] not in ARCHIVE_TOP_LEVEL or any(p.startswith(".") for p in relative.parts):
                    continue
                if not include_model and relative.parts[0] in (MODEL, MODEL_PREV):
                    continue
                if file in skip or not file.is_file() or file.is_symlink():
                    continue
                archive.write(file, relative.as_posix())
        os.chmod(buffer_path, 0o600)
        os.replace(buffer_path, path)
    finally:
        buffer_path.unlink(missing_ok=True)


def import_archive(path: Path, name: str | None) -> str:
    """Unpack, check and install an archive as a new profile; return its name."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"archive not found: {path}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ProfileError(f"{path} is not a profile archive (zip): {exc}") from exc
    with archive:
        members = archive.infolist()
        check_members(path, members, path.stat().st_size)
        info = _read_profile_json(path, archive)
        name = validate_name(name if name is not None else str(info.get("name", "")))
        refuse_existing(name, "; import under another name (or delete that profile first)")
        root = profiles_root()
        clean_root_leftovers(root)
        build = root / f"{IMPORT_PREFIX}{secrets.token_hex(6)}"
        storage.ensure_private_dir(build)
        try:
            _unpack(path, archive, members, build)
            for sub in (TAKES, CORRECTIONS):
                storage.ensure_private_dir(build / sub)
            info["name"] = name
            storage.atomic_write_json(build / PROFILE_JSON, info)
            _validate(build, name)
            try:
                os.rename(build, root / name)  # fails if the name appeared meanwhile
            except OSError as exc:
                raise ProfileExistsError(f"cannot import as {name!r}: {exc}") from exc
        except CorruptProfileError as exc:
            detail = str(exc).replace(f"{build}{os.sep}", "")
            raise CorruptProfileError(
                f"{path} is not a valid profile archive (nothing was imported): {detail}"
            ) from exc
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
    return name


def check_members(path: Path, members: list[zipfile.ZipInfo], archive_size: int) -> None:
    """Refuse, before anything is unpacked, what no profile archive holds (see module doc)."""
    if len(members) > MAX_ENTRIES:
        raise ProfileError(f"{path}: archive holds {len(members)} entries; refusing")
    total = 0
    seen: set[str] = set()
    for member in members:
        parts = PurePosixPath(member.filename).parts
        if parts and parts[0] not in ARCHIVE_TOP_LEVEL:
            raise ProfileError(f"{path}: unexpected entry in profile archive: {member.filename!r}")
        if (
            not parts
            or member.filename.startswith("/")
            or "\\" in member.filename
            or ".." in parts
            or ":" in parts[0]
            or any(part.startswith(".") for part in parts)
        ):
            raise ProfileError(f"{path}: unsafe path in archive: {member.filename!r}")
        mode = member.external_attr >> 16
        if mode and (mode & 0o170000) == 0o120000:
            raise ProfileError(f"{path}: archive holds a symbolic link: {member.filename!r}")
        if member.flag_bits & _ENCRYPTED_FLAG:
            raise ProfileError(f"{path}: archive entry {member.filename!r} is encrypted; profile archives never are")
        if member.compress_type not in _COMPRESSIONS:
            raise ProfileError(
                f"{path}: archive entry {member.filename!r} uses an unknown compression (method {member.compress_type})"
            )
        key = member.filename.rstrip("/")
        if key in seen:
            raise ProfileError(f"{path}: archive holds {member.filename!r} twice")
        seen.add(key)
        total += member.file_size
    _check_budget(path, total, archive_size)


def _check_budget(path: Path, unpacked: int, archive_size: int) -> None:
    if unpacked > MAX_ARCHIVE_BYTES:
        raise ProfileError(
            f"{path}: archive would unpack to {unpacked} bytes (more than {MAX_ARCHIVE_BYTES}); refusing"
        )
    if unpacked > RATIO_FLOOR_BYTES and unpacked > MAX_COMPRESSION_RATIO * max(archive_size, 1):
        raise ProfileError(
            f"{path}: archive would unpack to {unpacked} bytes, {unpacked // max(archive_size, 1)} times its "
            f"size (a zip bomb, or not a profile archive); refusing"
        )


def _read_profile_json(path: Path, archive: zipfile.ZipFile) -> dict:
    try:
        member = archive.getinfo(PROFILE_JSON)
    except KeyError:
        raise ProfileError(f"{path} has no readable {PROFILE_JSON}: it is missing") from None
    if member.file_size > _MAX_PROFILE_JSON_BYTES:
        raise ProfileError(f"{path}: {PROFILE_JSON} is {member.file_size} bytes; refusing")
    try:
        info = json.loads(archive.read(member).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ProfileError(f"{path} has no readable {PROFILE_JSON}: {exc}") from exc
    if not isinstance(info, dict):
        raise ProfileError(f"{path}: {PROFILE_JSON} is not a JSON object")
    return info


def _unpack(path: Path, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], build: Path) -> None:
    """Stream every entry into `build`, counting what comes out against the budget."""
    archive_size = path.stat().st_size
    unpacked = 0
    for member in members:
        target = build / member.filename
        if member.is_dir():
            storage.ensure_private_dir(target)
            continue
        if member.filename == PROFILE_JSON:
            continue  # written from the checked copy
        storage.ensure_private_dir(target.parent)
        written = 0
        try:
            with archive.open(member) as source, _private_file(target) as sink:
                while chunk := source.read(_CHUNK):
                    written += len(chunk)
                    unpacked += len(chunk)
                    if written > member.file_size:
                        break  # more data than declared: refused below
                    _check_budget(path, unpacked, archive_size)
                    storage.write_all(sink, chunk, target)
                os.fsync(sink)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
            raise ProfileError(
                f"{path}: archive entry {member.filename!r} is damaged or its sizes do not match its contents ({exc})"
            ) from exc
        if written != member.file_size:
            raise ProfileError(
                f"{path}: archive entry {member.filename!r} declares {member.file_size} bytes but holds "
                f"{'more' if written > member.file_size else written}"
            )


@contextlib.contextmanager
def _private_file(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)


def _validate(build: Path, name: str) -> None:
    """Open the unpacked profile as the app would and decode what it holds; CorruptProfileError
    names the first file that fails."""
    from dictation.app.profiles.check import model_problems, recording_problems
    from dictation.app.profiles.profile import Profile

    profile = Profile._open_path(build, name)
    problems = recording_problems(profile, decode_audio=True) + profile.settings_store.problems()
    problems += model_problems(profile, load_models=True, require_files=False)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CorruptProfileError(f"{problems[0]}{more}")
    try:
        _ = profile.metadata
    except OSError as exc:
        raise CorruptProfileError(f"model metadata cannot be read: {exc}") from exc
