"""Shipped files: `assets/` and `models/` of a checkout, or a frozen app's data folder.

The one place that knows where an installation keeps the files it ships, so every
caller asks by relative path ("assets/icons/x.svg", "models/dictation-tiny-en").
"""

from __future__ import annotations

import sys
from pathlib import Path

# dictation/app/resources.py -> the checkout (or site-packages) root is three levels up.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class ResourceMissing(FileNotFoundError):
    """A file the installation should ship is not there."""


def roots() -> list[Path]:
    """Folders that may hold `assets/` and `models/`: a frozen app's first, then a checkout's."""
    found = [_PACKAGE_ROOT, _PACKAGE_ROOT / "dictation"]
    if getattr(sys, "frozen", False):
        found.insert(0, Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)))
    return found


def find(relative: str | Path) -> Path | None:
    """The first existing `root / relative` (file or folder), or None."""
    for root in roots():
        candidate = root / relative
        if candidate.exists():
            return candidate
    return None


def require(relative: str | Path) -> Path:
    """Like `find`, but a missing file raises ResourceMissing naming it."""
    path = find(relative)
    if path is None:
        raise ResourceMissing(f"{relative} is missing from this installation")
    return path


def checkout_path(relative: str | Path) -> Path:
    """Where `relative` lives in a source checkout (for messages about a missing file)."""
    return _PACKAGE_ROOT / relative
