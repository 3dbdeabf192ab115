"""Key-release-to-text latency of the dictation runtime vs faster-whisper tiny.en.

`python benchmarks/latency.py [--repeats N] [--threads T] [--json]`

For 1, 5 and 15 s utterances (flite TTS), times `Transcriber.transcribe` on the
finished buffer: everything after the push-to-talk key is released (silence trim,
encoder, greedy decoding with KV cache, detokenisation). Model load is excluded and
done once. When faster-whisper is installed, its `transcribe` (greedy, no VAD, stock
30 s padded input, same weights) runs on the same buffers in the same process and the
ratio ours / faster-whisper is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import speech_clip, stats_ms  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model-dir", type=Path, default=None, help="ONNX model dir (default: bundled base)")
    parser.add_argument("--lengths", default="1,5,15")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from dictation.runtime import Transcriber, base_model_dir

    model_dir = args.model_dir or base_model_dir()
    t0 = time.perf_counter()
    ours = Transcriber(model_dir, threads=args.threads)
    load_s = time.perf_counter() - t0
    try:
        from faster_whisper import WhisperModel

        from dictation.model.loader import backbone_dir

        fw = WhisperModel(str(backbone_dir()), device="cpu", compute_type="float32", cpu_threads=args.threads)
    except ImportError:
        fw = None

    results = {"model_dir": str(model_dir), "threads": args.threads, "model_load_s": round(load_s, 2), "lengths": {}}
    for seconds in [float(x) for x in args.lengths.split(",")]:
        audio, _ = speech_clip(seconds)
        ours.transcribe(audio)  # warm-up
        times, text = [], ""
        for _ in range(args.repeats):
            r = ours.transcribe(audio)
            times.append(r.seconds)
            text = r.text
        row = {"audio_s": round(len(audio) / 16000, 2), "ours": stats_ms(times), "ours_text": text}
        if fw is not None:
            def run_fw() -> str:
                segs, _ = fw.transcribe(audio, beam_size=1, without_timestamps=True, temperature=0,
                                        condition_on_previous_text=False, vad_filter=False)
                return " ".join(s.text.strip() for s in segs)

            run_fw()
            fw_times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                fw_text = run_fw()
                fw_times.append(time.perf_counter() - t)
            row["faster_whisper"] = stats_ms(fw_times)
            row["faster_whisper_text"] = fw_text
            row["ratio_median"] = round(row["ours"]["median_ms"] / row["faster_whisper"]["median_ms"], 3)
        results["lengths"][f"{seconds:g}s"] = row
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"model: {model_dir} (load {load_s:.2f} s), {args.threads} threads, {args.repeats} repeats")
        for name, row in results["lengths"].items():
            line = f"{name:>4} ({row['audio_s']} s): ours median {row['ours']['median_ms']} ms, p95 {row['ours']['p95_ms']} ms"
            if "faster_whisper" in row:
                line += (f" | faster-whisper median {row['faster_whisper']['median_ms']} ms,"
                         f" p95 {row['faster_whisper']['p95_ms']} ms | ratio {row['ratio_median']}")
            print(line)
            print(f"      ours: {row['ours_text']}")
            if "faster_whisper_text" in row:
                print(f"      f-w : {row['faster_whisper_text']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
