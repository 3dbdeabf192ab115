"""Per-speaker adaptation curves on meta-validation speakers (never the held-out test split),
for choosing the app's adaptation protocol: how many inner steps, whether speed-perturbed
copies of the enrollment takes help, and which check decides whether to install.

`python scripts/adaptation_curves.py [--split validation] [--speakers a,b] [--shard I/N]
        [--steps 3,5,8,12] [--n-enroll 10 | 10,20,30] [--n-test 20]
        [--protocols plain,speed,speed0.8/0.9/1.1/1.2,lr0.5,enc,dec] [--no-cv | --cv-loss-only]
        --out FILE.jsonl`
`python scripts/adaptation_curves.py --summary FILE.jsonl [FILE.jsonl ...]`: mean WER per
protocol and step count, speakers worse than base by > 2 % relative, what choosing each
speaker's step count by its cross-validated loss would give, and what each install rule (on
the cross-validated check) would have given.

One JSON line per speaker:
- base_wer; wer[protocol][k]: test WER after k inner steps on all 10 takes, for
  protocol "plain" and "speed" (plus 0.9x and 1.1x copies of every take);
- cv_loss[protocol][k]: 2-fold cross-validated token loss (adapt on 5 takes, score the
  other 5, both ways) after k steps, k = 0 being the unadapted model;
- cv_wer[protocol][k]: WER of the same fold models on the takes they did not see.
With several enrollment sizes (`--n-enroll 10,20,30`, what a user gets after one, two or
three sessions of prompts) the test phrases are the same for every size (the ones after
the largest enrollment) and the protocol keys read "speed@20".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.augment import with_speed_copies as speed_copies
from dictation.adapt.inner_loop import PRECISIONS, batch_loss, make_batches, resolve_precision
from dictation.adapt.learner import Learner
from dictation.adapt.model.bundle import load_bundle
from dictation.adapt.model.inference import transcribe
from dictation.adapt.model.loader import backbone_dir
from dictation.app.audio import load_audio
from dictation.app.decoding import load_tokenizer_and_rules
from dictation.app.text import wer
from dictation.lab.corpus.common import default_corpus_dir
from dictation.lab.corpus.readers import read_manifest
from dictation.lab.meta_tasks import speakers_by_split

SPEEDS = (0.9, 1.1)  # protocol "speed"; "plain" adapts on the takes alone, whatever the bundle names


def with_speed_copies(items, speeds=SPEEDS):
    return speed_copies(items, speeds)


def protocol_speeds(proto: str) -> tuple[float, ...]:
    """The copies' speeds a protocol names: 'speed' is 0.9x and 1.1x, 'speed0.85/0.95/1.05/1.15'
    lists its own; none without a speed part."""
    for mod in proto.split("+"):
        if mod == "speed":
            return SPEEDS
        if mod.startswith("speed"):
            return tuple(float(x) for x in mod[5:].split("/"))
    return ()


def summarize(paths: list[Path]) -> None:
    """Print the per-protocol means and the install rules' outcomes for curve files."""
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]
    base = float(np.mean([r["base_wer"] for r in rows]))
    print(f"{len(rows)} speakers; base {base:.2%}")

    def worse(wers):
        return sum(w > r["base_wer"] * 1.02 + 1e-9 for w, r in zip(wers, rows))

    protos = sorted({p for r in rows for p in r["wer"]})
    for proto in protos:
        have = [r for r in rows if proto in r["wer"]]
        for k in sorted({k for r in have for k in r["wer"][proto]}, key=int):
            w = [r["wer"][proto][k] for r in have]
            b = float(np.mean([r["base_wer"] for r in have]))
            print(
                f"{proto:8s} k={k:>2s} n={len(have)}: base {b:.2%} -> {np.mean(w):.2%}, "
                f"worse than base {worse(w) if len(have) == len(rows) else '-'}"
            )
            for src in sorted({r["source"] for r in have}):
                sb = [r["base_wer"] for r in have if r["source"] == src]
                sa = [r["wer"][proto][k] for r in have if r["source"] == src]
                print(
                    f"    {src:8s} n={len(sb):2d}: {np.mean(sb):.2%} -> {np.mean(sa):.2%} "
                    f"({1 - np.mean(sa) / max(np.mean(sb), 1e-9):.0%} relative)"
                )
    for proto in [p for p in protos if all(p in r.get("cv_loss", {}) for r in rows)]:
        select_steps_by_cv_loss(rows, proto, worse)
    from dictation.adapt.worker import decide_install

    for proto in [p for p in protos if all(p in r.get("cv_wer", {}) for r in rows)]:
        for k in sorted(rows[0]["wer"][proto], key=int):
            cv = [(r["cv_wer"][proto]["0"], r["cv_wer"][proto][k]) for r in rows]
            cl = [(r["cv_loss"][proto]["0"], r["cv_loss"][proto][k]) for r in rows]
            test_delta = [r["wer"][proto][k] - r["base_wer"] for r in rows]
            rules = {
                "always": [True] * len(rows),
                "app (cross-checked WER guard)": [decide_install(b, a)[0] for b, a in cv],
                "cross-checked WER no worse": [a <= b for b, a in cv],
                "cross-checked loss no worse": [a <= b for b, a in cl],
            }
            print(
                f"{proto} k={k}: correlation of test WER change with cross-checked WER change "
                f"{np.corrcoef(test_delta, [a - b for b, a in cv])[0, 1]:.2f}, "
                f"with cross-checked loss change {np.corrcoef(test_delta, [a - b for b, a in cl])[0, 1]:.2f}"
            )
            for name, installed in rules.items():
                g = [r["wer"][proto][k] if i else r["base_wer"] for r, i in zip(rows, installed)]
                print(
                    f"    {name:32s} installed {sum(installed):2d}/{len(rows)}, mean {np.mean(g):.2%}, "
                    f"worse than base {worse(g)}"
                )


