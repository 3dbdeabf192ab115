"""Logging set-up: a rotated log file in the user's state directory, plus the console.

`setup_logging(debug)` is called once by the CLI. The file gets INFO and up (DEBUG with
`--debug`); the console gets WARNING and up (DEBUG with `--debug`), so commands stay
quiet unless something goes wrong. Logs hold no audio and no dictated text.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

import platformdirs

from dictation.app.storage import ensure_private_dir

APP_NAME = "dictation"
LOG_FILE = "dictation.log"
MAX_BYTES = 1_000_000
BACKUP_COUNT = 5
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"

# Handlers this module installed, so a second call replaces them instead of doubling up.
_installed: list[logging.Handler] = []


def log_dir() -> Path:
    """Where the log files live: `$DICTATION_HOME/logs`, else platformdirs' user log dir.

    Not created here (the About dialog may show it before anything was logged).
    """
    override = os.environ.get("DICTATION_HOME")
    if override:
        return Path(override).expanduser() / "logs"
    return platformdirs.user_log_path(APP_NAME)


def log_file() -> Path:
    return log_dir() / LOG_FILE


def setup_logging(debug: bool = False, console_level: int = logging.WARNING, rotate: bool = True) -> Path | None:
    """Send log records to the rotated file and to stderr; returns the file's path.

    With `debug`, both get DEBUG. If the log directory cannot be created (read-only home,
    full disk) the app still runs with console logging only, and None is returned.
    `rotate=False` is for the app's child processes (the adaptation worker): they append
    to the same file without ever rotating it, and reopen it when the app has rotated it
    (a RotatingFileHandler in each process would rotate the file under the other, which
    then writes into the renamed backup and rotates that in turn). Lines stay whole:
    both append (O_APPEND), a record per write.
    """
    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
        handler.close()
    _installed.clear()

    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if debug else console_level)
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    _installed.append(console)

    path: Path | None = None
    problem: str | None = None
    try:
        directory = ensure_private_dir(log_dir())
        path = directory / LOG_FILE
        handler = (
            logging.handlers.RotatingFileHandler(
                path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8", delay=True
            )
            if rotate
            else logging.handlers.WatchedFileHandler(path, encoding="utf-8", delay=True)
        )
    except OSError as exc:
        path, problem = None, str(exc)
    else:
        handler.setLevel(logging.DEBUG if debug else logging.INFO)
        handler.setFormatter(logging.Formatter(FILE_FORMAT))
        _installed.append(handler)  # the directory is 0700, so the files are private too

    for handler in _installed:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    if problem is not None:
        logging.getLogger(__name__).warning("logging to the console only: %s", problem)
    return path
