"""`dictation transcribe FILE...`: text of audio files, with the base model or a profile's.

Files of any length: each is read block by block and cut at pauses into pieces the
encoder can take (`app.long_transcription`); plain output prints each piece as it is
decoded. A bad file (unreadable, NaN/infinite samples) is reported and the batch goes on;
the exit status is 1 if any file failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dictation.app.decoding import DEFAULT_BEAM, beam_width  # numpy only
from dictation.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, error, open_profile, profile_errors


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files",
        description="Transcribe audio files of any length with the base model or a profile's adapted model.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, ...)")
    p.add_argument(
        "--profile",
        help="use this profile's adapted model (its previous one, or the base model, if that fails to load) "
        "and its vocabulary (`dictation vocabulary`)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per file: file, text, seconds (decode time), audio_seconds, model, beam, "
        "segments (pieces decoded), warnings",
    )
    p.add_argument(
        "--beam",
        type=beam_width,
        default=DEFAULT_BEAM,
        metavar="N",
        help=f"beam search width (default {DEFAULT_BEAM}; 1 is greedy: faster, a little less accurate)",
    )
    p.set_defaults(func=cmd_transcribe)


def warn(message: str) -> None:
    print(f"dictation: warning: {message}", file=sys.stderr, flush=True)


def note(message: str) -> None:
    print(f"dictation: {message}", file=sys.stderr, flush=True)


@profile_errors
def cmd_transcribe(args: argparse.Namespace) -> int:
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        for f in missing:
            error(f"no such file: {f}")
        return EXIT_USAGE
    profile = open_profile(args.profile) if args.profile else None
    from dictation.app.model_choice import load_model
    from dictation.app.runtime import ModelMissingError

    try:
        loaded = load_model(profile, beam=args.beam, on_problem=lambda p: warn(p.message), on_build=note)
    except ModelMissingError as exc:
        error(f"cannot load a speech model: {exc}")
        return EXIT_FAIL
    if profile is not None:  # the profile's own words (none: decoding is unchanged)
        from dictation.app.vocabulary import for_profile

        loaded.transcriber.vocabulary = for_profile(profile)
    kind = "base" if loaded.kind == "base" else "adapted"
    status = EXIT_OK
    for name in args.files:
        if not transcribe_file(loaded.transcriber, name, kind, args.json):
            status = EXIT_FAIL
    return status


def transcribe_file(transcriber: Any, name: str, kind: str, as_json: bool) -> bool:
    """Print one file's text (or JSON record); False, with an error line, if it is bad."""
    from dictation.app import audio_file_blocks
    from dictation.app.audio import AudioFileError
    from dictation.app.long_transcription import SegmentText, transcribe_blocks
    from dictation.app.runtime import InvalidAudioError

    printed: list[SegmentText] = []

    def show_piece(piece: SegmentText, _text: str) -> None:  # partial text as it comes
        print(("" if not printed else " ") + piece.text.strip(), end="", flush=True)
        printed.append(piece)

    try:
        scan = audio_file_blocks.scan(name)
        for message in scan.warnings:
            warn(f"{name}: {message}")
        blocks = audio_file_blocks.read_blocks(name, gain=scan.gain)
        result = transcribe_blocks(transcriber, blocks, listener=None if as_json else show_piece)
    except (AudioFileError, OSError, InvalidAudioError) as exc:
        if printed:
            print(flush=True)  # end the partial line
        error(f"{name}: {exc}" if isinstance(exc, InvalidAudioError) else f"cannot read {name}: {exc}")
        return False
    for message in result.warnings:
        if message not in scan.warnings:
            warn(f"{name}: {message}")
    if as_json:
        record = {
            "file": name,
            "text": result.text,
            "seconds": round(result.seconds, 4),
            "audio_seconds": round(result.audio_seconds, 3),
            "model": kind,
            "beam": result.beam,
            "segments": result.segments,
            "warnings": scan.warnings,
        }
        print(json.dumps(record, ensure_ascii=False), flush=True)
    else:
        print(flush=True)
    return True
