"""The base model against stock Whisper tiny.en on every utterance of a corpus (issue 29's
first figure: on real speech the base WER should be at most 1.0x Whisper tiny.en's on the
same files, with the same normaliser).

`nice -n 10 python docs/experiments/real_speech_base.py --corpus DIR [--bundle B]
[--speakers a,b] [--max-per-speaker N] [--out F.jsonl] [--threads 1]`

Per utterance: our base model (the bundle's initial values, unpadded input, the app's beam)
and faster-whisper tiny.en (30 s padded input, beam 5) transcribe the same 16 kHz audio;
WER counts are kept per speaker. The summary gives the pooled WER (errors over all
reference words) and the mean over speakers, both models, and their ratio. Resumes: with
--out, utterances already in F are not transcribed again.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch

from dictation.adapt.model.bundle import load_bundle
from dictation.adapt.model.inference import transcribe
from dictation.adapt.model.loader import backbone_dir
from dictation.app.audio import load_audio
from dictation.app.decoding import DEFAULT_BEAM, load_tokenizer_and_rules
from dictation.app.text import word_errors
from dictation.lab.corpus.readers import read_manifest
from dictation.lab.evaluate import _faster_whisper_model, faster_whisper_text


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--bundle", type=Path, default=None)
    p.add_argument("--speakers", default="")
    p.add_argument("--max-per-speaker", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    wanted = {s for s in args.speakers.split(",") if s}
    by_speaker: dict[str, list] = defaultdict(list)
    for u in sorted(read_manifest(args.corpus), key=lambda u: str(u.audio_path)):
        if not wanted or u.speaker in wanted:
            by_speaker[u.speaker].append(u)
    done: dict[str, dict] = {}
    if args.out is not None and args.out.is_file():
        for line in args.out.read_text().splitlines():
            row = json.loads(line)
            done[row["audio"]] = row
    fw = _faster_whisper_model()
    if fw is None:
        raise SystemExit("faster-whisper is not installed (pip install -e '.[bench]')")
    bundle = load_bundle(args.bundle) if args.bundle else load_bundle()
    model = bundle.model.eval()
    tok, rules = load_tokenizer_and_rules(backbone_dir())
    out = args.out.open("a", encoding="utf-8") if args.out is not None else None
    rows = []
    for spk, utts in sorted(by_speaker.items()):
        for u in utts[: args.max_per_speaker or None]:
            key = str(u.audio_path)
            if key in done:
                rows.append(done[key])
                continue
            audio = load_audio(u.audio_path)
            with torch.no_grad():
                ours = transcribe(model, audio, rules, tok, beam=DEFAULT_BEAM)
            theirs = faster_whisper_text(fw, audio)
            (ours_errors, words), (their_errors, _) = word_errors([u.text, u.text], [ours, theirs])
            row = {
                "audio": key,
                "speaker": spk,
                "source": u.source,
                "ref": u.text,
                "base": ours,
                "whisper": theirs,
                "words": words,
                "base_errors": ours_errors,
                "whisper_errors": their_errors,
            }
            rows.append(row)
            if out is not None:
                out.write(json.dumps(row) + "\n")
                out.flush()
    summarize(rows)
    return 0


def summarize(rows: list[dict]) -> None:
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        s = per[r["speaker"]]
        s[0] += r["words"]
        s[1] += r["base_errors"]
        s[2] += r["whisper_errors"]
        s[3] += 1
    print(f"{'speaker':<24} {'utts':>5} {'words':>6} {'base':>7} {'whisper':>8} {'ratio':>6}")
    means = []
    for spk, (words, ours, theirs, n) in sorted(per.items()):
        b, w = ours / max(words, 1), theirs / max(words, 1)
        means.append((b, w))
        print(f"{spk:<24} {n:>5} {words:>6} {b:>7.1%} {w:>8.1%} {b / w if w else float('nan'):>6.2f}")
    words = sum(v[0] for v in per.values())
    ours = sum(v[1] for v in per.values())
    theirs = sum(v[2] for v in per.values())
    pooled_b, pooled_w = ours / max(words, 1), theirs / max(words, 1)
    mean_b = sum(b for b, _ in means) / max(len(means), 1)
    mean_w = sum(w for _, w in means) / max(len(means), 1)
    print(
        f"pooled over {len(rows)} utterances, {words} words: base {pooled_b:.2%}, Whisper tiny.en {pooled_w:.2%}, ratio {pooled_b / pooled_w if pooled_w else float('nan'):.2f}"
    )
    print(
        f"mean over {len(means)} speakers: base {mean_b:.2%}, Whisper tiny.en {mean_w:.2%}, ratio {mean_b / mean_w if mean_w else float('nan'):.2f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
