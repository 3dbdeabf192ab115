"""Engine subcommands: transcribe, profile, enroll, adapt.

Nothing heavy at import (the dispatcher imports every ``*_cli`` module for ``--help``):
the runtime, audio and adaptation modules are imported inside the commands.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from dictation.app.decoding import DEFAULT_BEAM, beam_width  # numpy only

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files",
        description="Transcribe audio files with the base model or a profile's adapted model.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, ...)")
    p.add_argument("--profile", help="use this profile's adapted model (base model if it has none)")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per file: file, text, seconds (decode time), audio_seconds, model, beam",
    )
    p.add_argument(
        "--beam",
        type=beam_width,
        default=DEFAULT_BEAM,
        metavar="N",
        help=f"beam search width (default {DEFAULT_BEAM}; 1 is greedy: faster, a little less accurate)",
    )
    p.set_defaults(func=cmd_transcribe)

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

    p = subparsers.add_parser(
        "enroll",
        help="add recordings to a profile",
        description="Add NAME.wav + NAME.txt pairs from a folder to a profile as takes. "
        "Each recording goes through the app's quality checks (silence, length, level, "
        "clipping); rejected ones are listed with the reason.",
    )
    p.add_argument("--profile", required=True)
    p.add_argument("--from-dir", required=True, type=Path, metavar="DIR")
    p.add_argument(
        "--check-reading",
        action="store_true",
        help="also reject recordings the base model hears as a different sentence (slower)",
    )
    p.set_defaults(func=cmd_enroll)

    p = subparsers.add_parser(
        "adapt",
        help="adapt a profile's model to its recordings",
        description="Adapt the model to a profile's takes in a background process, then check "
        "it by 2-fold cross-validation on the takes; a model the check shows broken is not "
        "installed.",
    )
    p.add_argument("--profile", required=True)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--steps", type=int, help="adaptation steps (default: the model's own)")
    p.set_defaults(func=cmd_adapt)


def _error(message: str) -> None:
    print(f"dictation: error: {message}", file=sys.stderr)


def _open_profile(name: str) -> Any:
    from dictation.app.profiles import Profile

    return Profile.open(name)


def _profile_errors(func: Any) -> Any:
    """Report ProfileError (unknown, corrupt, exists, bad name) and I/O errors (disk full,
    permissions) as one clear line instead of a traceback."""

    def wrapper(args: argparse.Namespace) -> int:
        from dictation.app.profiles import ProfileError

        try:
            return func(args)
        except (ProfileError, OSError) as exc:
            _error(str(exc))
            return EXIT_FAIL

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


# -- transcribe ---------------------------------------------------------------------


@_profile_errors
def cmd_transcribe(args: argparse.Namespace) -> int:
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        for f in missing:
            _error(f"no such file: {f}")
        return EXIT_USAGE
    model_dir = _open_profile(args.profile).model_dir() if args.profile else None
    from dictation.app.audio import load_audio
    from dictation.app.runtime import Transcriber, base_model_dir

    kind = "adapted" if model_dir is not None else "base"
    try:
        transcriber = Transcriber(model_dir if model_dir is not None else base_model_dir(), beam=args.beam)
    except (RuntimeError, OSError, ValueError) as exc:  # missing/incomplete model, unreadable file
        _error(f"cannot load the {kind} model: {exc}")
        return EXIT_FAIL
    status = EXIT_OK
    for name in args.files:
        try:
            audio = load_audio(Path(name))
        except Exception as exc:
            _error(f"cannot read {name}: {exc}")
            status = EXIT_FAIL
            continue
        result = transcriber.transcribe(audio)
        if args.json:
            record = {
                "file": name,
                "text": result.text,
                "seconds": round(result.seconds, 4),
                "audio_seconds": round(result.audio_seconds, 3),
                "model": kind,
                "beam": transcriber.beam,
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            print(result.text, flush=True)
    return status


# -- profile ------------------------------------------------------------------------


@_profile_errors
def cmd_profile_create(args: argparse.Namespace) -> int:
    from dictation.app.profiles import Profile

    profile = Profile.create(args.name)
    print(f"created profile {profile.name!r} in {profile.path}")
    return EXIT_OK


@_profile_errors
def cmd_profile_list(args: argparse.Namespace) -> int:
    from dictation.app.profiles import ProfileError, list_profiles
    from dictation.app.runtime import ModelMissingError, bundled_model_version

    try:
        shipped = bundled_model_version()
    except ModelMissingError:
        shipped = None
    names = list_profiles()
    if not names:
        print("no profiles (create one with: dictation profile create NAME)")
    for name in names:
        try:
            profile = _open_profile(name)
            takes = len(profile.takes())
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
        print(f"{name}\t{takes} takes\t{model}")
    return EXIT_OK


@_profile_errors
def cmd_profile_delete(args: argparse.Namespace) -> int:
    from dictation.app.profiles import ProfileError, delete_profile

    if not args.yes:
        try:
            takes = f"{len(_open_profile(args.name).takes())} takes"
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


@_profile_errors
def cmd_profile_previous_model(args: argparse.Namespace) -> int:
    from dictation.app.profiles import ProfileError

    profile = _open_profile(args.name)
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


@_profile_errors
def cmd_profile_export(args: argparse.Namespace) -> int:
    if args.archive.exists():
        _error(f"{args.archive} exists already; choose another file name")
        return EXIT_FAIL
    profile = _open_profile(args.name)
    profile.export_archive(args.archive, include_model=not args.no_model)
    print(f"exported profile {profile.name!r} to {args.archive}")
    return EXIT_OK


@_profile_errors
def cmd_profile_import(args: argparse.Namespace) -> int:
    from dictation.app.profiles import Profile

    profile = Profile.import_archive(args.archive, name=args.name)
    print(f"imported profile {profile.name!r} ({len(profile.takes())} takes)")
    return EXIT_OK


# -- enroll -------------------------------------------------------------------------


@_profile_errors
def cmd_enroll(args: argparse.Namespace) -> int:
    folder: Path = args.from_dir
    if not folder.is_dir():
        _error(f"no such directory: {folder}")
        return EXIT_USAGE
    profile = _open_profile(args.profile)
    from dictation.app.audio import load_audio
    from dictation.app.enrollment import check_take  # the app's own checks (level, clipping, ...)
    from dictation.app.text import clean_transcript

    transcriber = None
    if args.check_reading:
        from dictation.app.runtime import Transcriber, base_model_dir

        transcriber = Transcriber(base_model_dir())

    known = {(t.prompt_id, t.text) for t in profile.takes()}
    added, rejected, skipped = 0, [], 0
    wavs = sorted(folder.glob("*.wav"))
    for wav in wavs:
        txt = wav.with_suffix(".txt")
        if not txt.is_file():
            rejected.append((wav.name, f"no {txt.name} beside it"))
            continue
        try:
            text = clean_transcript(txt.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            rejected.append((wav.name, f"cannot read {txt.name}: {exc}"))
            continue
        if not text:
            rejected.append((wav.name, f"{txt.name} is empty"))
            continue
        if (wav.stem, text) in known:
            skipped += 1
            continue
        try:
            audio = load_audio(wav)
        except Exception as exc:
            rejected.append((wav.name, f"cannot read audio: {exc}"))
            continue
        check = check_take(audio, text, transcriber=transcriber)
        if not check.ok:
            rejected.append((wav.name, f"{check.problem}: {check.reason}"))
            continue
        quality = json.loads(json.dumps(check.quality, default=str))
        profile.add_take(wav.stem, text, audio, quality)
        known.add((wav.stem, text))
        added += 1
    orphans = sorted(t.name for t in folder.glob("*.txt") if not t.with_suffix(".wav").exists())
    print(f"added {added} takes to profile {profile.name!r}" + (f" ({skipped} already there)" if skipped else ""))
    for name, reason in rejected:
        print(f"rejected {name}: {reason}")
    for name in orphans:
        print(f"ignored {name}: no matching .wav")
    if not wavs:
        _error(f"no .wav files in {folder}")
        return EXIT_FAIL
    return EXIT_OK if added or skipped else EXIT_FAIL


# -- adapt --------------------------------------------------------------------------


@_profile_errors
def cmd_adapt(args: argparse.Namespace) -> int:
    from dictation.app.adapt_job import unavailable_reason

    reason = unavailable_reason()
    if reason:  # the one-folder app ships without torch
        _error(reason)
        return EXIT_FAIL
    if args.steps is not None and args.steps < 1:
        _error("--steps must be at least 1")
        return EXIT_USAGE
    profile = _open_profile(args.profile)  # unknown/corrupt profile: clear error now
    from dictation.app.adapt_job import AdaptationJob

    job = AdaptationJob(profile.name, steps=args.steps, device=args.device)
    print(f"adapting profile {profile.name!r} ({len(profile.takes())} takes) on device {args.device}")
    # Ctrl-C only sets a flag: a KeyboardInterrupt raised inside the queue read could
    # leave the pipe to the worker half-read, and the cancel would then hang.
    interrupted = []
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    job.start()
    try:
        while not job.finished and not interrupted:
            for event in job.poll():
                _print_event(event)
            time.sleep(0.2)
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted and not job.finished:
        print("cancelling...", file=sys.stderr)
        job.cancel()
        for event in job.wait(timeout=60):
            _print_event(event)
        if not job.finished:
            job.kill()
        return 130
    result = job.result or {}
    if result.get("type") == "done" and result.get("installed"):
        return EXIT_OK
    return EXIT_FAIL


def _print_event(event: dict) -> None:
    kind = event.get("type")
    if kind == "progress":
        eta = event.get("eta_seconds")
        eta_text = "" if eta is None else f"  eta {eta:.0f}s"
        print(f"step {event['step']}/{event['total']}  loss {event['loss']:.4f}{eta_text}", flush=True)
    elif kind == "status":
        print(event["message"], flush=True)
    elif kind == "done" and event.get("installed"):
        print(event["reason"], flush=True)
    elif kind == "done":
        print(f"dictation: {event['reason']}", file=sys.stderr, flush=True)
    elif kind == "error":
        _error(event["message"])
