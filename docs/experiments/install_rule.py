"""The adaptation's install rule on meta-validation speakers (never the held-out test split).

For each validation speaker: the app's held-out check (`held_out_check`: 2-fold
cross-validated token loss at shrink factors 0, 0.5, 1 and WER) on its first 10
utterances, the full adaptation on those 10 (the bundle's protocol: steps, speed
copies, precision), and the WER on the speaker's next 15 utterances of the base model,
the full update and the update at the check's best factor (the only ones a rule on this
check can install). The rule (`install_rule.decide`) is then
applied to the check, and the test WER of what it installs is compared with always
installing the full update.

`nice -n 19 python docs/experiments/install_rule.py --threads 1 --out F.jsonl`
(resumes: speakers already in F are skipped); `--summary F.jsonl` prints the figures
again, also for other margins (`--loss-margins`, `--wer-margins`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dictation.adapt import install_rule
from dictation.adapt.augment import with_speed_copies
from dictation.adapt.held_out_check import HeldOutCheck, held_out_check, shrunk
from dictation.adapt.inner_loop import make_batches, resolve_precision
from dictation.adapt.learner import Learner
from dictation.adapt.model.bundle import load_bundle
from dictation.adapt.model.inference import transcribe
from dictation.adapt.model.loader import backbone_dir
from dictation.adapt.procedure import precision_of, speed_copies_of, steps_of
from dictation.app.audio import load_audio
from dictation.app.decoding import load_tokenizer_and_rules
from dictation.app.text import wer
from dictation.lab.corpus.common import default_corpus_dir
from dictation.lab.corpus.readers import read_manifest
from dictation.lab.meta_tasks import speakers_by_split

N_ENROLL, N_TEST = 10, 15


def measure(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    bundle = load_bundle()
    model = bundle.model.eval()
    tok, rules = load_tokenizer_and_rules(backbone_dir())
    learner = Learner.from_bundle(bundle)
    init = learner.init
    steps = steps_of(bundle, N_ENROLL)
    copies = speed_copies_of(bundle)
    precision = resolve_precision(precision_of(bundle))
    speakers = speakers_by_split(read_manifest(args.corpus or default_corpus_dir()), N_ENROLL + N_TEST)["validation"]
    done = set()
    if args.out.exists():
        done = {json.loads(line)["speaker"] for line in args.out.read_text().splitlines() if line.strip()}
    for spk in sorted(speakers)[: args.max_speakers or None]:
        if spk in done:
            continue
        t0 = time.perf_counter()
        us = sorted(speakers[spk], key=lambda u: str(u.audio_path))[: N_ENROLL + N_TEST]
        items = [(load_audio(u.audio_path), u.text) for u in us]
        enroll, test = items[:N_ENROLL], items[N_ENROLL:]
        check = held_out_check(enroll, device="cpu", bundle=bundle)
        batches = make_batches(model, tok, with_speed_copies(enroll, copies), "cpu")
        adapted, _ = learner.adapt(batches, steps, precision=precision)
        test_wer = {}
        # The rule installs the best factor of the check or nothing: only those need words.
        for factor in sorted({0.0, 1.0, check.best_factor()}):
            with learner.applied(shrunk(init, adapted, factor)):
                hyps = [transcribe(model, a, rules, tok) for a, _ in test]
            test_wer[str(factor)] = wer([t for _, t in test], hyps)
        row = {
            "speaker": spk,
            "source": us[0].source,
            "cv_loss": {str(a): round(v, 5) for a, v in check.losses.items()},
            "cv_wer": {str(a): v for a, v in check.wers.items()},
            "test_wer": test_wer,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def summarize(path: Path, loss_margins: list[float], wer_margins: list[float]) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    base = [r["test_wer"]["0.0"] for r in rows]

    def report(name: str, got: list[float], chosen: list[float]) -> None:
        worse = sum(g > b * 1.02 + 1e-9 for g, b in zip(got, base))
        better = sum(g < b / 1.02 - 1e-9 for g, b in zip(got, base))
        counts = {a: chosen.count(a) for a in sorted(set(chosen))}
        print(f"{name:44s} mean {np.mean(got):6.2%}  worse than base {worse:2d}  better {better:2d}  factors {counts}")

    print(f"{len(rows)} validation speakers, base mean {np.mean(base):.2%}")
    report("always the full update (the old rule)", [r["test_wer"]["1.0"] for r in rows], [1.0] * len(rows))
    for lm in loss_margins:
        for wm in wer_margins:
            chosen = []
            for r in rows:
                check = HeldOutCheck(
                    {float(a): v for a, v in r["cv_loss"].items()},
                    {float(a): v for a, v in r["cv_wer"].items()},
                    N_ENROLL,
                    2,
                    0.0,
                )
                chosen.append(install_rule.decide(check, loss_margin=lm, wer_margin=wm).factor)
            got = [r["test_wer"][str(a)] for r, a in zip(rows, chosen)]
            report(f"rule, loss margin {lm:.1%}, WER margin {wm:.1%}", got, chosen)
    for src in sorted({r["source"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["source"] == src]
        print(
            f"  {src:8s} n={len(idx):2d}: base {np.mean([base[i] for i in idx]):.2%}, "
            f"full update {np.mean([rows[i]['test_wer']['1.0'] for i in idx]):.2%}"
        )
    print(f"seconds per speaker: {np.mean([r['seconds'] for r in rows]):.0f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-speakers", type=int, default=0)
    p.add_argument("--out", type=Path)
    p.add_argument("--summary", type=Path)
    p.add_argument("--loss-margins", default=f"0,{install_rule.LOSS_MARGIN},0.05")
    p.add_argument("--wer-margins", default=f"0,{install_rule.WER_MARGIN},0.02")
    args = p.parse_args()
    margins = (
        sorted({float(x) for x in args.loss_margins.split(",")}),
        sorted({float(x) for x in args.wer_margins.split(",")}),
    )
    if args.summary:
        summarize(args.summary, *margins)
        return 0
    if not args.out:
        p.error("--out is required")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    measure(args)
    summarize(args.out, *margins)
    return 0


if __name__ == "__main__":
    sys.exit(main())