def select_steps_by_cv_loss(rows: list[dict], proto: str, worse) -> None:
    """What choosing each speaker's step count by its cross-validated loss would give:
    for each candidate set, the k with the lowest cv_loss (ties: the fewest steps), its
    test WER against the fixed step counts, and the oracle (best test WER in the set)."""
    ks = sorted(set.intersection(*(set(r["wer"][proto]) & set(r["cv_loss"][proto]) for r in rows)), key=int)
    if len(ks) < 2:
        return

    def test_wer(r, k):
        return r["base_wer"] if k == "0" else r["wer"][proto][k]

    sets = [ks[i:] for i in range(len(ks) - 1)]  # every suffix: "this many steps or more"
    if {"5", "10"} <= set(ks) and ["5", "10"] not in sets:
        sets.append(["5", "10"])
    if "0" not in ks:
        sets.append(["0"] + ks)  # may also refuse to adapt
    sets = [c for c in sets if len(c) >= 2]
    for cand in sets:
        chosen = [min(cand, key=lambda k: (r["cv_loss"][proto][k], int(k))) for r in rows]
        got = [test_wer(r, k) for r, k in zip(rows, chosen)]
        oracle = [min(test_wer(r, k) for k in cand) for r in rows]
        counts = {k: chosen.count(k) for k in cand}
        print(
            f"{proto}: steps chosen by cross-validated loss among {{{','.join(cand)}}}: mean {np.mean(got):.2%}, "
            f"worse than base {worse(got)}, chosen {counts}; oracle {np.mean(oracle):.2%}"
        )
        for src in sorted({r["source"] for r in rows}):
            idx = [i for i, r in enumerate(rows) if r["source"] == src]
            b = np.mean([rows[i]["base_wer"] for i in idx])
            g = np.mean([got[i] for i in idx])
            picks = [chosen[i] for i in idx]
            print(
                f"    {src:8s} n={len(idx):2d}: {b:.2%} -> {g:.2%} ({1 - g / max(b, 1e-9):.0%} relative), "
                f"chosen {dict(sorted((k, picks.count(k)) for k in set(picks)))}"
            )


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--summary":
        summarize([Path(a) for a in sys.argv[2:]])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=None)
    p.add_argument("--bundle", type=Path, default=None)
    p.add_argument("--split", default="validation")
    p.add_argument("--speakers", default="")
    p.add_argument("--shard", default="0/1")
    p.add_argument(
        "--n-enroll", default="10", help="enrollment size, or comma-separated sizes measured on the same test phrases"
    )
    p.add_argument("--n-test", type=int, default=20)
    p.add_argument("--steps", default="3,5,8,12")
    p.add_argument("--protocols", default="plain,speed")
    p.add_argument("--no-cv", action="store_true", help="skip the 2-fold cross-validation")
    p.add_argument(
        "--cv-loss-only",
        action="store_true",
        help="cross-validate the token loss only (no transcription of the folds: "
        "what choosing a step count per speaker needs)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="inner-loop precision (default: as the app, bfloat16 where the CPU has it)",
    )
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    bundle = load_bundle(args.bundle)
    model = bundle.model.eval()
    tok, rules = load_tokenizer_and_rules(backbone_dir())
    learner = Learner.from_bundle(bundle)
    init = learner.init
    base_lrs = learner.inner_lrs
    lrs = base_lrs
    record = sorted(int(s) for s in args.steps.split(","))
    sizes = sorted(int(s) for s in args.n_enroll.split(","))
    device = torch.device("cpu")

    def test_wer(test, values):
        with learner.applied(values):
            hyps = [transcribe(model, a, rules, tok) for a, _ in test]
        return wer([t for _, t in test], hyps)

    def protocol_lrs(proto: str) -> dict[str, torch.Tensor]:
        """'plain', or '+'-joined modifiers: 'lrX' scales every rate by X, 'enc'/'dec'
        adapt only the encoder/decoder tensors, 'speed' adds speed-perturbed copies (0.9x and
        1.1x; 'speed0.85/0.95/1.05/1.15' names its own speeds)."""
        scaled = dict(base_lrs)
        for mod in proto.split("+"):
            if mod.startswith("lr"):
                scaled = {n: v * float(mod[2:]) for n, v in scaled.items()}
            elif mod in ("enc", "dec"):
                keep = "encoder." if mod == "enc" else "decoder."
                scaled = {n: v if n.startswith(keep) else torch.zeros_like(v) for n, v in scaled.items()}
            elif mod != "plain" and not mod.startswith("speed"):
                raise SystemExit(f"unknown protocol part {mod!r}")
        return scaled

    def curve(batch, on_k):
        params, done = dict(init), 0
        on_k(0, params)
        for k in sorted({k for k in record if k > 0}):
            params, _ = learner.adapt(batch, k - done, start=params, lrs=lrs, precision=args.precision)
            done = k
            on_k(k, params)

    def cv_losses(enroll, speeds):
        half = len(enroll) // 2
        folds = [(enroll[:half], enroll[half:]), (enroll[half:], enroll[:half])]
        total, refs, hyps = {}, [], {}
        for train, held in folds:
            hb = make_batches(model, tok, held, device)
            tb = make_batches(model, tok, with_speed_copies(train, speeds), device)
            refs += [t for _, t in held]

            def score(k, params, hb=hb, held=held):
                with torch.no_grad():
                    total[k] = total.get(k, 0.0) + float(batch_loss(model, params, hb)) / 2
                if args.cv_loss_only:
                    return
                with learner.applied(params):
                    hyps.setdefault(k, []).extend(transcribe(model, a, rules, tok) for a, _ in held)

            curve(tb, score)
        return total, {k: wer(refs, h) for k, h in hyps.items()}

    speakers = speakers_by_split(read_manifest(args.corpus or default_corpus_dir()), sizes[-1] + args.n_test)[
        args.split
    ]
    wanted = [s for s in args.speakers.split(",") if s] or sorted(speakers)
    i, n = (int(x) for x in args.shard.split("/"))
    wanted = wanted[i::n]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["speaker"] for line in args.out.read_text().splitlines() if line.strip()}
    for spk in wanted:
        if spk in done:
            continue
        us = sorted(speakers[spk], key=lambda u: str(u.audio_path))[: sizes[-1] + args.n_test]
        items = [(load_audio(u.audio_path), u.text) for u in us]
        test = items[sizes[-1] :]
        row = {
            "speaker": spk,
            "source": us[0].source,
            "precision": resolve_precision(args.precision),
            "base_wer": test_wer(test, init),
            "wer": {},
            "cv_loss": {},
        }
        row["cv_wer"] = {}
        for size in sizes:
            enroll = items[:size]
            for proto in args.protocols.split(","):
                key = proto if len(sizes) == 1 else f"{proto}@{size}"
                speeds = protocol_speeds(proto)
                lrs = protocol_lrs(proto)
                batch = make_batches(model, tok, with_speed_copies(enroll, speeds), device)
                wers = {}
                curve(batch, lambda k, params, wers=wers, test=test: k and wers.__setitem__(k, test_wer(test, params)))
                row["wer"][key] = wers
                if args.no_cv:
                    continue
                losses, cv_wer = cv_losses(enroll, speeds)
                row["cv_loss"][key] = {k: round(v, 4) for k, v in losses.items()}
                if cv_wer:
                    row["cv_wer"][key] = cv_wer
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
