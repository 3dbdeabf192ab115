"""What the command groups share: exit statuses, error lines, profile opening."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def error(message: str) -> None:
    print(f"dictation: error: {message}", file=sys.stderr)


def open_profile(name: str) -> Any:
    from dictation.app.profiles import Profile

    return Profile.open(name)


def profile_errors(func: Any) -> Any:
    """Report ProfileError (unknown, corrupt, exists, bad name) and I/O errors (disk full,
    permissions) as one clear line instead of a traceback."""

    def wrapper(args: argparse.Namespace) -> int:
        from dictation.app.profiles import ProfileError

        try:
            return func(args)
        except (ProfileError, OSError) as exc:
            error(str(exc))
            return EXIT_FAIL

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper
