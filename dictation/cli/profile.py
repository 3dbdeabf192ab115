"""`dictation profile create|list|delete|previous-model|export|import|check`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dictation.cli.common import EXIT_FAIL, EXIT_OK, error, open_profile, profile_errors


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("profile", help="create, list, delete, export, import profiles")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("create", help="create an empty profile")
    a.add_argument("name")
    a.set_defaults(func=cmd_profile_create)
    a = actions.add_parser("list", help="list profiles")
    a.set_defaults(func=cmd_profile_list)
    a = actions.add_parser("delete", help="delete a profile and all its recordings")
    a.add_argument("name")
    a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    a.set_defaults(func=cmd_profile_delete)
    a = actions.add_parser("previous-model", help="go back to the adapted model installed before the last adaptation")
    a.add_argument("name")
    a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    a.set_defaults(func=cmd_profile_previous_model)
    a = actions.add_parser("export", help="write a profile to a zip archive")
    a.add_argument("name")
    a.add_argument("archive", type=Path)
    a.add_argument("--no-model", action="store_true", help="leave the adapted model out")
    a.set_defaults(func=cmd_profile_export)
    a = actions.add_parser("import", help="create a profile from a zip archive")
    a.add_argument("archive", type=Path)
    a.add_argument("--name", help="profile name (default: the name stored in the archive)")
    a.set_defaults(func=cmd_profile_import)
    a = actions.add_parser(
        "check",
        help="list every unreadable file of a profile (exit status 1 if there is any)",
        description="Check every file of a profile: takes, corrections and accepted dictations (their audio decoded), "
        "settings, vocabulary, history, model metadata and model files (ONNX models loaded).",
    )
    a.add_argument("name")
    a.add_argument(
        "--repair",
        action="store_true",
        help="move unreadable takes aside (into takes.unreadable/ in the profile) and set damaged "
        "settings aside, so the rest works; nothing is deleted",
    )
    a.set_defaults(func=cmd_profile_check)


@profile_errors
def cmd_profile_create(args: argparse.Namespace) -> int:
    from dictation.app.profiles import Profile

    profile = Profile.create(args.name)
    print(f"created profile {profile.name!r} in {profile.path}")
    return EXIT_OK


@profile_errors
def cmd_profile_list(args: argparse.Namespace) -> int:
    from dictation.app.base_model import bundled_model_version
    from dictation.app.profiles import ProfileError, list_profiles
    from dictation.app.runtime import ModelMissingError

    try:
        shipped = bundled_model_version()
    except ModelMissingError:
        shipped = None
    names = list_profiles()
    if not names:
        print("no profiles (create one with: dictation profile create NAME)")
    for name in names:
        try:
            profile = open_profile(name)
            takes = len(profile.takes())
            unreadable = len(profile.unreadable_takes())
            meta = profile.metadata
        except ProfileError as exc:
            print(f"{name}\tUNREADABLE: {exc}")
            continue
        if meta:
            model = f"adapted model v{meta.get('version', '?')}"
            if isinstance(meta.get("after_wer"), (int, float)):
                where = "cross-validated on its takes" if meta.get("check") else "on held-back phrases"
                model += f" ({meta['after_wer'] * 100:.1f}% WER {where})"
            old = profile.outdated_model(shipped) if shipped else None
            if old:
                model += (
                    f"; made from speech model {old}, {shipped} is installed: "
                    f"run `dictation adapt --profile {name}` again"
                )
        else:
            model = "base model"
        damaged = f"\t{unreadable} unreadable recordings: run `dictation profile check {name}`" if unreadable else ""
        print(f"{name}\t{takes} takes\t{model}{damaged}")
    return EXIT_OK


@profile_errors
def cmd_profile_delete(args: argparse.Namespace) -> int:
    from dictation.app.profiles import ProfileError, delete_profile

    if not args.yes:
        try:
            takes = f"{len(open_profile(args.name).takes())} takes"
        except ProfileError as exc:
            if "no profile named" in str(exc):
                raise
            takes = "unreadable"  # a corrupt profile can still be deleted
        try:
            answer = input(
                f"Delete profile {args.name!r} ({takes}, adapted model, history)? This cannot be undone. [y/N] "
            )
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return EXIT_FAIL
    delete_profile(args.name)
    print(f"deleted profile {args.name!r}")
    return EXIT_OK


@profile_errors
def cmd_profile_previous_model(args: argparse.Namespace) -> int:
    from dictation.app.profiles import ProfileError

    profile = open_profile(args.name)
    previous = profile.previous_metadata()
    if previous is None:
        raise ProfileError(f"profile {args.name!r} has no previous model to go back to")
    when = previous.get("installed") or previous.get("created") or "?"
    if not args.yes:
        try:
            answer = input(f"Go back to the adapted model from {when}? The current adapted model is removed. [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("unchanged")
            return EXIT_FAIL
    profile.restore_previous_model()
    print(f"profile {args.name!r} now uses the adapted model from {when}")
    return EXIT_OK


@profile_errors
def cmd_profile_export(args: argparse.Namespace) -> int:
    if args.archive.exists():
        error(f"{args.archive} exists already; choose another file name")
        return EXIT_FAIL
    profile = open_profile(args.name)
    left_out = profile.export_archive(args.archive, include_model=not args.no_model)
    for problem in left_out:
        error(f"left out (unreadable): {problem}")
    print(f"exported profile {profile.name!r} to {args.archive}")
    return EXIT_OK


@profile_errors
def cmd_profile_import(args: argparse.Namespace) -> int:
    from dictation.app.profiles import Profile

    profile = Profile.import_archive(args.archive, name=args.name)
    print(f"imported profile {profile.name!r} ({len(profile.takes())} takes)")
    return EXIT_OK


@profile_errors
def cmd_profile_check(args: argparse.Namespace) -> int:
    from dictation.app.profiles import find_problems, repair

    profile = open_profile(args.name)  # an unreadable profile.json is reported from here
    problems = find_problems(profile)
    if not problems:
        print(f"profile {profile.name!r}: every file is readable")
        return EXIT_OK
    print(f"profile {profile.name!r}: {len(problems)} unreadable file{'s' if len(problems) > 1 else ''}")
    for problem in problems:
        print(f"  {problem}")
    if not args.repair:
        print(
            f"`dictation profile check {profile.name} --repair` moves unreadable recordings aside (nothing is deleted)"
        )
        return EXIT_FAIL
    repaired, remaining = repair(profile)
    for problem in repaired:
        print(f"moved aside: {problem.path.name} -> {problem.kept_at}")
    if remaining:
        print(f"not repaired ({len(remaining)}): --repair moves only recordings and settings aside")
        for problem in remaining:
            print(f"  {problem}")
        if any("model" in problem.reason for problem in remaining):
            print(
                f"for the model: `dictation profile previous-model {profile.name}` goes back to the last good one, "
                f"or adapt again (`dictation adapt --profile {profile.name}`)"
            )
        return EXIT_FAIL
    print(f"profile {profile.name!r} repaired: the rest of it works again")
    return EXIT_OK
