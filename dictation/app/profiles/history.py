"""A profile's dictation history: ``history.jsonl``, one {"time", "text"} per line, append-only."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from dictation.app import storage
from dictation.app.profiles.files import HISTORY, ProfileLocation, now

log = logging.getLogger(__name__)


class HistoryLog:
    """Appends and reads the history file; a torn or corrupt line never hides the others."""

    def __init__(self, location: ProfileLocation) -> None:
        self.location = location
        self.path = location.path / HISTORY

    def append(self, text: str) -> None:
        """Append one dictated text (one JSON object per line), durably.

        The whole line is written (short writes are continued) and fsynced before this
        returns; any failure raises (StorageError, DiskFullError, ProfileDeletedError),
        so success is never reported for a line that is not all on disk.
        """
        line = json.dumps({"time": now(), "text": str(text)}, ensure_ascii=False) + "\n"
        with self.location.writing():
            # No O_CREAT of missing folders: a deleted profile stays deleted.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                # A torn last line (crash mid-write) must not swallow this entry as well.
                if os.fstat(fd).st_size > 0 and not _ends_with_newline(self.path):
                    line = "\n" + line
                storage.write_all(fd, line.encode("utf-8"), self.path)
                os.fsync(fd)
            finally:
                os.close(fd)

    def replace_last(self, old_text: str, new_text: str) -> bool:
        """Give the newest entry whose text is `old_text` the text `new_text` (a
        correction); its time stays. The file is rewritten atomically; False when no
        entry holds `old_text`. Unreadable lines are kept as they are."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return False
        lines = raw.split(b"\n")
        for number in range(len(lines) - 1, -1, -1):
            entry = _parse_line(lines[number])
            if entry is not None and entry["text"] == old_text:
                entry["text"] = str(new_text)
                lines[number] = json.dumps(entry, ensure_ascii=False).encode("utf-8")
                with self.location.writing():
                    storage.atomic_write_bytes(self.path, b"\n".join(lines), make_parents=False)
                return True
        return False

    def entries(self, limit: int | None = None) -> list[dict]:
        """History entries, oldest first; corrupt lines are skipped (and logged)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        entries = []
        for number, line in enumerate(raw.split(b"\n"), start=1):
            entry = _parse_line(line)
            if entry is None and line.strip():
                log.warning("skipping corrupt line %d of %s", number, self.path)
            elif entry is not None:
                entries.append(entry)
        return entries[-limit:] if limit else entries

    def unreadable_lines(self) -> list[int]:
        """Numbers (from 1) of the lines `entries` skips; [] when the file is missing."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = raw.split(b"\n")
        return [n for n, line in enumerate(lines, start=1) if line.strip() and _parse_line(line) is None]

    def clear(self) -> None:
        with self.location.writing():
            self.path.unlink(missing_ok=True)


def _parse_line(line: bytes) -> dict | None:
    if not line.strip():
        return None
    try:
        entry = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(entry, dict) and isinstance(entry.get("text"), str):
        return entry
    return None


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
