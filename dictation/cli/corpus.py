"""`dictation corpus build|stats|splits`: build the speech corpus cache and inspect it.

Imports nothing heavy at module level (the dispatcher imports every *_cli module).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("corpus", help="build and inspect the offline multi-speaker speech corpus")
    sub = p.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="synthesize/decode the speaker-indexed corpus (resumable)")
    b.add_argument("--out", type=Path, default=None, help="corpus dir (default: <cache>/corpus)")
    b.add_argument(
        "--sources",
        default=None,
        help="comma-separated NAME[:MAX_SPEAKERS] from fotaq, bass, flite, festival, pico, espeak, "
        "piper, kokoro (default: all, in that order; fotaq and bass are real recorded voices)",
    )
    b.add_argument("--max-speakers", type=int, default=None, help="at most N speakers per source")
    b.add_argument(
        "--splits",
        default=None,
        metavar="SPLIT[,SPLIT]",
        help="only the speakers of these splits (train, validation, test; see `corpus splits`): "
        "`--splits test` builds the held-out speakers that `evaluate --heldout` needs",
    )
    b.add_argument("--max-utterances", type=int, default=None, help="at most N utterances per speaker")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--templates-only",
        action="store_true",
        help="build even without WordNet's example sentences (wordnet-base): synthetic "
        "speakers then read template sentences only, a different (easier) corpus",
    )
    b.add_argument("--jobs", type=int, default=max(1, min(2, (os.cpu_count() or 2) // 2)), help="worker processes")
    b.set_defaults(func=_build)

    s = sub.add_parser("stats", help="speakers, utterances and hours per split and source")
    s.add_argument("dir", type=Path, nargs="?", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_stats)

    w = sub.add_parser("splits", help="show, or (re)generate with --write, assets/corpus_splits.json")
    w.add_argument("--write", action="store_true")
    w.add_argument("--seed", type=int, default=0)
    w.set_defaults(func=_splits)


def _build(args: argparse.Namespace) -> int:
    from dictation.lab.corpus.build import build
    from dictation.lab.corpus.common import default_corpus_dir

    out = args.out or default_corpus_dir()
    try:
        summary = build(
            out,
            args.sources,
            args.max_speakers,
            args.max_utterances,
            args.seed,
            args.jobs,
            splits=args.splits,
            templates_only=args.templates_only,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.report(), file=sys.stderr)
    print(f"corpus: {out}", file=sys.stderr)
    if not summary.speakers:
        print("error: no source could run here (see SKIPPED lines above)", file=sys.stderr)
        return 1
    return 0


def _stats(args: argparse.Namespace) -> int:
    from dictation.lab.corpus.common import CorpusError, default_corpus_dir
    from dictation.lab.corpus.stats import corpus_stats, format_stats

    try:
        stats = corpus_stats(args.dir or default_corpus_dir())
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(stats, indent=1) if args.json else format_stats(stats))
    return 0


def _splits(args: argparse.Namespace) -> int:
    from dictation.lab.corpus import splits

    if args.write:
        from dictation.lab.corpus.build import speaker_counts_by_source

        data = splits.write_splits(speaker_counts_by_source(args.seed))
        print(f"wrote {splits.SPLITS_PATH}")
    else:
        data = {k: sorted(v) for k, v in splits.load_splits().items()}
    for name in splits.SPLITS:
        print(f"{name}: {len(data[name])} speakers")
    print("test:", ", ".join(data["test"]))
    return 0
