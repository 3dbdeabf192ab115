"""The profile errors (messages meant for the user) and the unreadable-file report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ProfileError(Exception):
    """A profile operation failed; the message is meant for the user."""


class CorruptProfileError(ProfileError):
    """A profile file is unreadable, half-written, missing or of an unknown format."""


class ProfileNotFoundError(ProfileError):
    """No profile of that name."""


class ProfileExistsError(ProfileError):
    """A profile of that name exists already (never overwritten silently)."""


class ProfileDeletedError(ProfileError):
    """The profile was deleted (by another window or command) while this one held it.

    Writes to it fail with this instead of bringing the folder back half-empty.
    """


@dataclass(frozen=True)
class UnreadableFile:
    """One file of a profile that cannot be used, and why (for the user).

    `path` is the file (or folder) as it lies now; `kept_at`, where set, is where a
    damaged file was moved aside to (it is never deleted).
    """

    path: Path
    reason: str
    kept_at: Path | None = None

    def __str__(self) -> str:
        moved = f" (moved aside to {self.kept_at})" if self.kept_at else ""
        return f"{self.path}: {self.reason}{moved}"
