"""`dictation train` (meta-training) and `dictation evaluate` (held-out evaluation)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dictation.app.decoding import beam_width
from dictation.lab.compare import WORSE_MARGIN, relative_gain_ci, worse_than_base


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="meta-train the bundled model's adaptation parameters (MAML)")
    p.add_argument("--corpus", type=Path, default=None, help="corpus dir (default: the cache's corpus)")
    p.add_argument("--run-dir", type=Path, default=Path("runs/meta"), help="checkpoints and logs (resumable)")
    p.add_argument("--out", type=Path, default=None, help="bundle dir to write (default: RUN_DIR/bundle)")
    p.add_argument(
        "--from",
        dest="start_from",
        default="bundled",
        metavar="bundled|stock|DIR",
        help="what a fresh run starts from: the bundled model (default), stock Whisper "
        "tiny.en with zero updates (a rebuild from scratch), or a bundle directory",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--minutes", type=float, default=0.0, help="stop after this much wall-clock time")
    p.add_argument("--tasks-per-step", type=int, default=2)
    p.add_argument("--support", type=int, default=10)
    p.add_argument("--query", type=int, default=6)
    p.add_argument("--inner-steps", type=int, default=3)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--version", default="0.2.0")
    p.add_argument(
        "--lora-layers",
        default="",
        help="comma-separated blocks to adapt (encoder 0-3, decoder 4-7; default: the bundle's)",
    )
    p.add_argument(
        "--new-inner-lr",
        type=float,
        default=None,
        help="inner learning rate of adaptation tensors the bundle lacks (with --lora-layers)",
    )
    p.add_argument(
        "--adapt-stem",
        action="store_true",
        help="also adapt the convolutional stem (LoRA on both convolutions + their biases); "
        "new tensors start at --new-inner-lr",
    )
    p.add_argument(
        "--encoder-lora-rank",
        type=int,
        default=0,
        help="raise the encoder blocks' LoRA rank (the bundle's trained factors are kept, "
        "new directions start as a no-op)",
    )
    p.add_argument(
        "--second-order",
        action="store_true",
        help="full second-order MAML (back-propagate through the inner gradients; ~3x the time)",
    )
    p.add_argument(
        "--support-speed-copies",
        type=parse_speed_copies,
        default=(),
        metavar="F,F",
        help="add copies of every support phrase at these speeds, as the app does with "
        "enrollment takes; the bundle written then names them (enroll_speed_copies)",
    )
    p.add_argument("--workers", type=int, default=0, help="processes that load and augment tasks ahead")
    p.add_argument("--outer-lr", type=float, default=1e-3)
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=0,
        help="ramp the outer learning rates up linearly over this many steps (continuing a bundle)",
    )
    p.add_argument(
        "--base-weight",
        type=float,
        default=0.5,
        help="weight of the unadapted model's query loss in the outer loss (and in choosing "
        "the best step); 0 is plain MAML, higher keeps the model good before enrollment",
    )
    p.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        default="float32",
        help="training passes in bfloat16 autocast (auto: where the CPU computes it natively); "
        "parameters, losses and validation stay float32",
    )
    p.add_argument(
        "--eval-tasks",
        type=int,
        default=8,
        help="fixed validation tasks scored every --eval-every steps (the first 8 are the same "
        "whatever the number, so runs with more still compare with the default's)",
    )
    p.add_argument(
        "--source-weights",
        type=parse_source_weights,
        default={},
        metavar="SRC=W,...",
        help="task sampling weight per corpus source, on top of the defaults "
        "(fotaq=3,espeak=0.5; others 1), e.g. espeak=1.5",
    )
    p.add_argument(
        "--export-checkpoint",
        action="store_true",
        help="write RUN_DIR's checkpoint as the bundle (scored on the validation tasks) "
        "without training, whatever its score",
    )
    p.add_argument(
        "--rebaseline",
        action="store_true",
        help="score the starting model (resumed, or the bundle a fresh run starts from) on "
        "this run's validation tasks first and write a bundle only when a step beats that",
    )
    p.set_defaults(func=_train)

    e = subparsers.add_parser("evaluate", help="WER of base, MAML-adapted and fine-tuned models")
    e.add_argument("--enroll", type=Path, help="folder of NAME.wav + NAME.txt enrollment pairs")
    e.add_argument("--test", type=Path, help="folder of NAME.wav + NAME.txt test pairs")
    e.add_argument("--heldout", action="store_true", help="batch mode: every held-out speaker of the split file")
    e.add_argument("--corpus", type=Path, default=None, help="corpus dir for --heldout")
    e.add_argument("--split", default="test", choices=["train", "validation", "test"])
    e.add_argument("--n-enroll", type=int, default=10)
    e.add_argument("--n-test", type=int, default=15)
    e.add_argument("--max-speakers", type=int, default=0)
    e.add_argument("--speakers", default="", help="comma-separated speaker ids (batch mode; default: all of the split)")
    e.add_argument("--steps", type=int, default=None)
    e.add_argument("--bundle", type=Path, default=None)
    e.add_argument("--no-finetune", action="store_true")
    e.add_argument("--no-check", action="store_true", help="skip the app's cross-validated check (gated_wer)")
    e.add_argument(
        "--speed-copies",
        type=parse_speed_copies,
        default=None,
        metavar="F,F|none",
        help="speeds of the enrollment copies the adaptation adds (default: the bundle's, "
        "as the app; 'none' adapts on the phrases alone)",
    )
    e.add_argument(
        "--finetune-lr",
        type=float,
        default=None,
        help="Adam learning rate of the plain fine-tuning baseline (default: tuned value)",
    )
    e.add_argument(
        "--beam",
        type=beam_width,
        default=None,
        metavar="N",
        help="beam width of every transcription (default: the app's; 1 is greedy)",
    )
    # dictation.adapt.inner_loop.PRECISIONS, spelled out so that parsing imports no torch
    e.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        default=None,
        help="precision of the adaptation passes, MAML and fine-tuning alike (default: the "
        "bundle's inner_precision, as the app)",
    )
    e.add_argument(
        "--reference",
        action="store_true",
        help="also score faster-whisper tiny.en (if installed): whisper_tiny_wer at its default "
        "beam 5, whisper_tiny_greedy_wer greedy",
    )
    e.add_argument("--table", type=Path, default=None, help="write a markdown table (batch mode)")
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--json", action="store_true")
    e.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        default=None,
        metavar=("OLD", "NEW"),
        help="compare two saved `--heldout --json` outputs speaker by speaker on the same test "
        "phrases (no evaluation runs)",
    )
    e.set_defaults(func=_evaluate)


def _default_corpus() -> Path:
    from dictation.lab.corpus.common import default_corpus_dir

    return default_corpus_dir()


def _train(args: argparse.Namespace) -> int:
    import torch

    from dictation.lab.meta_train import SOURCE_WEIGHTS, TrainConfig, train

    torch.set_num_threads(args.threads)
    cfg = TrainConfig(
        steps=args.steps,
        tasks_per_step=args.tasks_per_step,
        support=args.support,
        query=args.query,
        inner_steps=args.inner_steps,
        eval_every=args.eval_every,
        eval_tasks=args.eval_tasks,
        max_minutes=args.minutes,
        outer_lr=args.outer_lr,
        workers=args.workers,
        base_weight=args.base_weight,
        warmup_steps=args.warmup_steps,
        new_inner_lr=args.new_inner_lr,
        adapt_stem=args.adapt_stem,
        encoder_lora_rank=args.encoder_lora_rank,
        second_order=args.second_order,
        support_speed_copies=args.support_speed_copies,
        precision=args.precision,
        source_weights={**SOURCE_WEIGHTS, **args.source_weights},
        lora_layers=tuple(int(x) for x in args.lora_layers.split(",") if x.strip()),
    )
    result = train(
        args.corpus or _default_corpus(),
        args.run_dir,
        args.out or args.run_dir / "bundle",
        cfg,
        args.device,
        args.version,
        rebaseline=args.rebaseline,
        start_from=args.start_from,
        export_checkpoint=args.export_checkpoint,
    )
    print(json.dumps(result))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.compare:
        return _compare(*args.compare, as_json=args.json)
    import torch

    from dictation.adapt.model.bundle import load_bundle
    from dictation.lab.evaluate import evaluate_speaker, load_pairs

    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.bundle)
    if not args.heldout:
        if not (args.enroll and args.test):
            print("evaluate needs --enroll DIR and --test DIR, or --heldout", file=sys.stderr)
            return 2
        enroll, test = load_pairs(args.enroll), load_pairs(args.test)
        res = evaluate_speaker(enroll, test, args.steps, bundle, **_speaker_options(args))
        if args.reference:
            res.update(_reference(test))
        _print(res, args.json)
        return 0
    from dictation.app.audio import load_audio
    from dictation.lab.corpus.readers import read_manifest
    from dictation.lab.meta_train import speakers_by_split

    utts = read_manifest(args.corpus or _default_corpus())
    speakers = speakers_by_split(utts, args.n_enroll + args.n_test)[args.split]
    wanted = [s for s in args.speakers.split(",") if s]
    unknown = [s for s in wanted if s not in speakers]
    if unknown:
        print(f"not in the {args.split} split with enough utterances: {', '.join(unknown)}", file=sys.stderr)
        return 2
    names = (wanted or sorted(speakers))[: args.max_speakers or None]
    rows = []
    for spk in names:
        us = sorted(speakers[spk], key=lambda u: str(u.audio_path))
        items = [(load_audio(u.audio_path), u.text) for u in us[: args.n_enroll + args.n_test]]
        res = evaluate_speaker(
            items[: args.n_enroll], items[args.n_enroll :], args.steps, bundle, **_speaker_options(args)
        )
        res.update({"speaker": spk, "source": us[0].source})
        if args.reference:
            res.update(_reference(items[args.n_enroll :]))
        res.pop("examples", None)
        rows.append(res)
        print(json.dumps(res) if args.json else _row_text(res), flush=True)
    summary = _summary(rows)
    if args.json:
        print(json.dumps({"summary": summary}))
    else:
        print(json.dumps(summary, indent=2))
    if args.table:
        args.table.write_text(_table(rows, summary))
    return 0


def _compare(old: Path, new: Path, as_json: bool) -> int:
    from dictation.lab.compare import compare, compare_text, read_rows

    try:
        result = compare(read_rows(old), read_rows(new))
    except (OSError, ValueError) as exc:
        print(f"evaluate --compare: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if as_json else compare_text(result, str(old), str(new)).rstrip("\n"))
    return 0


def _reference(test: list) -> dict:
    """Stock Whisper tiny.en (faster-whisper) on the test phrases: at its default beam, the
    figure the bars compare with, and greedy (the reference before the app decoded with a beam)."""
    from dictation.lab.evaluate import faster_whisper_wer

    return {"whisper_tiny_wer": faster_whisper_wer(test), "whisper_tiny_greedy_wer": faster_whisper_wer(test, beam=1)}


def _speaker_options(args: argparse.Namespace) -> dict:
    """evaluate_speaker's optional settings from the command line."""
    out: dict = {"with_finetune": not args.no_finetune, "with_gate": not args.no_check}
    if args.beam is not None:
        out["beam"] = args.beam
    if args.finetune_lr is not None:
        out["finetune_lr"] = args.finetune_lr
    if args.speed_copies is not None:
        out["speed_copies"] = args.speed_copies
    if args.precision is not None:
        out["precision"] = args.precision
    return out


