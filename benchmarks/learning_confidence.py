"""How sure the model is against how right it is: the threshold of learning from use.

`python benchmarks/learning_confidence.py [--source fotaq] [--per-speaker 20] [--threads 1]`

Decodes utterances of meta-validation speakers (never the held-out test split) with the
bundled model's ONNX export as the app does (`Transcriber`, the app's beam), and prints,
for each confidence threshold (`Transcript.confidence`, the mean probability of the
chosen tokens), the share of dictations at or above it, their WER, the share of them
without any error, and the WER of the rest. `dictation.app.gui.learning` keeps an
accepted dictation only at `CONFIDENCE_THRESHOLD` or above.
"""

from __future__ import annotations

import argparse
import json

THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="fotaq", help="corpus source ('' for all); fotaq is real speech")
    parser.add_argument("--per-speaker", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from pathlib import Path

    import numpy as np

    from dictation.app.audio import load_audio
    from dictation.app.base_model import base_model_dir
    from dictation.app.runtime import Transcriber
    from dictation.app.text import word_errors
    from dictation.lab.corpus.common import default_corpus_dir
    from dictation.lab.corpus.readers import read_manifest
    from dictation.lab.meta_tasks import speakers_by_split

    speakers = speakers_by_split(read_manifest(Path(args.corpus) if args.corpus else default_corpus_dir()), 10)
    utts = [
        u
        for name in sorted(speakers["validation"])
        for u in sorted(speakers["validation"][name], key=lambda u: str(u.audio_path))[: args.per_speaker]
        if not args.source or u.source == args.source
    ]
    transcriber = Transcriber(base_model_dir(), threads=args.threads)
    confidence, errors, words = [], [], []
    for u in utts:
        result = transcriber.transcribe(load_audio(u.audio_path))
        ((e, w),) = word_errors([u.text], [result.text])
        confidence.append(-1.0 if result.confidence is None else result.confidence)
        errors.append(e)
        words.append(w)
    c, e, w = np.array(confidence), np.array(errors), np.array(words)
    rows = []
    for threshold in THRESHOLDS:
        kept = c >= threshold
        rows.append(
            {
                "threshold": threshold,
                "kept": float(kept.mean()),
                "wer_kept": float(e[kept].sum() / max(1, w[kept].sum())),
                "error_free_kept": float((e[kept] == 0).mean()) if kept.any() else None,
                "wer_rest": float(e[~kept].sum() / max(1, w[~kept].sum())),
            }
        )
    result = {"utterances": len(utts), "speakers": len({u.speaker for u in utts}), "wer": float(e.sum() / w.sum())}
    if args.json:
        print(json.dumps({**result, "thresholds": rows}))
        return 0
    print(f"{result['utterances']} utterances of {result['speakers']} speakers, WER {result['wer']:.1%}")
    for r in rows:
        print(
            f"confidence >= {r['threshold']:.2f}: {r['kept']:.0%} of dictations, WER {r['wer_kept']:.1%}, "
            f"{(r['error_free_kept'] or 0):.0%} without error; the rest WER {r['wer_rest']:.1%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
