"""`dictation enroll` (recordings into a profile) and `dictation adapt` (adapt its model)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from dictation.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, error, open_profile, profile_errors


def register(subparsers: Any) -> None:
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
        "it by 2-fold cross-validation on the takes. It is installed only when it does better "
        "than the base model on the takes it was not adapted on (token loss and word errors); "
        "otherwise the model in use stays, the new one is kept aside in the profile "
        "(model.candidate), and the exit status is 1.",
    )
    p.add_argument("--profile", required=True)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--steps", type=int, help="adaptation steps (default: the model's own)")
    p.set_defaults(func=cmd_adapt)


@profile_errors
def cmd_enroll(args: argparse.Namespace) -> int:
    folder: Path = args.from_dir
    if not folder.is_dir():
        error(f"no such directory: {folder}")
        return EXIT_USAGE
    profile = open_profile(args.profile)
    from dictation.app.audio import load_audio
    from dictation.app.enrollment import check_take  # the app's own checks (level, clipping, ...)
    from dictation.app.text import clean_transcript

    transcriber = None
    if args.check_reading:
        from dictation.app.base_model import base_model_dir
        from dictation.app.runtime import Transcriber

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
        error(f"no .wav files in {folder}")
        return EXIT_FAIL
    return EXIT_OK if added or skipped else EXIT_FAIL


@profile_errors
def cmd_adapt(args: argparse.Namespace) -> int:
    from dictation.app.adapt_job import unavailable_reason

    reason = unavailable_reason()
    if reason:  # the one-folder app ships without torch
        error(reason)
        return EXIT_FAIL
    if args.steps is not None and args.steps < 1:
        error("--steps must be at least 1")
        return EXIT_USAGE
    profile = open_profile(args.profile)  # unknown/corrupt profile: clear error now
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
        # The check kept the model in use: a decision, not an error (exit status 1 all the same).
        where = f" ({event['candidate']})" if event.get("candidate") else ""
        print(f"{event['reason']}{where}", flush=True)
    elif kind == "error":
        error(event["message"])
