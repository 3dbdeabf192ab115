# Showed (bundle 0.2.0, 6 meta-validation speakers): 5 inner steps beat 3 and 8, and lr 1e-2 is the fine-tuning baseline's rate (lab.evaluate.FINETUNE_LR); steps re-checked since with scripts/adaptation_curves.py (docs/lab-notebook.md, Training recipe 4).
"""Pick the user-time inner steps and the fine-tuning baseline's learning rate on
meta-validation speakers (never on the held-out test split).

`python docs/experiments/tune_adaptation.py [--corpus DIR] [--bundle DIR] [--speakers N]
        [--steps 3,5,8] [--finetune-lrs 0.003,0.01,0.03] [--n-test 8]`

Prints mean WER per setting: base once, MAML-adapted per step count, and plain
fine-tuning (Adam from the non-meta-learned init, same parameters/data) per learning
rate at the bundle's inner-step count.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.model.bundle import load_bundle
from dictation.app.audio import load_audio
from dictation.lab.corpus.common import default_corpus_dir
from dictation.lab.corpus.readers import read_manifest
from dictation.lab.evaluate import evaluate_speaker
from dictation.lab.meta_tasks import speakers_by_split


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=None)
    p.add_argument("--bundle", type=Path, default=None)
    p.add_argument("--speakers", type=int, default=6)
    p.add_argument("--n-enroll", type=int, default=10)
    p.add_argument("--n-test", type=int, default=8)
    p.add_argument("--steps", default="3,5,8")
    p.add_argument("--finetune-lrs", default="0.003,0.01,0.03")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    bundle = load_bundle(args.bundle)
    speakers = speakers_by_split(read_manifest(args.corpus or default_corpus_dir()), args.n_enroll + args.n_test)[
        "validation"
    ]
    # Spread the choice over sources: real voices first, then the synthetic ones.
    names = sorted(speakers, key=lambda s: (speakers[s][0].source != "fotaq", s))[: args.speakers]
    rows: dict[str, list[float]] = {}
    for spk in names:
        us = sorted(speakers[spk], key=lambda u: str(u.audio_path))[: args.n_enroll + args.n_test]
        items = [(load_audio(u.audio_path), u.text) for u in us]
        enroll, test = items[: args.n_enroll], items[args.n_enroll :]
        for i, steps in enumerate(int(s) for s in args.steps.split(",")):
            r = evaluate_speaker(enroll, test, steps, bundle, with_finetune=False)
            if i == 0:
                rows.setdefault("base", []).append(r["base_wer"])
            rows.setdefault(f"maml_steps_{steps}", []).append(r["adapted_wer"])
        for lr in [float(x) for x in args.finetune_lrs.split(",")]:
            r = evaluate_speaker(enroll, test, None, bundle, finetune_lr=lr)
            rows.setdefault(f"finetune_lr_{lr:g}", []).append(r["finetune_wer"])
        print(json.dumps({"speaker": spk, **{k: round(v[-1], 4) for k, v in rows.items()}}), flush=True)
    print(json.dumps({"speakers": names, **{k: round(float(np.mean(v)), 4) for k, v in rows.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
