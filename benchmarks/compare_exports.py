"""Two exported model directories on the same clips: identical transcripts, WER, speed.

`python benchmarks/compare_exports.py OLD_DIR NEW_DIR [--corpus DIR] [--split validation]
[--clips N] [--threads T]`

Used to check that the int8 output projection with exact shortlist rescoring (export
format 2) transcribes like the float32 projection (format 1), and how much faster it is.
Clips: the first N usable utterances (sorted by path) of each speaker of one split, in
turn, so every speaker contributes. Runs the two alternately per clip, same process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from dictation.app.audio import load_audio
    from dictation.app.runtime import Transcriber
    from dictation.app.text import wer
    from dictation.lab.corpus.common import default_corpus_dir
    from dictation.lab.corpus.readers import read_manifest
    from dictation.lab.corpus.splits import tasks_by_split

    speakers = tasks_by_split(read_manifest(args.corpus or default_corpus_dir()))[args.split]
    queues = [sorted(us, key=lambda u: str(u.audio_path)) for _, us in sorted(speakers.items())]
    clips = []
    for i in range(max(len(q) for q in queues)):
        clips += [q[i] for q in queues if i < len(q)]
    clips = clips[: args.clips]
    models = {"old": Transcriber(args.old, threads=args.threads), "new": Transcriber(args.new, threads=args.threads)}
    out = {k: {"hyps": [], "seconds": [], "per_token_ms": []} for k in models}
    refs = []
    for u in clips:
        audio = load_audio(u.audio_path)
        refs.append(u.text)
        for name, tr in models.items():
            tr.transcribe(audio[:8000])  # same warm state for both
            r = tr.transcribe(audio)
            out[name]["hyps"].append(r.text)
            out[name]["seconds"].append(r.seconds)
            if r.tokens:
                out[name]["per_token_ms"].append(1000 * (r.seconds - r.encoder_seconds) / (len(r.tokens) + 1))
    same = sum(a == b for a, b in zip(out["old"]["hyps"], out["new"]["hyps"]))
    report = {"clips": len(clips), "split": args.split, "identical_transcripts": same, "threads": args.threads}
    for name in models:
        report[name] = {
            "dir": str(getattr(args, name)),
            "wer": round(wer(refs, out[name]["hyps"]), 4),
            "median_seconds": round(statistics.median(out[name]["seconds"]), 4),
            "median_decoder_ms_per_token": round(statistics.median(out[name]["per_token_ms"]), 2),
        }
    report["differences"] = [
        {"ref": r, "old": a, "new": b} for r, a, b in zip(refs, out["old"]["hyps"], out["new"]["hyps"]) if a != b
    ][:10]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