def parse_speed_copies(text: str) -> tuple[float, ...]:
    """'0.9,1.1' -> (0.9, 1.1); 'none' or '' -> (); anything else is an argparse error."""
    from dictation.adapt.augment import check_speed_factors

    if text.strip().lower() in ("", "none"):
        return ()
    try:
        return check_speed_factors(text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def parse_source_weights(text: str) -> dict[str, float]:
    """'espeak=1.5,kokoro=2' -> {'espeak': 1.5, 'kokoro': 2.0}; an argparse error otherwise."""
    out: dict[str, float] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or not name.strip() or not weight >= 0:
            raise argparse.ArgumentTypeError(f"{item!r}: expected SOURCE=WEIGHT with a weight >= 0")
        out[name.strip()] = weight
    return out


def _row_text(r: dict) -> str:
    parts = [f"{r.get('speaker', '')}", f"base {r['base_wer']:.1%}", f"adapted {r['adapted_wer']:.1%}"]
    if "gated_wer" in r:
        parts.append(f"gated {r['gated_wer']:.1%}{'' if r['gate_installed'] else ' (kept base)'}")
    if "finetune_wer" in r:
        parts.append(f"finetune {r['finetune_wer']:.1%}")
    if r.get("whisper_tiny_wer") is not None:
        parts.append(f"whisper-tiny {r['whisper_tiny_wer']:.1%}")
    parts.append(f"adapt {r['adapt_seconds']:.1f}s")
    return "  ".join(parts)


def _summary(rows: list[dict]) -> dict:
    import numpy as np

    if not rows:
        return {"speakers": 0}
    keys = [
        "base_wer",
        "adapted_wer",
        "gated_wer",
        "finetune_wer",
        "stock_unpadded_wer",
        "whisper_tiny_wer",
        "whisper_tiny_greedy_wer",
        "adapt_seconds",
    ]
    s = {"speakers": len(rows)}
    for k in keys:
        vals = [r[k] for r in rows if r.get(k) is not None]
        if vals:
            s["mean_" + k] = float(np.mean(vals))
    if "mean_finetune_wer" in s:
        gain_maml = s["mean_base_wer"] - s["mean_adapted_wer"]
        gain_ft = s.get("mean_stock_unpadded_wer", s["mean_base_wer"]) - s["mean_finetune_wer"]
        s["maml_gain"], s["finetune_gain"] = gain_maml, gain_ft
        # How much lower MAML's WER is than fine-tuning's, as a share of MAML's gain over base.
        if gain_maml > 0:
            s["maml_advantage_share"] = (s["mean_finetune_wer"] - s["mean_adapted_wer"]) / gain_maml
    s["worse_than_base"] = worse_than_base(rows)
    probs = {r["speaker"]: worse_probability(r) for r in rows if "utterances" in r}
    if probs:
        # With 15 test phrases one word is more than 2 % relative for most speakers: how
        # often would a resample of the phrases show the speaker worse?
        s["worse_probability"] = {k: round(v, 3) for k, v in probs.items() if k in s["worse_than_base"]}
        s["worse_than_base_95"] = [k for k, v in probs.items() if v >= 0.95]
    s["relative_gain"], s["relative_gain_ci95"] = relative_gain_ci(rows)
    if any("gated_wer" in r for r in rows):
        s["gated_worse_than_base"] = worse_than_base([r for r in rows if "gated_wer" in r], "gated_wer")
        s["gate_kept_base"] = [r["speaker"] for r in rows if r.get("gate_installed") is False]
    return s


def worse_probability(row: dict, margin: float = WORSE_MARGIN, resamples: int = 2000) -> float:
    """Share of paired resamples of a speaker's test phrases (with replacement; fixed seed)
    in which the adapted WER exceeds `margin` x the base WER."""
    import numpy as np

    u = row["utterances"]
    words, base, adapted = (np.array(u[k], dtype=float) for k in ("words", "base_errors", "adapted_errors"))
    idx = np.random.default_rng(0).integers(0, len(words), size=(resamples, len(words)))
    # Same phrases, so the same word count on both sides: compare error counts.
    return float(np.mean(adapted[idx].sum(axis=1) > margin * base[idx].sum(axis=1) + 1e-9))


def _table(rows: list[dict], summary: dict) -> str:
    head = (
        "| speaker | source | base WER | fine-tune WER | MAML WER | MAML, cross-checked (app) | "
        "Whisper tiny.en WER (beam 5) | adapt s |\n|---|---|---|---|---|---|---|---|\n"
    )
    fmt = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
    body = "".join(
        f"| {r['speaker']} | {r['source']} | {fmt(r['base_wer'])} | {fmt(r.get('finetune_wer'))} | "
        f"{fmt(r['adapted_wer'])} | {fmt(r.get('gated_wer'))}{'' if r.get('gate_installed', True) else ' (base kept)'} | "
        f"{fmt(r.get('whisper_tiny_wer'))} | {r['adapt_seconds']:.1f} |\n"
        for r in rows
    )
    mean = (
        f"| **mean** | | {fmt(summary.get('mean_base_wer'))} | {fmt(summary.get('mean_finetune_wer'))} | "
        f"{fmt(summary.get('mean_adapted_wer'))} | {fmt(summary.get('mean_gated_wer'))} | "
        f"{fmt(summary.get('mean_whisper_tiny_wer'))} | "
        f"{summary.get('mean_adapt_seconds', 0):.1f} |\n"
    )
    worse = ""
    if "worse_probability" in summary:
        worse = (
            f"\nSpeakers worse than base after MAML by > 2 % relative: {len(summary['worse_than_base'])}; "
            f"worse in >= 95 % of resamples of their test phrases: {len(summary['worse_than_base_95'])}"
            + "".join(f"\n- {k}: {v:.0%} of resamples" for k, v in summary["worse_probability"].items())
            + "\n"
        )
    beams = sorted({r["beam"] for r in rows if "beam" in r})
    decoding = "" if not beams else "Our models decode with beam " + ", ".join(map(str, beams)) + " (1 = greedy).\n\n"
    return decoding + head + body + mean + "\n" + _group_table(rows) + worse


def _group_table(rows: list[dict]) -> str:
    """Per-source means (per-speaker WER averaged), plus all speakers."""
    import numpy as np

    cols = [
        ("base", "base_wer"),
        ("MAML", "adapted_wer"),
        ("MAML, app check", "gated_wer"),
        ("fine-tune", "finetune_wer"),
        ("stock weights, our input", "stock_unpadded_wer"),
        ("Whisper tiny.en (beam 5)", "whisper_tiny_wer"),
        ("Whisper tiny.en, greedy", "whisper_tiny_greedy_wer"),
    ]
    cols = [(t, k) for t, k in cols if any(r.get(k) is not None for r in rows)]
    groups = sorted({r["source"] for r in rows}) + ["all"]
    out = (
        "| source | speakers | "
        + " | ".join(t for t, _ in cols)
        + " | MAML gain, relative (95 % CI) |\n|---|---|"
        + "---|" * (len(cols) + 1)
        + "\n"
    )
    for g in groups:
        rs = rows if g == "all" else [r for r in rows if r["source"] == g]
        vals = []
        for _, k in cols:
            v = [r[k] for r in rs if r.get(k) is not None]
            vals.append(f"{np.mean(v):.1%}" if v else "n/a")
        gain, (lo, hi) = relative_gain_ci(rs)
        vals.append(f"{gain:.0%} ({lo:.0%} to {hi:.0%})")
        out += f"| {g} | {len(rs)} | " + " | ".join(vals) + " |\n"
    return out


def _print(res: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(res))
    else:
        print(_row_text(res))
        for ex in res.get("examples", []):
            print(f"  ref:     {ex['ref']}\n  base:    {ex['base']}\n  adapted: {ex['adapted']}")
