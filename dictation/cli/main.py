"""Command line entry point: `dictation` starts the app; subcommands do the rest.

Each concept registers its own subcommands from a small `*_cli` module, so this file
stays a dispatcher. Those modules must import nothing heavy at module level (no torch,
no Qt): `dictation --version` and `dictation devices` must stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import sys

from dictation import __version__

# Modules that expose `register(subparsers) -> None`. Each subparser sets `func`,
# a callable taking the parsed args and returning an exit status.
SUBCOMMAND_MODULES = (
    "dictation.cli.audio",
    "dictation.cli.corpus",
    "dictation.cli.desktop",
    "dictation.cli.adapt",
    "dictation.cli.profile",
    "dictation.cli.transcribe",
    "dictation.cli.lab",
    "dictation.cli.listen",
    "dictation.cli.vocabulary",
    "dictation.cli.voice",
    "dictation.cli.learning_curve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dictation",
        description="Desktop dictation that learns your voice on your own machine. With no command, starts the app.",
    )
    parser.add_argument("--version", action="version", version=f"dictation {__version__}")
    parser.add_argument("--debug", action="store_true", help="verbose logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # The module (or its package) has not landed yet; any other missing import is a bug.
            if not (exc.name == name or name.startswith(f"{exc.name}.")):
                raise
            continue  # that concept has not landed yet
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # A frozen app re-runs this executable for the spawned adaptation worker; this hands
    # control to multiprocessing there (a no-op everywhere else).
    multiprocessing.freeze_support()
    parser = build_parser()
    args = parser.parse_args(argv)
    from dictation.app.logs import setup_logging

    setup_logging(debug=args.debug)
    # Every command sets func; a command's own option named "command" must not start the app.
    if getattr(args, "func", None) is None:
        from dictation.app.gui.app import run_app  # Qt only, never torch

        return run_app(debug=args.debug)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
