"""`dictation transcribe FILE...`: text of audio files, with the base model or a profile's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dictation.app.decoding import DEFAULT_BEAM, beam_width  # numpy only
from dictation.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, error, open_profile, profile_errors


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


@profile_errors
def cmd_transcribe(args: argparse.Namespace) -> int:
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        for f in missing:
            error(f"no such file: {f}")
        return EXIT_USAGE
    model_dir = open_profile(args.profile).model_dir() if args.profile else None
    from dictation.app.audio import load_audio
    from dictation.app.runtime import Transcriber, base_model_dir

    kind = "adapted" if model_dir is not None else "base"
    try:
        transcriber = Transcriber(model_dir if model_dir is not None else base_model_dir(), beam=args.beam)
    except (RuntimeError, OSError, ValueError) as exc:  # missing/incomplete model, unreadable file
        error(f"cannot load the {kind} model: {exc}")
        return EXIT_FAIL
    status = EXIT_OK
    for name in args.files:
        try:
            audio = load_audio(Path(name))
        except Exception as exc:
            error(f"cannot read {name}: {exc}")
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
