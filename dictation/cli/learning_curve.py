"""`dictation learning-curve`: `evaluate --heldout --takes ... --json` rows -> the
bundle's ``learning_curve.json`` (what the app's "What I learned" page plots)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dictation.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, error


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "learning-curve",
        help="summarise `evaluate --takes --json` rows into a bundle's learning_curve.json",
        description=(
            "Reads the per-speaker rows of `dictation evaluate --heldout --takes 10,20,40 --json` "
            "(summary lines are skipped) and writes the mean base, MAML and fine-tuning WERs for each "
            "number of takes, with their gains relative to base, overall and by corpus source."
        ),
    )
    p.add_argument("--from", dest="rows", type=Path, required=True, metavar="RUN.jsonl", help="evaluate's output")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="file to write, or a bundle dir (its learning_curve.json)",
    )
    p.add_argument(
        "--command",
        dest="measured_with",  # not "command": that is the top-level parser's subcommand
        default=None,
        help="the evaluate command line that made the rows (shown in the app's caption)",
    )
    p.add_argument(
        "--model-version",
        default=None,
        help="the speech model measured (default: the version in --out's bundle.json, else the bundled model's)",
    )
    p.add_argument(
        "--takes",
        default="",
        metavar="N[,N...]",
        help="only these numbers of takes (e.g. 10,20,40 when some speakers were also run at 80)",
    )
    p.add_argument("--json", action="store_true", help="print the curve written as JSON")
    p.set_defaults(func=_learning_curve)


def _model_version(args: argparse.Namespace) -> str:
    if args.model_version:
        return str(args.model_version)
    meta = args.out / "bundle.json" if args.out.is_dir() else args.out.parent / "bundle.json"
    if meta.is_file():
        return str(json.loads(meta.read_text(encoding="utf-8"))["version"])
    from dictation.app.base_model import bundled_model_version

    return bundled_model_version()


def _learning_curve(args: argparse.Namespace) -> int:
    from dictation.app.runtime import ModelMissingError
    from dictation.lab.learning_curve import curve_from_rows, read_rows, write_curve

    try:
        rows = read_rows(args.rows)
        wanted = {int(n) for n in args.takes.split(",") if n.strip()}
        if wanted:
            rows = [r for r in rows if r["takes"] in wanted]
        version = _model_version(args)
    except (OSError, ValueError, KeyError, ModelMissingError) as exc:
        error(f"learning-curve: {exc}")
        return EXIT_USAGE
    command = args.measured_with or f"(not recorded; rows from {args.rows.name})"
    try:
        curve = curve_from_rows(rows, command, version)
    except (ValueError, KeyError, TypeError) as exc:
        error(f"learning-curve: {args.rows}: {exc}")
        return EXIT_USAGE
    try:
        path = write_curve(curve, args.out)
    except OSError as exc:
        error(f"learning-curve: {exc}")
        return EXIT_FAIL
    if args.json:
        print(json.dumps(curve))
        return EXIT_OK
    for p in curve["points"]:
        ft = ""
        if "finetune_wer" in p:
            ft = f"  fine-tune {p['finetune_wer']:.1%} ({_gain(p['finetune_gain'])})"
        print(
            f"{p['takes']:>4} takes  {p['speakers']} speakers  base {p['base_wer']:.1%}  "
            f"MAML {p['maml_wer']:.1%} ({_gain(p['maml_gain'])}){ft}"
        )
    print(f"wrote {path}")
    return EXIT_OK


def _gain(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%} relative"
