"""`dictation train` (meta-training) and `dictation evaluate` (held-out evaluation)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dictation.app.decoding import beam_width


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
    e.add_argument(
        "--takes",
        type=parse_takes,
        default=None,
        metavar="N[,N...]",
        help="one evaluation per N (e.g. 10,20,40,80): enrolled on the first N phrases (instead "
        "of --n-enroll; from --enroll DIR, sorted by name), tested on the same phrases for "
        "every N; JSON lines gain 'takes', and the gains of MAML and fine-tuning at each N follow",
    )
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
    e.add_argument(
        "--voice-space",
        choices=("on", "off"),
        default="on",
        help="also score the bundle's voice space, when it has one: the bank alone (voice_space_zero_wer) "
        "and the bank + MAML steps (voice_space_wer); with --heldout also the embedding's "
        "speaker-verification EER (voice_space_eer)",
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

    from dictation.lab.meta_tasks import SOURCE_WEIGHTS
    from dictation.lab.meta_train import TrainConfig, train

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
        old, new = args.compare
        return _compare(old, new, as_json=args.json)
    import torch

    from dictation.adapt.model.bundle import load_bundle
    from dictation.lab.evaluate import evaluate_speaker, load_pairs
    from dictation.lab.report import speaker_line

    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.bundle)
    if args.voice_space == "on":
        from dictation.adapt.voice_space.space import load_voice_space

        args.loaded_voice_space = load_voice_space(bundle.path)
    if not args.heldout:
        if not (args.enroll and args.test):
            print("evaluate needs --enroll DIR and --test DIR, or --heldout", file=sys.stderr)
            return 2
        enroll, test = load_pairs(args.enroll), load_pairs(args.test)
        if args.takes and args.takes[-1] > len(enroll):
            print(
                f"--takes {args.takes[-1]} needs that many pairs in {args.enroll} (it has {len(enroll)})",
                file=sys.stderr,
            )
            return 2
        rows, reference = [], None
        for n in args.takes or [len(enroll)]:
            res = evaluate_speaker(enroll[:n], test, args.steps, bundle, **_speaker_options(args))
            res.pop("voice_embeddings", None)
            if args.takes:
                res["takes"] = n
            if args.reference:
                from dictation.lab.heldout import reference_wers

                reference = reference if reference is not None else reference_wers(test)
                res.update(reference)
            _print(res, args.json)
            rows.append(res)
        if args.takes:
            _print_gains(rows, args.json)
        return 0
    from dictation.lab.heldout import evaluate_heldout, heldout_speakers
    from dictation.lab.report import markdown_table, summarize

    try:
        speakers = heldout_speakers(
            args.corpus or _default_corpus(),
            args.split,
            (args.takes[-1] if args.takes else args.n_enroll) + args.n_test,
            [s for s in args.speakers.split(",") if s],
            args.max_speakers,
        )
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    rows = []
    voices: dict = {}  # speaker -> embeddings of their enrollment and test utterances
    for res in evaluate_heldout(
        speakers,
        args.n_enroll,
        args.n_test,
        bundle,
        args.steps,
        args.reference,
        takes=args.takes,
        **_speaker_options(args),
    ):
        embeddings = res.pop("voice_embeddings", None)
        if embeddings is not None:
            voices.setdefault(res["speaker"], embeddings)  # the same utterances at every N
        line = speaker_line(res) if "takes" not in res else f"{res['takes']} takes  {speaker_line(res)}"
        print(json.dumps(res) if args.json else line, flush=True)
        rows.append(res)
    from dictation.lab.voice_eval import heldout_eer

    eer = heldout_eer(voices, args.takes[0] if args.takes else args.n_enroll)
    tables = []
    for n in args.takes or [None]:
        group = [r for r in rows if r.get("takes") == n]
        summary = summarize(group) if n is None else {**summarize(group), "takes": n}
        if eer is not None:
            summary["voice_space_eer"] = eer
        if args.json:
            print(json.dumps({"summary": summary}))
        else:
            print(json.dumps(summary, indent=2))
        tables.append(
            markdown_table(group, summary) if n is None else f"### {n} takes\n\n{markdown_table(group, summary)}"
        )
    if args.takes:
        _print_gains(rows, args.json)
    if args.table:
        args.table.write_text("\n".join(tables))
    return 0


def _print_gains(rows: list[dict], as_json: bool) -> None:
    """The held-out gains of MAML and fine-tuning for each number of takes (--takes)."""
    from dictation.lab.heldout import gains_by_takes, takes_table

    gains = gains_by_takes(rows)
    print(json.dumps({"takes_summary": gains}) if as_json else takes_table(gains))


def _compare(old: Path, new: Path, as_json: bool) -> int:
    from dictation.lab.compare import compare, compare_text, read_rows

    try:
        result = compare(read_rows(old), read_rows(new))
    except (OSError, ValueError) as exc:
        print(f"evaluate --compare: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if as_json else compare_text(result, str(old), str(new)).rstrip("\n"))
    return 0


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
    if getattr(args, "loaded_voice_space", None) is not None:
        out["voice_space"] = args.loaded_voice_space
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


def parse_takes(text: str) -> list[int]:
    """'10,20,40,80' -> [10, 20, 40, 80] (sorted, without repeats); each at least 2 (the
    check splits the takes in two); anything else is an argparse error."""
    try:
        counts = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        counts = []
    if not counts or counts[0] < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected whole numbers of at least 2, e.g. 10,20,40,80")
    return counts


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


def _print(res: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(res))
    else:
        from dictation.lab.report import speaker_line

        print(speaker_line(res) if "takes" not in res else f"{res['takes']} takes  {speaker_line(res)}")
        for ex in res.get("examples", []):
            print(f"  ref:     {ex['ref']}\n  base:    {ex['base']}\n  adapted: {ex['adapted']}")
