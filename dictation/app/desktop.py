"""Desktop integration: the menu entry and icons for the current user.

Install writes the freedesktop entry (its Exec pointing at the `dictation` being run) to
`$XDG_DATA_HOME/applications/` and the icons to `$XDG_DATA_HOME/icons/hicolor/*/apps/`,
each file atomically, and keeps a record of what it wrote (files with their checksums,
directories it had to create) in the data directory. Uninstall removes exactly that:
files still as written, then the directories it created if they are empty. A file the
user changed since is kept and named.

Start with the desktop: `set_autostart(True)` writes the XDG autostart entry
`$XDG_CONFIG_HOME/autostart/<APP_ID>.desktop` (atomically); `set_autostart(False)`
removes it (the user unticked the setting, which is asking for exactly that).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import sys
from pathlib import Path

from dictation.app import resources

APP_ID = "io.github.dictation.Dictation"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)
RECORD_NAME = "desktop-install.json"

log = logging.getLogger(__name__)


class DesktopError(Exception):
    """The desktop integration cannot be installed or removed (message says why)."""


# -- where things are ---------------------------------------------------------------


def _resource(relative: str) -> Path:
    try:
        return resources.require(relative)
    except resources.ResourceMissing as exc:
        raise DesktopError(str(exc)) from exc


def icon_file(size: int | None = None) -> Path:
    """The app icon: PNG of `size` pixels, or the SVG when size is None."""
    if size is None:
        return _resource(f"assets/icons/{APP_ID}.svg")
    return _resource(f"assets/icons/{APP_ID}-{size}.png")


def data_home() -> Path:
    """`$XDG_DATA_HOME`, else ~/.local/share (the freedesktop default)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    # The spec says relative values are invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".local" / "share"


def config_home() -> Path:
    """`$XDG_CONFIG_HOME`, else ~/.config (the freedesktop default)."""
    value = os.environ.get("XDG_CONFIG_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".config"


def autostart_path() -> Path:
    """The XDG autostart entry that starts the app when the user logs in."""
    return config_home() / "autostart" / f"{APP_ID}.desktop"


def record_path() -> Path:
    from dictation.app.storage import data_root

    return data_root() / RECORD_NAME


def launcher_command() -> list[str]:
    """The command line that starts this installation of the app."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "dictation" and argv0.is_file():
        return [str(argv0.absolute())]
    script = Path(sys.executable).with_name("dictation")  # the venv's console script
    if script.is_file():
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "dictation"]


def _exec_quote(arg: str) -> str:
    """Quote one argument for a desktop entry's Exec key (freedesktop rules)."""
    arg = arg.replace("%", "%%")  # a literal % (field codes start with one)
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`="):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    # In the .desktop file itself a backslash must be written twice (string escaping).
    return '"' + escaped.replace("\\", "\\\\") + '"'


def desktop_entry(command: list[str]) -> str:
    """The committed desktop entry with Exec (and TryExec) set to `command`."""
    template = _resource(f"packaging/linux/{APP_ID}.desktop").read_text(encoding="utf-8")
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            # TryExec is a plain path (no quoting); the menu hides the entry once it is gone.
            lines.append("TryExec=" + command[0].replace("\\", "\\\\"))
            lines.append("Exec=" + " ".join(_exec_quote(a) for a in command))
        elif not line.startswith("TryExec="):
            lines.append(line)
    return "\n".join(lines) + "\n"


def autostart_entry(command: list[str]) -> str:
    """The desktop entry, as an autostart entry (no startup notification at login)."""
    try:
        text = desktop_entry(command)
    except DesktopError:  # an installation without the packaging files: a minimal entry
        text = (
            "[Desktop Entry]\nType=Application\nName=Dictation\n"
            f"Exec={' '.join(_exec_quote(a) for a in command)}\nIcon={APP_ID}\nTerminal=false\n"
        )
    lines = [line for line in text.splitlines() if not line.startswith("StartupNotify=")]
    lines.append("X-GNOME-Autostart-enabled=true")
    return "\n".join(lines) + "\n"


def autostart_enabled() -> bool:
    return autostart_path().is_file()


def set_autostart(enabled: bool) -> Path:
    """Write (atomically) or remove the autostart entry; returns its path.

    Raises OSError (StorageError) when it cannot be written or removed."""
    from dictation.app.storage import atomic_write_text

    path = autostart_path()
    if enabled:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, autostart_entry(launcher_command()), mode=0o644)
        log.info("autostart entry written: %s", path)
    else:
        try:
            path.unlink()
            log.info("autostart entry removed: %s", path)
        except FileNotFoundError:
            pass
    return path


def planned_files(command: list[str]) -> list[tuple[Path, bytes]]:
    """(target, content) of every file install writes."""
    home = data_home()
    icons = home / "icons" / "hicolor"
    files = [(home / "applications" / f"{APP_ID}.desktop", desktop_entry(command).encode())]
    for size in ICON_SIZES:
        files.append((icons / f"{size}x{size}" / "apps" / f"{APP_ID}.png", icon_file(size).read_bytes()))
    files.append((icons / "scalable" / "apps" / f"{APP_ID}.svg", icon_file().read_bytes()))
    return files


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_record() -> dict | None:
    path = record_path()
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record.get("files"), list) or not isinstance(record.get("dirs"), list):
            raise ValueError("no files/dirs lists")
    except (OSError, ValueError, AttributeError) as exc:
        raise DesktopError(f"the install record {path} is unreadable ({exc}); remove it by hand") from exc
    return record


# -- install / uninstall ------------------------------------------------------------


def install() -> list[Path]:
    """Write the menu entry and icons; returns the files written."""
    from dictation.app.storage import atomic_write_bytes, atomic_write_json

    command = launcher_command()
    plan = planned_files(command)
    previous = _read_record() or {"files": [], "dirs": []}
    created: list[str] = list(previous["dirs"])
    for target, _ in plan:
        missing = []
        parent = target.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        created.extend(str(d) for d in reversed(missing) if str(d) not in created)
    files = {entry["path"]: entry["sha256"] for entry in previous["files"]}
    files.update({str(target): _sha256(data) for target, data in plan})
    # The record goes first, so even an install cut short can be undone.
    atomic_write_json(
        record_path(),
        {
            "app_id": APP_ID,
            "exec": command,
            "files": [{"path": p, "sha256": h} for p, h in files.items()],
            "dirs": created,
        },
    )
    for target, data in plan:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data, mode=0o644)  # menus and icon loaders read these
        log.debug("wrote %s", target)
    log.info("desktop integration installed (Exec=%s)", shlex.join(command))
    return [target for target, _ in plan]


def uninstall() -> tuple[list[Path], list[Path]]:
    """Remove what install wrote; returns (removed, kept because the user changed them)."""
    record = _read_record()
    if record is None:
        raise DesktopError(f"no desktop integration to remove (no install record at {record_path()})")
    removed: list[Path] = []
    kept: list[Path] = []
    for entry in record["files"]:
        path = Path(entry["path"])
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        if _sha256(data) != entry["sha256"]:
            kept.append(path)
            continue
        path.unlink()
        removed.append(path)
        log.debug("removed %s", path)
    # Deepest first, and only when empty: a directory the user has since filled stays.
    for directory in sorted((Path(d) for d in record["dirs"]), key=lambda d: len(d.parts), reverse=True):
        try:
            directory.rmdir()
            log.debug("removed directory %s", directory)
        except OSError:
            pass
    record_path().unlink()
    log.info("desktop integration removed (%d files, %d kept)", len(removed), len(kept))
    return removed, kept
