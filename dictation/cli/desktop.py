"""`dictation desktop install|uninstall`: add or remove the menu entry and icons."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dictation.app.desktop import DesktopError, data_home, install, uninstall

EXIT_OK, EXIT_FAIL = 0, 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "desktop",
        help="add or remove the app's menu entry and icons",
        description="Add the app to the desktop's application menu for the current user "
        "($XDG_DATA_HOME/applications and icons), or remove exactly what was added.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("install", help="add the menu entry and icons")
    a.set_defaults(func=cmd_install)
    a = actions.add_parser("uninstall", help="remove the menu entry and icons added by install")
    a.set_defaults(func=cmd_uninstall)


def cmd_install(args: argparse.Namespace) -> int:
    try:
        written = install()
    except (DesktopError, OSError) as exc:
        print(f"dictation: error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"installed the menu entry {written[0]}")
    print(f"and {len(written) - 1} icons under {data_home() / 'icons' / 'hicolor'}")
    print("remove them with: dictation desktop uninstall")
    return EXIT_OK


def cmd_uninstall(args: argparse.Namespace) -> int:
    try:
        removed, kept = uninstall()
    except (DesktopError, OSError) as exc:
        print(f"dictation: error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"removed {len(removed)} files of the desktop integration")
    for path in kept:
        print(f"kept {path}: changed since it was installed")
    return EXIT_OK
