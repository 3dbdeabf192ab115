"""The folder of all profiles: names, listing, deleting, leftovers of crashed operations."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from dictation.app import storage
from dictation.app.profiles.errors import ProfileError, ProfileExistsError, ProfileNotFoundError
from dictation.app.profiles.files import CREATE_PREFIX, IMPORT_PREFIX, TRASH_PREFIX

MAX_NAME_LENGTH = 64
# A create/import build dir older than this cannot belong to a running operation.
_STALE_BUILD_SECONDS = 3600


def profiles_root() -> Path:
    """The directory holding all profiles (created 0700 on first use)."""
    root = Path(storage.data_root()) / "profiles"
    storage.ensure_private_dir(root)
    return root


def profiles_dir() -> Path:
    """The directory holding all profiles, for reading only: neither created nor chmodded,
    so listing and opening work in a data folder this user cannot write."""
    return storage.data_root(create=False) / "profiles"


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
    """Names of all profile directories, sorted (corrupt ones too: ``open`` reports them).

    Only reads: an unwritable or someone else's data folder lists fine, a missing one
    lists nothing.
    """
    root = profiles_dir()
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return []
    names = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():
            continue  # staging/import/trash dirs
        try:
            validate_name(entry.name)
        except ProfileError:
            continue  # not ours
        names.append(entry.name)
    return sorted(names, key=str.casefold)


def refuse_existing(name: str, hint: str = "") -> None:
    """ProfileExistsError if a profile of that name exists in any letter case."""
    for existing in list_profiles():
        if existing.casefold() == name.casefold():
            raise ProfileExistsError(f"a profile named {existing!r} exists already{hint}")


def delete_profile(name: str) -> None:
    """Delete a profile and everything in it. Only ever on explicit user request.

    A process that still holds the profile gets ProfileDeletedError on its next write.
    """
    path = profiles_root() / validate_name(name)
    if not path.is_dir():
        raise ProfileNotFoundError(f"no profile named {name!r}")
    # Rename first so a half-deleted profile never looks like a (corrupt) profile.
    trash = profiles_root() / f"{TRASH_PREFIX}{secrets.token_hex(6)}"
    os.replace(path, trash)
    shutil.rmtree(trash)


def clean_root_leftovers(root: Path) -> None:
    """Remove what a crash in delete/create/import left in the profiles root.

    Trash is always garbage; a build dir only once it is old enough that no running
    create/import can still own it.
    """
    for entry in root.iterdir():
        if not entry.is_dir():
            continue
        if (
            entry.name.startswith(TRASH_PREFIX)
            or entry.name.startswith((CREATE_PREFIX, IMPORT_PREFIX))
            and time.time() - entry.stat().st_mtime > _STALE_BUILD_SECONDS
        ):
            shutil.rmtree(entry, ignore_errors=True)
