"""`dictation vocabulary add|remove|list|import|export --profile P`: a profile's own words.

One argument per word or phrase: ``dictation vocabulary add --profile P Kubernetes "Siobhan
Nguyen"`` adds two entries. `transcribe --profile P`, `listen` and the app use them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dictation.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, error, open_profile, profile_errors


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "vocabulary",
        help="a profile's own words: names, places, product names, jargon",
        description="Words and phrases the recogniser should know for a profile: each is favoured in "
        "decoding and written as given (or as its replacement).",
    )
    sub = p.add_subparsers(dest="vocabulary_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="add words or phrases (one argument each)")
    add.add_argument("--profile", required=True, help="profile name")
    add.add_argument("phrases", nargs="+", metavar="PHRASE", help="a word or phrase (quote a phrase of several words)")
    add.add_argument(
        "--sounds-like",
        default="",
        metavar="SPELLING",
        help="how it is said, in ordinary words (e.g. Nguyen: 'win'); only with one PHRASE",
    )
    add.add_argument(
        "--replace-with",
        default="",
        metavar="TEXT",
        help="write this instead of the phrase (e.g. 'em dash' -> '\u2014'; \\n is a line break); only with one PHRASE",
    )
    add.set_defaults(func=cmd_add)

    remove = sub.add_parser("remove", help="remove words or phrases (one argument each)")
    remove.add_argument("--profile", required=True, help="profile name")
    remove.add_argument("phrases", nargs="+", metavar="PHRASE")
    remove.set_defaults(func=cmd_remove)

    listing = sub.add_parser("list", help="list the entries")
    listing.add_argument("--profile", required=True, help="profile name")
    listing.add_argument(
        "--json", action="store_true", help="a JSON list of {phrase, sounds_like, replacement} objects"
    )
    listing.set_defaults(func=cmd_list)

    importing = sub.add_parser(
        "import", help="add the entries of a plain text file (phrase | sounds like | written as)"
    )
    importing.add_argument("--profile", required=True, help="profile name")
    importing.add_argument("file", help="UTF-8 text file, one entry per line ('-': standard input)")
    importing.add_argument("--replace", action="store_true", help="replace the whole vocabulary instead of adding")
    importing.set_defaults(func=cmd_import)

    exporting = sub.add_parser("export", help="write the entries as a plain text file")
    exporting.add_argument("--profile", required=True, help="profile name")
    exporting.add_argument("file", nargs="?", default="-", help="output file (default: standard output)")
    exporting.set_defaults(func=cmd_export)


def _store(name: str) -> Any:
    from dictation.app.vocabulary import VocabularyStore

    return VocabularyStore(open_profile(name))


def _unescape_cli(text: str) -> str:
    return text.replace("\\n", "\n")


@profile_errors
def cmd_add(args: argparse.Namespace) -> int:
    from dictation.app.vocabulary import VocabularyError, make_entry

    if (args.sounds_like or args.replace_with) and len(args.phrases) != 1:
        error("--sounds-like and --replace-with apply to one PHRASE; add the others separately")
        return EXIT_USAGE
    try:
        entries = [make_entry(p, args.sounds_like, _unescape_cli(args.replace_with)) for p in args.phrases]
    except VocabularyError as exc:
        error(str(exc))
        return EXIT_USAGE
    store = _store(args.profile)
    try:
        store.add(entries)
    except VocabularyError as exc:
        error(str(exc))
        return EXIT_FAIL
    for entry in entries:
        print(f"added: {entry.phrase}")
    return EXIT_OK


@profile_errors
def cmd_remove(args: argparse.Namespace) -> int:
    removed, missing = _store(args.profile).remove(args.phrases)
    for phrase in removed:
        print(f"removed: {' '.join(phrase.split())}")
    for phrase in missing:
        error(f"not in the vocabulary of {args.profile!r}: {phrase}")
    return EXIT_FAIL if missing else EXIT_OK


@profile_errors
def cmd_list(args: argparse.Namespace) -> int:
    from dictation.app.vocabulary.entries import format_line

    entries = _store(args.profile).entries()
    if args.json:
        print(
            json.dumps(
                [{"phrase": e.phrase, "sounds_like": e.sounds_like, "replacement": e.replacement} for e in entries],
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    for entry in entries:
        print(format_line(entry))
    return EXIT_OK


@profile_errors
def cmd_import(args: argparse.Namespace) -> int:
    from dictation.app.vocabulary import VocabularyError, parse_text

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        error(f"{args.file} is not UTF-8 text: {exc}")
        return EXIT_FAIL
    try:
        entries = parse_text(text)
        store = _store(args.profile)
        saved = store.save(entries) if args.replace else store.add(entries)
    except VocabularyError as exc:
        error(f"{args.file}: {exc}")
        return EXIT_FAIL
    print(f"imported {len(entries)} entries; the vocabulary holds {len(saved)}")
    return EXIT_OK


@profile_errors
def cmd_export(args: argparse.Namespace) -> int:
    from dictation.app import storage
    from dictation.app.vocabulary import format_text

    text = format_text(_store(args.profile).entries())
    if args.file == "-":
        sys.stdout.write(text)
    else:
        storage.atomic_write_text(args.file, text, make_parents=False)
    return EXIT_OK
