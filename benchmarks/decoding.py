"""Word error rate and time of greedy decoding against beam search, in the app's runtime.

`python benchmarks/decoding.py [--beams 1,2,4,6] [--per-speaker 8] [--alone] [--threads 2]`

Runs the bundled model's ONNX export (`Transcriber`, int8 decoder, as the app) on
meta-validation speakers only (never the held-out test split): utterances 11 to 18 (by
file name) of every validation speaker with 40 or more, each decoded at every beam width
in turn in the same process. Prints WER overall and per corpus source, and the mean
decode time per utterance. `--alone` adds the widest beam run one hypothesis at a time
(as exports before format 4 are run): in the int8 decoder the hypotheses of one batch
share an activation quantization scale, and this shows what that changes.
"""

from __future__ import annotations

import argparse
import json


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beams", default="1,2,4,6")
    parser.add_argument("--per-speaker", type=int, default=8)
    parser.add_argument("--alone", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from pathlib import Path

    from dictation.app.audio import load_audio
    from dictation.app.base_model import base_model_dir
    from dictation.app.decoding import check_beam
    from dictation.app.runtime import Transcriber
    from dictation.app.text import wer
    from dictation.lab.corpus.common import default_corpus_dir
    from dictation.lab.corpus.readers import read_manifest
    from dictation.lab.meta_tasks import speakers_by_split

    beams = [check_beam(b) for b in args.beams.split(",")]
    runs = [(f"beam {b}", b, True) for b in beams]
    if args.alone:
        runs.append((f"beam {max(beams)}, one hypothesis at a time", max(beams), False))
    speakers = speakers_by_split(read_manifest(Path(args.corpus) if args.corpus else default_corpus_dir()), 40)[
        "validation"
    ]
    utts = [
        u
        for s in sorted(speakers)
        for u in sorted(speakers[s], key=lambda u: str(u.audio_path))[10 : 10 + args.per_speaker]
    ]
    transcriber = Transcriber(base_model_dir(), threads=args.threads)
    can_batch = transcriber.batched
    hyps: dict[str, list[str]] = {name: [] for name, _, _ in runs}
    seconds = dict.fromkeys(hyps, 0.0)
    for u in utts:
        audio = load_audio(u.audio_path)
        for name, beam, batched in runs:
            transcriber.batched = batched and can_batch
            result = transcriber.transcribe(audio, beam=beam)
            hyps[name].append(result.text)
            seconds[name] += result.seconds
    refs = [u.text for u in utts]
    sources = sorted({u.source for u in utts})
    report = {"utterances": len(utts), "speakers": len(speakers), "runs": {}}
    for name in hyps:
        per_source = {}
        for src in sources:
            idx = [i for i, u in enumerate(utts) if u.source == src]
            per_source[src] = round(wer([refs[i] for i in idx], [hyps[name][i] for i in idx]), 4)
        report["runs"][name] = {
            "wer": round(wer(refs, hyps[name]), 4),
            "by_source": per_source,
            "ms_per_utterance": round(1000 * seconds[name] / len(utts), 1),
        }
    if args.alone:
        widest = f"beam {max(beams)}"
        alone = hyps[f"{widest}, one hypothesis at a time"]
        report["same_text_batched_and_alone"] = sum(a == b for a, b in zip(hyps[widest], alone))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{len(utts)} utterances of {len(speakers)} meta-validation speakers, {args.threads} threads")
    for name, r in report["runs"].items():
        by = ", ".join(f"{k} {v:.1%}" for k, v in r["by_source"].items())
        print(f"{name:40s} WER {r['wer']:.1%} ({by}); {r['ms_per_utterance']} ms per utterance")
    if args.alone:
        print(f"same text batched and alone: {report['same_text_batched_and_alone']} of {len(utts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
