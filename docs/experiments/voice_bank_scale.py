"""The voice bank's scale and sharpness, chosen on meta-validation speakers (never the
held-out test split), zero steps: for each validation speaker the voice is placed from
its first 10 utterances and the next 15 are transcribed by the base model and by the
bank's start at each setting.

`nice -n 19 python docs/experiments/voice_bank_scale.py --bundle runs/voice/bundle
--out F.jsonl [--scales 0.25,0.5,1] [--sharpness 5,20,100]` (resumes: speakers already
in F are skipped); the summary (mean WER per setting, speakers worse than base by more
than 2 % relative) is printed at the end.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.learner import Learner
from dictation.adapt.model.bundle import load_bundle
from dictation.adapt.model.inference import transcribe
from dictation.adapt.model.loader import backbone_dir
from dictation.adapt.voice_space.space import load_voice_space
from dictation.app.audio import load_audio
from dictation.app.decoding import load_tokenizer_and_rules
from dictation.app.text import wer
from dictation.lab.corpus.common import default_corpus_dir
from dictation.lab.heldout import heldout_speakers


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scales", default="0.25,0.5,1")
    p.add_argument("--sharpness", default="5,20,100")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.bundle)
    space = load_voice_space(bundle.path)
    assert space is not None and space.bank is not None, "the bundle has no voice bank"
    bank = space.bank
    tok, rules = load_tokenizer_and_rules(backbone_dir())
    learner = Learner.from_bundle(bundle)
    done = {json.loads(x)["speaker"] for x in args.out.read_text().splitlines()} if args.out.is_file() else set()
    settings = [(float(a), float(s)) for a in args.scales.split(",") for s in args.sharpness.split(",")]
    speakers = heldout_speakers(default_corpus_dir(), "validation", 25, [])
    # Sources in turn (espeak, festival, fotaq, kokoro, espeak, ...), so that a run cut
    # short has seen every kind of voice.
    by_source: dict[str, list[str]] = {}
    for spk, utts in speakers.items():
        by_source.setdefault(utts[0].source, []).append(spk)
    order = [q[i] for i in range(max(map(len, by_source.values()))) for q in by_source.values() if i < len(q)]
    for spk in order:
        utts = speakers[spk]
        if spk in done:
            continue
        us = sorted(utts, key=lambda u: str(u.audio_path))
        items = [(load_audio(u.audio_path), u.text) for u in us[:25]]
        enroll, test = items[:10], items[10:]
        refs = [t for _, t in test]

        def score(test: list = test, refs: list = refs) -> float:
            return wer(refs, [transcribe(learner.model, a, rules, tok) for a, _ in test])

        row: dict = {"speaker": spk, "source": us[0].source, "base_wer": score()}
        embedding = space.embed(learner.model, [a for a, _ in enroll])
        for scale, sharpness in settings:
            bank.scale, bank.sharpness = scale, sharpness
            with learner.applied(bank.start(learner.init, embedding)):
                row[f"zero_wer@{scale:g}/{sharpness:g}"] = score()
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    rows = [json.loads(x) for x in args.out.read_text().splitlines()]
    base = np.mean([r["base_wer"] for r in rows])
    print(f"{len(rows)} speakers ({', '.join(sorted({r['source'] for r in rows}))}), base {base:.2%}")
    for key in sorted(k for k in rows[0] if k.startswith("zero_wer@")):
        mean = np.mean([r[key] for r in rows])
        worse = sum(r[key] > 1.02 * r["base_wer"] + 1e-9 for r in rows)
        print(f"{key}: {mean:.2%} ({1 - mean / base:+.1%} relative), {worse} speakers worse than base")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
