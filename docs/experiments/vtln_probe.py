# Showed (bundle 0.4.3, 24 meta-validation speakers): VTLN at enrollment cut base WER 14.7 -> 14.4 % but raised adapted WER 12.5 -> 13.2 %; rejected (docs/lab-notebook.md, "Vocal-tract-length normalisation").
"""Vocal-tract-length normalisation (VTLN) at enrollment, measured on meta-validation speakers.

For each speaker (the same enrollment and test files as `scripts/adaptation_curves.py`): the
unadapted model's token loss on the enrollment takes under each warp factor of the mel
filters (`LogMel(warp=...)`), the factor that minimises it, and test WER

- base: no warp, no adaptation;       base_vtln: the chosen warp, no adaptation;
- adapted: no warp, the bundle's inner loop (speed copies, its steps);
- adapted_vtln: the chosen warp for enrollment and test alike, then the same inner loop;

plus the test loss under every warp, to tell whether the enrollment choice tracks the test.

`python docs/experiments/vtln_probe.py [--split validation] [--shard I/N] [--warps 0.88,...] --out F.jsonl`
`python docs/experiments/vtln_probe.py --summary F.jsonl [...]`
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.augment import with_speed_copies
from dictation.adapt.features import LogMel
from dictation.adapt.inner_loop import batch_loss, inner_loop, make_batches
from dictation.adapt.model.bundle import load_bundle
from dictation.adapt.model.inference import transcribe
from dictation.adapt.model.loader import backbone_dir
from dictation.adapt.procedure import speed_copies_of, steps_of
from dictation.app.audio import load_audio
from dictation.app.decoding import DecodingRules, TextTokenizer
from dictation.app.text import wer
from dictation.lab.corpus.common import default_corpus_dir
from dictation.lab.corpus.readers import read_manifest
from dictation.lab.meta_tasks import speakers_by_split

WARPS = (0.88, 0.91, 0.94, 0.97, 1.0, 1.03, 1.06, 1.09, 1.12)


def summarize(paths: list[Path]) -> None:
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]
    print(f"{len(rows)} speakers")
    for key in ("base", "base_vtln", "adapted", "adapted_vtln"):
        worse = sum(r[key] > r["base"] * 1.02 + 1e-9 for r in rows)
        print(f"{key:13s} {np.mean([r[key] for r in rows]):.2%}  worse than base: {worse}")
    by_source: dict[str, list] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r)
    for src, rs in sorted(by_source.items()):
        print(
            f"  {src:9s} n={len(rs):2d} "
            + " ".join(
                f"{k} {np.mean([r[k] for r in rs]):.2%}" for k in ("base", "base_vtln", "adapted", "adapted_vtln")
            )
        )
    agree = sum(r["warp"] == min(r["test_loss"], key=r["test_loss"].get) for r in rows)
    print(
        f"chosen warp = test-loss-best warp on {agree} of {len(rows)}; chosen warps "
        f"{sorted(float(r['warp']) for r in rows)}"
    )


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--summary":
        summarize([Path(a) for a in sys.argv[2:]])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=None)
    p.add_argument("--split", default="validation")
    p.add_argument("--shard", default="0/1")
    p.add_argument("--n-enroll", type=int, default=10)
    p.add_argument("--n-test", type=int, default=20)
    p.add_argument("--warps", default=",".join(str(w) for w in WARPS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    bundle = load_bundle()
    model = bundle.model.eval()
    bdir = backbone_dir()
    tok, rules = TextTokenizer(bdir / "tokenizer.json"), DecodingRules.from_config(bdir / "config.json")
    names = bundle.adapt_names
    named = dict(model.named_parameters())
    init = {n: named[n].detach().clone() for n in names}
    lrs = {n: bundle.inner_lrs[n] for n in names}
    steps = steps_of(bundle, args.n_enroll, None)
    speeds = speed_copies_of(bundle, None)
    warps = [float(w) for w in args.warps.split(",")]
    front = {w: LogMel(warp=w) for w in warps + [1.0]}

    def set_params(values):
        with torch.no_grad():
            for n, v in values.items():
                named[n].copy_(v)

    def test_wer(test, warp, values=None):
        set_params(values or init)
        hyps = [transcribe(model, a, rules, tok, front_end=front[warp]) for a, _ in test]
        set_params(init)
        return wer([t for _, t in test], hyps)

    def loss(items, warp):
        with torch.no_grad():
            return float(batch_loss(model, None, make_batches(model, tok, items, front_end=front[warp])))

    def adapt(enroll, warp):
        batch = make_batches(model, tok, with_speed_copies(enroll, speeds), front_end=front[warp])
        params = {n: v.clone().requires_grad_(True) for n, v in init.items()}
        fast, _ = inner_loop(model, params, lrs, batch, steps)
        return {n: v.detach() for n, v in fast.items()}

    speakers = speakers_by_split(read_manifest(args.corpus or default_corpus_dir()), args.n_enroll + args.n_test)[
        args.split
    ]
    i, n = (int(x) for x in args.shard.split("/"))
    done = set()
    if args.out.exists():
        done = {json.loads(line)["speaker"] for line in args.out.read_text().splitlines() if line.strip()}
    for spk in sorted(speakers)[i::n]:
        if spk in done:
            continue
        us = sorted(speakers[spk], key=lambda u: str(u.audio_path))[: args.n_enroll + args.n_test]
        items = [(load_audio(u.audio_path), u.text) for u in us]
        enroll, test = items[: args.n_enroll], items[args.n_enroll :]
        enroll_loss = {str(w): round(loss(enroll, w), 4) for w in warps}
        chosen = float(min(enroll_loss, key=enroll_loss.get))
        row = {
            "speaker": spk,
            "source": us[0].source,
            "warp": str(chosen),
            "enroll_loss": enroll_loss,
            "test_loss": {str(w): round(loss(test, w), 4) for w in warps},
            "base": test_wer(test, 1.0),
            "adapted": test_wer(test, 1.0, adapt(enroll, 1.0)),
        }
        if chosen == 1.0:
            row["base_vtln"], row["adapted_vtln"] = row["base"], row["adapted"]
        else:
            row["base_vtln"] = test_wer(test, chosen)
            row["adapted_vtln"] = test_wer(test, chosen, adapt(enroll, chosen))
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(
            json.dumps({k: row[k] for k in ("speaker", "warp", "base", "base_vtln", "adapted", "adapted_vtln")}),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
