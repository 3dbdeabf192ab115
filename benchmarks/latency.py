"""Key-release-to-text latency of the dictation runtime vs faster-whisper tiny.en.

`python benchmarks/latency.py [--repeats N] [--threads T] [--beam B] [--json]`

For 1, 5 and 15 s utterances (flite TTS), times `Transcriber.transcribe` on the
finished buffer: everything after the push-to-talk key is released (silence trim,
encoder, decoding with KV cache, detokenisation), with the app's beam search (`--beam`,
default the app's) and greedy, in the same process. Model load is excluded and done once.
When faster-whisper is installed, its `transcribe` (no VAD, stock 30 s padded input,
same weights) runs on the same buffers at its default beam 5 and greedy, and the
ratios ours / faster-whisper are printed like for like (beam vs beam, greedy vs greedy).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import speech_clip, stats_ms


def main() -> int:
    from dictation.app.decoding import DEFAULT_BEAM, beam_width

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam", type=beam_width, default=DEFAULT_BEAM)
    parser.add_argument("--model-dir", type=Path, default=None, help="ONNX model dir (default: bundled base)")
    parser.add_argument("--lengths", default="1,5,15")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from dictation.app.base_model import base_model_dir
    from dictation.app.runtime import Transcriber

    model_dir = args.model_dir or base_model_dir()
    t0 = time.perf_counter()
    ours = Transcriber(model_dir, threads=args.threads)
    load_s = time.perf_counter() - t0
    try:
        from faster_whisper import WhisperModel

        from dictation.adapt.model.loader import backbone_dir

        fw = WhisperModel(str(backbone_dir()), device="cpu", compute_type="float32", cpu_threads=args.threads)
    except ImportError:
        fw = None

    def timed(fn) -> tuple[dict, str]:
        fn()  # warm-up
        times, text = [], ""
        for _ in range(args.repeats):
            t = time.perf_counter()
            text = fn()
            times.append(time.perf_counter() - t)
        return stats_ms(times), text

    results = {
        "model_dir": str(model_dir),
        "threads": args.threads,
        "beam": args.beam,
        "model_load_s": round(load_s, 2),
        "lengths": {},
    }
    for seconds in [float(x) for x in args.lengths.split(",")]:
        audio, _ = speech_clip(seconds)
        row: dict = {"audio_s": round(len(audio) / 16000, 2)}
        for name, beam in (("ours", args.beam), ("ours_greedy", 1)):
            row[name], row[name + "_text"] = timed(
                lambda beam=beam, audio=audio: ours.transcribe(audio, beam=beam).text
            )
        row["beam_over_greedy"] = round(row["ours"]["median_ms"] / row["ours_greedy"]["median_ms"], 3)
        if fw is not None:
            for name, beam in (("faster_whisper", 5), ("faster_whisper_greedy", 1)):

                def run_fw(beam=beam, audio=audio) -> str:
                    segs, _ = fw.transcribe(
                        audio,
                        beam_size=beam,
                        without_timestamps=True,
                        temperature=0,
                        condition_on_previous_text=False,
                        vad_filter=False,
                    )
                    return " ".join(s.text.strip() for s in segs)

                row[name], row[name + "_text"] = timed(run_fw)
            row["ratio_median"] = round(row["ours"]["median_ms"] / row["faster_whisper"]["median_ms"], 3)
            row["ratio_median_greedy"] = round(
                row["ours_greedy"]["median_ms"] / row["faster_whisper_greedy"]["median_ms"], 3
            )
        results["lengths"][f"{seconds:g}s"] = row
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"model: {model_dir} (load {load_s:.2f} s), {args.threads} threads, {args.repeats} repeats")
        for name, row in results["lengths"].items():
            print(
                f"{name:>4} ({row['audio_s']} s): ours beam {args.beam} median {row['ours']['median_ms']} ms, "
                f"p95 {row['ours']['p95_ms']} ms; greedy median {row['ours_greedy']['median_ms']} ms "
                f"(beam / greedy {row['beam_over_greedy']})"
            )
            if "faster_whisper" in row:
                print(
                    f"      faster-whisper beam 5 median {row['faster_whisper']['median_ms']} ms, greedy "
                    f"{row['faster_whisper_greedy']['median_ms']} ms | ours / faster-whisper: beam "
                    f"{row['ratio_median']}, greedy {row['ratio_median_greedy']}"
                )
            print(f"      ours: {row['ours_text']}")
            if "faster_whisper_text" in row:
                print(f"      f-w : {row['faster_whisper_text']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
